//! Node-to-node communication: signed envelopes, the protocol messages, and the transport.

pub mod envelope;
pub mod messages;
pub mod server;
pub mod transport;

pub use envelope::{Envelope, EnvelopeError, EnvelopeVerifier};
pub use messages::{CeremonySpec, PeerErrorCode, PeerRequest, PeerResponse};
pub use transport::CallError;

/// The checks a protocol's first message gets before anything else: it comes from the node
/// the spec names as coordinator, and this node is unsealed. `what` names the protocol.
pub fn refuse_start(
    node: &crate::node::Node,
    from: u16,
    coordinator: u16,
    what: &str,
) -> Option<PeerResponse> {
    let (code, message) = if coordinator != from {
        (
            PeerErrorCode::Invalid,
            format!("the {what}'s coordinator must be the sender"),
        )
    } else if node.is_sealed() {
        (
            PeerErrorCode::Sealed,
            format!("node {} is sealed", node.id()),
        )
    } else {
        return None;
    };
    Some(PeerResponse::Error {
        code,
        message,
        culprit: None,
    })
}
