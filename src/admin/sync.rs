//! Keeping a node's admin log current from evidence (DESIGN.md §11): fetching certified
//! entries from any peer (a peer's word, such as an `admin_seq` hint, only says where to look),
//! resolving old votes by asking their coordinator, and the background task doing both.

use std::sync::Arc;
use std::time::Duration;

use super::proposal::Decision;
use super::{apply_certified, blame, release_on_abort, vote, Applied, Refusal};
use crate::node::Node;
use crate::peer::{PeerRequest, PeerResponse};
use crate::transport;

/// How often a node that has not caught up since it started asks its peers again.
pub const STARTUP_RETRY: Duration = Duration::from_millis(200);
/// How often a caught-up node looks at its old votes.
pub const TICK: Duration = Duration::from_secs(2);
/// Every this many ticks, a caught-up node also fetches from its peers, in case it missed a
/// commit without holding a vote for it (it was down or refused the prepare).
const SWEEP_TICKS: u64 = 15;

/// Fetches from `peer` the certified entries after this node's head and applies those that
/// chain on, until it reaches the head the peer reported. A peer that hands over anything
/// unbelievable is named and audited. Returns the seq reached.
pub async fn catch_up(node: &Arc<Node>, peer: u16) -> anyhow::Result<u64> {
    loop {
        let since = node.admin_seq();
        let answer = transport::call(
            node,
            peer,
            &crate::random_id(),
            &PeerRequest::AdminLog { since },
            None,
        )
        .await?;
        let PeerResponse::AdminEntries { entries, head } = answer else {
            anyhow::bail!("node {peer} did not send its admin log");
        };
        let mut progressed = false;
        for logged in entries.iter().filter(|l| l.entry.seq > since) {
            match apply_certified(node, &logged.entry, &logged.certificate, "catch-up") {
                Ok(Applied::Now) => progressed = true,
                Ok(Applied::Already) => {}
                Err(Refusal::Behind(m)) => anyhow::bail!("node {peer} sent a gap: {m}"),
                Err(Refusal::Evidence(reason)) => {
                    blame(
                        node,
                        peer,
                        "admin.catch_up",
                        Some(&logged.entry),
                        &format!("node {peer} sent an uncertified admin log entry: {reason}"),
                    );
                    anyhow::bail!("node {peer} sent an unbelievable entry: {reason}");
                }
                Err(Refusal::Internal(m)) => anyhow::bail!(m),
            }
        }
        if node.admin_seq() >= head {
            node.admin.heard(peer, super::peers_to_hear(node));
            return Ok(node.admin_seq());
        }
        if !progressed {
            anyhow::bail!(
                "node {peer} claims entry {head} but sent nothing past {}",
                node.admin_seq()
            );
        }
    }
}

/// [`catch_up`] from `peer` in the background.
pub fn spawn_catch_up(node: &Arc<Node>, peer: u16) {
    let node = node.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = catch_up(&node, peer).await {
            tracing::warn!(peer, error = %e, "catching up on admin changes failed");
        }
    });
}

/// When a participant refused because its client and policy state differs from this node's,
/// fetches what it has that this node lacks (if anything), in the background.
pub fn catch_up_if_stale(node: &Arc<Node>, peer: u16, answer: &PeerResponse) {
    use crate::peer::PeerErrorCode;
    if let PeerResponse::Error {
        code: PeerErrorCode::StalePolicy,
        ..
    } = answer
    {
        spawn_catch_up(node, peer);
    }
}

/// Catches up from every peer at once; returns whether this node is caught up.
pub async fn catch_up_all(node: &Arc<Node>) -> bool {
    let peers: Vec<u16> = node
        .members
        .keys()
        .copied()
        .filter(|p| *p != node.id())
        .collect();
    let results = futures::future::join_all(peers.iter().map(|p| catch_up(node, *p))).await;
    for (peer, result) in peers.iter().zip(results) {
        if let Err(e) = result {
            tracing::debug!(peer, error = %e, "admin catch-up from peer failed");
        }
    }
    node.admin.caught_up()
}

/// Before a key operation: a node that has not caught up since it started tries once more,
/// then refuses with 503 `catching_up`.
pub async fn ensure_caught_up(node: &Arc<Node>) -> Result<(), crate::error::ApiError> {
    if node.admin.caught_up() || catch_up_all(node).await {
        return Ok(());
    }
    Err(catching_up(node.id()))
}

pub fn catching_up(id: u16) -> crate::error::ApiError {
    crate::error::ApiError::new(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "catching_up",
        format!(
            "node {id} has not yet caught up on client and policy changes since it started; \
             retry shortly"
        ),
    )
}

/// Asks the coordinator of each vote older than the operation timeout how it ended, and
/// applies the certificate or releases the vote on its signed abort.
pub async fn resolve_old_votes(node: &Arc<Node>) {
    let votes = match vote::all(&node.store) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "reading held admin votes failed");
            return;
        }
    };
    let timeout = node.config.timeouts.operation().as_millis() as u64;
    let now = crate::auth::now_ms();
    for v in votes
        .into_iter()
        .filter(|v| now.saturating_sub(v.at_ms) > timeout)
    {
        let seq = v.entry.seq;
        let entry_hash = v.entry.hash();
        let answer = transport::call(
            node,
            v.coordinator,
            &crate::random_id(),
            &PeerRequest::AdminDecision {
                seq,
                entry_hash: entry_hash.clone(),
            },
            None,
        )
        .await;
        match answer {
            Ok(PeerResponse::AdminDecided {
                decision: Decision::Commit { certificate },
            }) => match apply_certified(node, &v.entry, &certificate, "participant") {
                Ok(_) => {}
                Err(Refusal::Behind(_)) => {
                    let _ = catch_up(node, v.coordinator).await;
                    if let Err(Refusal::Evidence(reason)) =
                        apply_certified(node, &v.entry, &certificate, "participant")
                    {
                        blame(
                            node,
                            v.coordinator,
                            "admin.decision",
                            Some(&v.entry),
                            &reason,
                        );
                    }
                }
                Err(Refusal::Evidence(reason)) => {
                    blame(
                        node,
                        v.coordinator,
                        "admin.decision",
                        Some(&v.entry),
                        &reason,
                    );
                }
                Err(Refusal::Internal(m)) => tracing::error!(seq, error = m, "applying failed"),
            },
            Ok(PeerResponse::AdminDecided {
                decision: Decision::Abort { signature },
            }) => {
                if let Err(reason) = release_on_abort(node, seq, &entry_hash, &signature) {
                    blame(
                        node,
                        v.coordinator,
                        "admin.decision",
                        Some(&v.entry),
                        &reason,
                    );
                }
            }
            Ok(PeerResponse::AdminDecided {
                decision: Decision::Undecided,
            }) => {}
            other => {
                // The coordinator cannot tell: the position may have been decided by others.
                tracing::debug!(seq, coordinator = v.coordinator, answer = ?other, "no decision");
                catch_up_all(node).await;
            }
        }
    }
}

/// The background task of every node: until caught up, fetch from peers every
/// [`STARTUP_RETRY`]; then, every [`TICK`], resolve old votes, and now and then fetch again.
pub async fn run(node: Arc<Node>) {
    let mut ticks: u64 = 0;
    loop {
        if !node.admin.caught_up() {
            if catch_up_all(&node).await {
                tracing::info!(
                    node = node.id(),
                    seq = node.admin_seq(),
                    "caught up on admin changes"
                );
            } else {
                actix_web::rt::time::sleep(STARTUP_RETRY).await;
            }
            continue;
        }
        actix_web::rt::time::sleep(TICK).await;
        ticks += 1;
        resolve_old_votes(&node).await;
        if ticks % SWEEP_TICKS == 0 {
            catch_up_all(&node).await;
        }
    }
}
