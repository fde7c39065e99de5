//! The keyquorum node: configuration, identity, sealed storage, the peer transport, the
//! coordinators of key ceremonies, signing and decryption, the HTTP API, and the CLI.
//!
//! The cryptography lives in the sans-IO `keyshares` crate; this crate drives it over HTTP.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod blame;
pub mod ceremony;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod decryption;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod identity;
pub mod keyview;
pub mod metrics;
pub mod node;
pub mod peer;
pub mod pkcs11;
pub mod records;
pub mod relay;
pub mod repair;
pub mod request;
pub mod router;
pub mod sealing;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod store;
pub mod tls;
pub mod transport;
pub mod validate;
pub mod witness;

/// A fresh 128-bit random identifier, hex: session ids.
pub fn random_id() -> String {
    use rand::RngCore;
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}
