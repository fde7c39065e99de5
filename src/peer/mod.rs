//! What nodes send each other: signed envelopes and the protocol messages inside them. The
//! transport that carries them is `crate::transport`; the router that hands them to the
//! protocol roles is `crate::router`.

pub mod envelope;
pub mod messages;

pub use envelope::{Envelope, EnvelopeError, EnvelopeVerifier, Receipt};
pub use messages::{CeremonySpec, PeerErrorCode, PeerRequest, PeerResponse, SignerCommitments};
