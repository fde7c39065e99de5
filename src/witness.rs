//! Nodes witness each other's audit trails (DESIGN.md §11): each sends its signed audit head
//! to every peer at start and then periodically, and records the head each peer answers with.
//! A peer's head older than one recorded before (rollback, e.g. a trail truncated on disk) or
//! with another hash at the same seq (fork, a rewritten trail) is reported once: an audit
//! entry naming the peer as culprit and `keyquorum_audit_trail_conflicts_total{node,kind}`.

use std::sync::Arc;
use std::time::Duration;

use api::AuditHead;

use crate::audit::heads::Seen;
use crate::node::Node;
use crate::peer::{PeerRequest, PeerResponse};

/// How often a running node exchanges audit heads with its peers.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Records `head`, which member `from` sent or answered with, and reports a conflict.
pub fn note(node: &Node, from: u16, head: &AuditHead) {
    if head.node != from {
        tracing::warn!(
            from,
            claimed = head.node,
            "a peer sent another node's audit head"
        );
        return;
    }
    match node.audit.peers.observe(&node.signers, head) {
        Ok(Seen::Consistent) | Ok(Seen::Known) => {}
        Ok(Seen::Conflict(conflict)) => {
            node.metrics
                .observe_trail_conflict(from, conflict_kind(&conflict.kind));
            tracing::error!(
                peer = from,
                kind = %conflict.kind,
                recorded_seq = conflict.recorded.seq,
                seen_seq = conflict.seen.seq,
                "a peer's audit trail contradicts a head it signed before"
            );
            let record = crate::audit::Record {
                client: None,
                action: "audit.peer_conflict",
                key: None,
                role: "witness",
                details: serde_json::json!({
                    "node": from,
                    "kind": conflict.kind,
                    "recorded": {"seq": conflict.recorded.seq, "hash": conflict.recorded.hash},
                    "seen": {"seq": conflict.seen.seq, "hash": conflict.seen.hash},
                }),
                outcome: "failed",
                culprits: vec![from],
            };
            if let Err(e) = node.audit.append(record) {
                tracing::error!(error = %e, "appending to the audit trail failed");
            }
        }
        Err(e) => {
            node.metrics.observe_trail_conflict(from, "bad_signature");
            tracing::warn!(peer = from, error = %e, "a peer's audit head does not verify");
        }
    }
}

fn conflict_kind(kind: &str) -> &'static str {
    match kind {
        "rollback" => "rollback",
        _ => "fork",
    }
}

/// A participant's answer to a head sent by `from`: records it, answers with its own.
pub fn answer(node: &Node, from: u16, head: &AuditHead) -> PeerResponse {
    note(node, from, head);
    PeerResponse::AuditHead {
        head: node.audit.head(),
    }
}

/// Sends this node's head to every peer at once and records their answers.
pub async fn exchange(node: &Arc<Node>) {
    let session = crate::random_id();
    let request = PeerRequest::AuditHead {
        head: node.audit.head(),
    };
    let calls = node
        .members
        .values()
        .filter(|m| m.id != node.id())
        .map(|m| {
            let (session, request) = (&session, &request);
            async move {
                let call = crate::transport::call(node, m.id, session, request, None);
                match tokio::time::timeout(Duration::from_secs(5), call).await {
                    Ok(Ok(PeerResponse::AuditHead { head })) => note(node, m.id, &head),
                    Ok(Ok(other)) => {
                        tracing::debug!(peer = m.id, answer = ?other, "no audit head in answer")
                    }
                    Ok(Err(e)) => tracing::debug!(peer = m.id, error = %e, "audit head exchange"),
                    Err(_) => tracing::debug!(peer = m.id, "audit head exchange timed out"),
                }
            }
        });
    futures::future::join_all(calls).await;
}

/// Exchanges heads now, then every [`INTERVAL`].
pub fn spawn(node: &Arc<Node>) -> actix_web::rt::task::JoinHandle<()> {
    let node = node.clone();
    actix_web::rt::spawn(async move {
        loop {
            exchange(&node).await;
            actix_web::rt::time::sleep(INTERVAL).await;
        }
    })
}
