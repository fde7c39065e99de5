//! Nodes witness each other's audit trails (DESIGN.md §11): each sends its signed audit head
//! to every peer at start and then periodically, and records the head each peer answers with.
//! A peer's head with another hash at a seq it signed before (fork, a rewritten trail), or a
//! peer that no longer holds an entry it signed (rollback, e.g. a trail truncated on disk), is
//! reported once: an audit entry naming the peer as culprit and
//! `keyquorum_audit_trail_conflicts_total{node,kind}`. When a peer's head moves on, the peer is
//! asked for its signed head at the entry recorded before: a trail rewritten past that point
//! shows another hash there (a fork). A head older than the one recorded is no evidence by
//! itself (two answers can cross on the wire), so the peer is asked for the recorded entry.

use std::sync::Arc;
use std::time::Duration;

use api::{AuditConflict, AuditHead};

use crate::audit::heads::Seen;
use crate::node::Node;
use crate::peer::{PeerRequest, PeerResponse};

/// How often a running node exchanges audit heads with its peers.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Records `head`, which member `from` sent or answered with, and reports a conflict.
pub fn note(node: &Node, from: u16, head: &AuditHead) -> Option<Seen> {
    if head.node != from {
        tracing::warn!(
            from,
            claimed = head.node,
            "a peer sent another node's audit head"
        );
        return None;
    }
    match node.audit.peers.observe(&node.signers, head) {
        Ok(seen) => {
            if let Seen::Conflict(c) = &seen {
                report(node, from, c);
            }
            Some(seen)
        }
        Err(e) => {
            node.metrics.observe_trail_conflict(from, "bad_signature");
            tracing::warn!(peer = from, error = %e, "a peer's audit head does not verify");
            None
        }
    }
}

/// An audit entry naming the peer, and the metric.
fn report(node: &Node, from: u16, conflict: &AuditConflict) {
    let kind = match conflict.kind.as_str() {
        "rollback" => "rollback",
        _ => "fork",
    };
    node.metrics.observe_trail_conflict(from, kind);
    tracing::error!(
        peer = from,
        kind,
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
            "kind": kind,
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

/// A participant's answer to a head sent by `from`: records it, answers with its own. A head
/// that moved on, or an older one, is checked against the one recorded in the background.
pub fn answer(node: &Arc<Node>, from: u16, head: &AuditHead) -> PeerResponse {
    if let Some(seen) = note(node, from, head) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (node, head) = (node.clone(), head.clone());
            runtime.spawn(async move {
                follow_up(&node, from, &crate::random_id(), seen, &head).await;
            });
        }
    }
    PeerResponse::AuditHead {
        head: node.audit.head(),
    }
}

/// What a head `shown` by `peer` calls for: the peer must still hold the head recorded before
/// it (when it moved on) or the later one recorded (when it showed an older one).
async fn follow_up(node: &Arc<Node>, peer: u16, session: &str, seen: Seen, shown: &AuditHead) {
    match seen {
        Seen::Advanced { previous } => check_holds(node, peer, session, &previous, shown).await,
        Seen::Older { recorded } => check_holds(node, peer, session, &recorded, shown).await,
        Seen::Consistent | Seen::Conflict(_) | Seen::Known => {}
    }
}

/// A participant's answer to a question for its head at entry `seq`.
pub fn head_at(node: &Node, seq: u64) -> PeerResponse {
    match node.audit.head_at(seq) {
        Ok(head) => PeerResponse::AuditHeadAt { head },
        Err(e) => PeerResponse::Error {
            code: crate::peer::PeerErrorCode::Invalid,
            message: format!("audit trail: {e}"),
            culprit: None,
        },
    }
}

/// `peer`'s trail must still hold `previous`, a head it signed, now that it showed `shown`.
async fn check_holds(
    node: &Arc<Node>,
    peer: u16,
    session: &str,
    previous: &AuditHead,
    shown: &AuditHead,
) {
    if previous.seq == 0 {
        return;
    }
    let request = PeerRequest::AuditHeadAt { seq: previous.seq };
    let call = crate::transport::call(node, peer, session, &request, None);
    let seen = match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Ok(PeerResponse::AuditHeadAt { head })) => head,
        other => {
            tracing::debug!(peer, answer = ?other.ok(), "no audit head at an entry");
            return;
        }
    };
    let kind = match &seen {
        None => "rollback",
        Some(h) if h.node != peer || h.seq != previous.seq => return,
        Some(h) if h.hash == previous.hash => return,
        Some(_) => "fork",
    };
    // Evidence only when the peer signed what it showed; an absent entry is its own word
    // (no honest trail loses an entry it signed: a compacted one answers with its signed
    // checkpoint), set against the head it showed.
    let seen = match seen {
        Some(h) => {
            let verified =
                crate::audit::heads::verify(&node.signers, peer, h.seq, &h.hash, &h.signature);
            if verified.is_err() {
                node.metrics.observe_trail_conflict(peer, "bad_signature");
                return;
            }
            h
        }
        None => shown.clone(),
    };
    match node.audit.peers.conflict(kind, previous, &seen) {
        Ok(Seen::Conflict(c)) => report(node, peer, &c),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "recording a peer's audit conflict failed"),
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
                    Ok(Ok(PeerResponse::AuditHead { head })) => {
                        if let Some(seen) = note(node, m.id, &head) {
                            follow_up(node, m.id, session, seen, &head).await;
                        }
                    }
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
