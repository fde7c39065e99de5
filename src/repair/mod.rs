//! Repairing a participant's lost share (frost `keys::repairable`): the coordinator that
//! drives it and the side every helper and the repaired node run. No helper sees the share:
//! each sends the repaired node only a sum of random summands.

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

/// A helper's message to the repaired node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HelperValue {
    /// Base64, the value sealed to the repaired node.
    pub sealed: String,
    /// [`vouch`] of the helper's spec.
    pub record_sha256: String,
}
