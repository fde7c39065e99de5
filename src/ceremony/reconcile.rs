//! Settling key generations after the fact (DESIGN.md §11). Whatever a partition, a silent
//! coordinator or a killed process left behind, every node converges by pulling evidence:
//!
//! - a result it holds pending is activated with the ceremony's certificate, from any peer
//!   that has it, or discarded on a signed refusal that proves the certificate cannot exist;
//! - the generation a certified one replaced is erased once every member has acknowledged the
//!   new one;
//! - a ceremony it committed as coordinator is handed to every member until all acknowledge.
//!
//! It runs at start, on a timer, and when a request shows a peer on another generation.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;

use super::activation;
use crate::node::{Counters, Node};
use crate::peer::messages::GenerationAnswer;
use crate::peer::{PeerRequest, PeerResponse};
use crate::state::generation::{self, GenerationCertificate};
use crate::store::PendingGeneration;
use crate::transport;

/// Sends `request` (a commit) to each of `members` and keeps the valid acknowledgements.
pub async fn collect_acks(
    node: &Arc<Node>,
    session: &str,
    members: &[u16],
    request: &PeerRequest,
    counters: Option<&Counters>,
) -> BTreeMap<u16, String> {
    let PeerRequest::DkgCommit { certificate } = request else {
        return BTreeMap::new();
    };
    let calls = members.iter().map(|p| async move {
        (
            *p,
            transport::call(node, *p, session, request, counters).await,
        )
    });
    let s = &certificate.statement;
    join_all(calls)
        .await
        .into_iter()
        .filter_map(|(p, answer)| match answer {
            Ok(PeerResponse::Acknowledged { signature })
                if generation::verify_ack(&node.signers, p, &s.key, &s.session, &signature)
                    .is_ok() =>
            {
                Some((p, signature))
            }
            other => {
                tracing::debug!(node = p, answer = ?other, "no acknowledgement of the commit");
                None
            }
        })
        .collect()
}

/// Asks each of `peers` what it knows of ceremony `session` of `key`.
async fn ask(
    node: &Arc<Node>,
    peers: &[u16],
    key: &str,
    session: &str,
) -> Vec<(u16, GenerationAnswer)> {
    let request = PeerRequest::GenerationStatus {
        key: key.to_string(),
        session: session.to_string(),
    };
    let label = crate::random_id();
    let calls = peers.iter().map(|p| {
        let (request, label) = (&request, &label);
        async move { (*p, transport::call(node, *p, label, request, None).await) }
    });
    join_all(calls)
        .await
        .into_iter()
        .filter_map(|(p, answer)| match answer {
            Ok(PeerResponse::Generation(a)) => Some((p, *a)),
            _ => None,
        })
        .collect()
}

/// Activates or discards `pending` on the evidence `peers` give; leaves it in doubt without.
async fn settle(node: &Arc<Node>, pending: &PendingGeneration, peers: &[u16]) {
    let s = &pending.statement;
    let answers = ask(node, peers, &s.key, &s.session).await;
    // A certificate wins over a refusal: it proves every member sealed the result.
    for (p, answer) in &answers {
        let Some(cert) = &answer.certificate else {
            continue;
        };
        if cert.statement != *s {
            continue;
        }
        match cert.verify(&node.signers) {
            Ok(()) => {
                if let Err(e) = activation::activate(node, cert, &format!("node {p}")) {
                    tracing::error!(key = %s.key, error = %e, "activating a certified generation failed");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(node = p, key = %s.key, error = %e, "a peer handed over an invalid certificate");
                node.metrics.observe_culprits(
                    "generation",
                    &[api::Excluded {
                        node: *p,
                        reason: format!("invalid certificate: {e}"),
                    }],
                );
            }
        }
    }
    for (p, answer) in &answers {
        if let Some(refusal) = &answer.refusal {
            if refusal.proves_aborted(&node.signers, s).is_ok() {
                let why = format!("node {} refused it (asked node {p})", refusal.signer);
                activation::discard(node, pending, &why);
                return;
            }
        }
    }
}

/// Before a signer or decryptor answers for generation `key_session` of `key`, which it holds
/// only pending: settles it with the coordinator, who is on that generation.
pub async fn settle_if_pending(node: &Arc<Node>, key: &str, key_session: &str, from: u16) {
    if key_session.is_empty() || node.key_at(key, key_session).is_ok() || node.is_sealed() {
        return;
    }
    if let Ok(Some(p)) = node.store.pending(key) {
        if p.statement.session == key_session {
            settle(node, &p, &[from]).await;
        }
    }
}

/// When a peer refused a key operation because it holds another generation of the key than
/// this node asked for, this node may be the one behind: settle now rather than at the next
/// tick (DESIGN.md §11).
pub fn settle_if_other_generation(node: &Node, answer: &PeerResponse) {
    if let PeerResponse::Error {
        code: crate::peer::PeerErrorCode::Conflict,
        ..
    } = answer
    {
        node.reconcile.notify_one();
    }
}

/// Every member's acknowledgement of `certificate` that `answers` carry, plus this node's.
fn acks_of(
    node: &Node,
    certificate: &GenerationCertificate,
    answers: &[(u16, GenerationAnswer)],
) -> BTreeMap<u16, String> {
    let s = &certificate.statement;
    let mut acks: BTreeMap<u16, String> = answers
        .iter()
        .filter_map(|(p, a)| Some((*p, a.ack.clone()?)))
        .filter(|(p, sig)| {
            generation::verify_ack(&node.signers, *p, &s.key, &s.session, sig).is_ok()
        })
        .collect();
    if let Some(own) = activation::acknowledgement(node, certificate) {
        acks.insert(node.id(), own);
    }
    acks
}

/// Erases the generation that `name`'s live one replaced, once every member acknowledged it.
async fn close_previous(node: &Arc<Node>, name: &str) {
    let Ok(Some(record)) = node.store.record(name) else {
        return;
    };
    let Ok(Some(certificate)) = node.store.certificate(&record.session) else {
        return;
    };
    let others = others(node, &certificate.statement.members);
    let answers = ask(node, &others, name, &record.session).await;
    let acks = acks_of(node, &certificate, &answers);
    if generation::all_acknowledged(&node.signers, &certificate, &acks) {
        if let Err(e) = activation::close(node, &certificate, &acks) {
            tracing::warn!(key = name, error = %e, "closing a generation failed");
        }
    }
}

/// Hands a ceremony this node committed as coordinator to every member that has not
/// acknowledged it; closes it once all have.
async fn finish_coordinated(node: &Arc<Node>, session: &str, name: &str) {
    let Ok(Some(certificate)) = node.store.certificate(session) else {
        let _ = node.store.close_coordinated(session);
        return;
    };
    let members = certificate.statement.members.clone();
    let answers = ask(node, &others(node, &members), name, session).await;
    let mut acks = acks_of(node, &certificate, &answers);
    let missing: Vec<u16> = members
        .iter()
        .copied()
        .filter(|p| !acks.contains_key(p))
        .collect();
    if !missing.is_empty() {
        let commit = PeerRequest::DkgCommit {
            certificate: certificate.clone(),
        };
        acks.extend(collect_acks(node, session, &missing, &commit, None).await);
    }
    if !generation::all_acknowledged(&node.signers, &certificate, &acks) {
        return;
    }
    let close = PeerRequest::DkgClose {
        key: name.to_string(),
        acks,
    };
    join_all(
        members
            .iter()
            .map(|p| transport::call(node, *p, session, &close, None)),
    )
    .await;
    if let Err(e) = node.store.close_coordinated(session) {
        tracing::error!(error = %e, "closing a coordinated ceremony failed");
    }
}

fn others(node: &Node, members: &[u16]) -> Vec<u16> {
    members
        .iter()
        .copied()
        .filter(|p| *p != node.id())
        .collect()
}

/// One pass over everything unsettled on this node.
pub async fn run_once(node: &Arc<Node>) {
    if node.is_sealed() {
        return;
    }
    for pending in node.store.all_pending().unwrap_or_default() {
        let s = &pending.statement;
        if node.coordinating.lock().contains(&s.session)
            || super::participant::sessions(node)
                .0
                .lock()
                .contains_key(&s.session)
        {
            continue;
        }
        // The coordinator too: it may hold the certificate without being a member, or, if it
        // is this node, answer with its own refusal.
        let mut peers = s.members.clone();
        if !peers.contains(&s.coordinator) {
            peers.push(s.coordinator);
        }
        settle(node, &pending, &peers).await;
    }
    for (session, name) in node.store.coordinated().unwrap_or_default() {
        if !node.coordinating.lock().contains(&session) {
            finish_coordinated(node, &session, &name).await;
        }
    }
    for name in node.store.previous_names().unwrap_or_default() {
        close_previous(node, &name).await;
    }
}

/// Runs [`run_once`] at start, every `timeouts.reconcile_ms`, and when woken.
pub fn spawn(node: &Arc<Node>) -> actix_web::rt::task::JoinHandle<()> {
    let node = node.clone();
    actix_web::rt::spawn(async move {
        loop {
            run_once(&node).await;
            tokio::select! {
                _ = actix_web::rt::time::sleep(node.config.timeouts.reconcile()) => {}
                _ = node.reconcile.notified() => {}
            }
        }
    })
}
