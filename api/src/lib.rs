//! keyquorum's HTTP contract: the JSON types of the client API, its error body, and a typed
//! client. The node (`src/`) and every client build on these types, so the contract lives in
//! one place.
//!
//! Binary values travel as standard base64 (messages, ciphertexts, plaintexts) or lowercase hex
//! (public keys, signatures), as each field's doc says.

pub mod auth;
pub mod ciphertexts;
pub mod client;
pub mod e2e;
pub mod openapi;
pub mod requests;
pub mod types;

pub use auth::{ClientKey, RequestSignature};
pub use client::{Client, ClientError};
pub use requests::*;
pub use types::*;
