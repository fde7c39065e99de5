//! Threshold decryption (DESIGN.md §6): the coordinator that gathers verified partial
//! decryptions from a quorum for a whole batch in one round trip, and the participant side.

pub mod approved;
pub mod coordinator;
pub use crate::state::item_digest as digest;
pub mod gather;
pub mod lifted;
pub mod participant;
pub mod relay;
pub mod reply;
pub mod wire;

/// Most ciphertexts one decrypt request may carry.
pub const MAX_BATCH: usize = 4096;

/// The sealing context of a batch of partials sent from `from` to the coordinator `to`.
pub fn partials_context(session: &str, from: u16, to: u16) -> Vec<u8> {
    format!("keyquorum/decrypt/partials|{session}|{from}|{to}").into_bytes()
}

pub fn scheme_of(algorithm: api::Algorithm) -> Option<keyshares::decrypt::Scheme> {
    match algorithm {
        api::Algorithm::HpkeX25519 => Some(keyshares::decrypt::Scheme::HpkeX25519),
        api::Algorithm::EciesSecp256k1 => Some(keyshares::decrypt::Scheme::EciesSecp256k1),
        _ => None,
    }
}
