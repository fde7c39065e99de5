//! Replicated state the nodes must agree on (DESIGN.md §11): what a node signs to vouch for a
//! change, and the certificates built from those signatures. A node believes a change only
//! with a certificate it verified itself, whichever peer handed it over.

pub mod admin_log;
pub mod decrypt_requests;
pub mod generation;
pub mod item_digest;
pub mod nonces;
pub mod ratelimit;
pub mod rejections;
pub mod statement;
pub mod verified;
