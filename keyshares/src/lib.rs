//! keyquorum's threshold cryptography, sans-IO.
//!
//! This crate is a deterministic implementation of the protocols a keyquorum node runs: the
//! distributed key generation and refresh ([`dkg`]), the repair of a lost share ([`repair`]),
//! FROST signing rounds ([`sign`], RFC 9591), threshold decryption of HPKE / ECIES ciphertexts
//! ([`decrypt`]), resharing a key to a new committee or threshold under the same group key
//! ([`reshare`]) and the sealing of secrets sent to a peer ([`seal`]). It has no networking
//! code, no storage and no clock of its own: messages come
//! in and go out as values, randomness is an argument. The node (`src/` at the workspace root)
//! drives these state machines over HTTP, as quinn drives quinn-proto.
//!
//! The two types that matter are [`KeyShare`], one participant's secret share (zeroized on
//! drop, never serialised except for sealing at rest), and [`PublicKeys`], the public data of a
//! key that every participant holds identically.
//!
//! Everything is generic over the frost ciphersuite where it can be; [`Curve`] picks the
//! ciphersuite at run time for callers that hold keys of both kinds.

mod arith;
pub mod curve;
pub mod decrypt;
pub mod dkg;
pub mod echo;
pub mod evidence;
pub mod outcome;
pub mod repair;
pub mod reshare;
pub mod seal;
pub mod share;
pub mod sign;

pub use curve::Curve;
pub use share::{KeyShare, PublicKeys};

/// A failure that one participant is to blame for, or one that no-one can be blamed for.
///
/// Protocol code returns this so that the node can name the culprit (DESIGN.md §4.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("participant {culprit}: {reason}")]
    Culprit { culprit: u16, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// Two participants disagree about a round-1 package; only signatures can tell who lies,
    /// so the node settles it ([`echo`]).
    #[error("echo mismatch: {0}")]
    Echo(echo::EchoMismatch),
}

impl ProtocolError {
    pub fn culprit(culprit: u16, reason: impl Into<String>) -> Self {
        ProtocolError::Culprit {
            culprit,
            reason: reason.into(),
        }
    }

    pub fn invalid(reason: impl Into<String>) -> Self {
        ProtocolError::Invalid(reason.into())
    }

    pub fn culprit_id(&self) -> Option<u16> {
        match self {
            ProtocolError::Culprit { culprit, .. } => Some(*culprit),
            ProtocolError::Invalid(_) | ProtocolError::Echo(_) => None,
        }
    }
}

/// Maps a frost error to ours, naming the culprit frost identified (frost identifiers are the
/// node ids, see [`curve::identifier`]).
pub(crate) fn from_frost<C: frost_core::Ciphersuite>(err: frost_core::Error<C>) -> ProtocolError {
    let reason = err.to_string();
    match err.culprits().first() {
        Some(id) => match curve::identifier_to_u16(id) {
            Some(n) => ProtocolError::culprit(n, reason),
            None => ProtocolError::invalid(reason),
        },
        None => ProtocolError::invalid(reason),
    }
}
