//! Repairing a participant's lost share (frost `keys::repairable`, made verifiable by
//! `keyshares::repair`): the coordinator that drives it and the side every helper and the
//! repaired node run. No helper sees the share: each sends the repaired node only a sum of
//! random summands, and a helper that lies is named.

pub mod blame;
pub mod coordinator;
pub mod participant;

/// Kinds of the inner envelopes the coordinator relays.
pub mod kinds {
    pub const DELTA: &str = "repair.delta";
    pub const VALUE: &str = "repair.value";
}

/// The sealing context of a summand or value: step, session, sender and recipient.
pub fn seal_context(step: &str, session: &str, from: u16, to: u16) -> Vec<u8> {
    format!("keyquorum/repair/{step}|{session}|{from}|{to}").into_bytes()
}

/// What a helper vouches for to the repaired node: the key record and policy it holds.
pub fn vouch(spec: &crate::peer::messages::RepairSpec) -> String {
    let bytes = serde_json::to_vec(&(&spec.record, &spec.policy)).unwrap_or_default();
    crate::audit::hex_sha256(&bytes)
}

/// The key's public data, as the spec's record carries it.
pub fn public_of(
    spec: &crate::peer::messages::RepairSpec,
) -> Result<keyshares::PublicKeys, String> {
    let record = &spec.record;
    let bytes = hex::decode(&record.public_keys).map_err(|e| e.to_string())?;
    keyshares::PublicKeys::from_bytes(crate::store::curve_of(record.algorithm), &bytes)
        .map_err(|e| e.to_string())
}

/// A helper's message to another helper.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HelperSummand {
    /// Base64, the summand sealed to its recipient.
    pub sealed: String,
    /// Hex, the sender's commitments to every helper's summand (`keyshares::repair::Dealt`).
    pub commitments: String,
}

/// A helper's message to the repaired node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HelperValue {
    /// Base64, the value sealed to the repaired node.
    pub sealed: String,
    /// [`vouch`] of the helper's spec.
    pub record_sha256: String,
    /// Hex, the helper's own commitments.
    pub commitments: String,
    /// The summand envelopes the other helpers signed for this one, passed on so that the
    /// repaired node sees the commitments each helper judged by: a dealer that showed
    /// different ones to different helpers is caught by its own signatures.
    pub forwarded: Vec<crate::peer::Envelope>,
}
