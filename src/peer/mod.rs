//! Node-to-node communication: signed envelopes, the protocol messages, and the transport.

pub mod envelope;
pub mod messages;
pub mod server;
pub mod transport;

pub use envelope::{Envelope, EnvelopeError, EnvelopeVerifier};
pub use messages::{CeremonySpec, PeerErrorCode, PeerRequest, PeerResponse};
pub use transport::CallError;
