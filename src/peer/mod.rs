//! Node-to-node communication: signed envelopes, the protocol messages, and the transport.

pub mod envelope;
pub mod messages;
pub mod server;
pub mod transport;

pub use envelope::{Envelope, EnvelopeError, EnvelopeVerifier, Receipt};
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
    if coordinator != from {
        let message = format!("the {what}'s coordinator must be the sender");
        Some(PeerResponse::error(PeerErrorCode::Invalid, message, None))
    } else if node.is_sealed() {
        let message = format!("node {} is sealed", node.id());
        Some(PeerResponse::error(PeerErrorCode::Sealed, message, None))
    } else {
        None
    }
}

/// Opens the envelopes of `kind` that `coordinator` relayed to this node: exactly one from
/// each of `senders`, each signed by its origin, addressed here and bound to `session`. A
/// message from anyone else is the relaying coordinator's doing.
pub fn open_relayed(
    node: &crate::node::Node,
    session: &str,
    kind: &str,
    senders: &[u16],
    coordinator: u16,
    incoming: &[Envelope],
) -> Result<std::collections::BTreeMap<u16, Vec<u8>>, PeerResponse> {
    let protocol = |message: String, culprit| {
        PeerResponse::error(PeerErrorCode::Protocol, message, Some(culprit))
    };
    let mut out = std::collections::BTreeMap::new();
    for env in incoming {
        if !senders.contains(&env.from) {
            let message = format!(
                "relayed {kind} from node {}, which has none to send",
                env.from
            );
            return Err(protocol(message, coordinator));
        }
        let payload = node
            .verifier
            .open(env, Some(session), Some(kind))
            .map_err(|e| {
                let message = format!("invalid {kind} relayed from node {}: {e}", env.from);
                protocol(message, env.from)
            })?;
        if out.insert(env.from, payload).is_some() {
            return Err(protocol(
                format!("two {kind} messages from node {}", env.from),
                env.from,
            ));
        }
    }
    match senders.iter().find(|s| !out.contains_key(s)) {
        Some(missing) => Err(protocol(format!("no {kind} from node {missing}"), *missing)),
        None => Ok(out),
    }
}
