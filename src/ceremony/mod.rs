//! Key ceremonies (DESIGN.md §4): the coordinator that drives one over HTTP, and the
//! participant side every node runs.
//!
//! The coordinator relays every message, so a participant only ever talks to it; what makes
//! that safe is that each relayed message is an envelope signed by its origin and addressed to
//! its recipient (so the relay can neither forge nor redirect one), secrets are sealed to their
//! recipient, and the echo round catches an origin that sent different packages to different
//! peers. An echo quotes each round-1 message by its origin's signature (a receipt), so an
//! equivocator is proven by two messages it signed and a misquoting echoer by its own signed
//! echo; complaints are settled on that evidence (`crate::blame`, DESIGN.md §11).

pub mod activation;
pub mod blame;
pub mod coordinator;
pub mod participant;
mod permit;
pub mod protocol;
pub mod reconcile;
pub mod renewal;
pub mod window;

use crate::peer::messages::CeremonyPurpose;
use crate::store::KeyRecord;

/// Kinds of the inner envelopes the coordinator relays between participants.
pub mod kinds {
    pub const ROUND1: &str = "dkg.round1.package";
    pub const ECHO: &str = "dkg.echo.receipts";
    pub const ROUND2: &str = "dkg.round2.package";
}

/// What every member signs once it holds the ceremony's result sealed on disk (DESIGN.md §4.4,
/// §11): the key as it sees it, bound to the ceremony and its spec.
pub fn statement_of(
    spec: &crate::peer::CeremonySpec,
    record: &KeyRecord,
) -> crate::state::generation::GenerationStatement {
    let spec_json = serde_json::to_vec(spec).unwrap_or_default();
    let record_json = serde_json::to_vec(record).unwrap_or_default();
    let mut members = spec.participants.clone();
    members.sort_unstable();
    crate::state::generation::GenerationStatement {
        key: record.name.clone(),
        generation: record.generation,
        session: record.session.clone(),
        coordinator: spec.coordinator,
        members,
        record_sha256: crate::audit::hex_sha256(&record_json),
        spec_sha256: crate::audit::hex_sha256(&spec_json),
    }
}

/// The sealing context of a round-2 package: session, sender and recipient.
pub fn round2_context(session: &str, from: u16, to: u16) -> Vec<u8> {
    format!("keyquorum/dkg/round2|{session}|{from}|{to}").into_bytes()
}

/// The record of the key a confirmed ceremony made: `public_keys` is the hex of the new
/// public key package.
pub fn record_of(spec: &crate::peer::CeremonySpec, public_keys: &str, session: &str) -> KeyRecord {
    let (participants, created_at, generation) = match &spec.purpose {
        CeremonyPurpose::Create => (spec.participants.clone(), spec.created_at.clone(), 0),
        CeremonyPurpose::Refresh { previous } => (
            previous.participants.clone(),
            previous.created_at.clone(),
            previous.generation + 1,
        ),
        CeremonyPurpose::Reshare {
            previous,
            participants,
            ..
        } => (
            participants.clone(),
            previous.created_at.clone(),
            previous.generation + 1,
        ),
    };
    KeyRecord {
        name: spec.name.clone(),
        algorithm: spec.algorithm,
        threshold: spec.threshold,
        participants,
        created_at,
        public_keys: public_keys.to_string(),
        session: session.to_string(),
        generation,
        state: api::KeyState::Active,
        retired_at: None,
    }
}
