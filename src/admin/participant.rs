//! A node's side of a client or policy change (DESIGN.md §11): vote on a prepared entry
//! (at most one per seq, persisted first), apply a certified one, release a vote on its
//! coordinator's signed abort, answer decision queries about its own proposals, and serve
//! its certified log to nodes catching up.

use std::sync::Arc;

use super::proposal::{self, Decision};
use super::{
    applied_at, apply_certified, authorize, blame, release_on_abort, vote_for, Applied, Change,
    Refusal, VoteRefusal,
};
use crate::auth::{audit_denial, authenticate, AuthError};
use crate::node::Node;
use crate::peer::{PeerErrorCode, PeerResponse};
use crate::state::admin_log::{AdminEntry, Certificate, CertifiedEntry};

fn error(code: PeerErrorCode, message: impl Into<String>) -> PeerResponse {
    PeerResponse::error(code, message, None)
}

fn action_of(entry: &AdminEntry) -> &'static str {
    Change::of(&entry.request).map_or("admin.prepare", |c| c.action())
}

/// Whether `request` was signed within the accepted clock skew of now.
fn is_fresh(node: &Node, request: &crate::auth::ClientRequest) -> bool {
    let skew = node.config.timeouts.max_clock_skew_ms;
    request
        .authorization
        .timestamp_ms
        .abs_diff(crate::clock::now_ms())
        <= skew
}

/// Checks the signed request as a live one and votes for it at its position.
pub fn prepare(node: &Arc<Node>, from: u16, entry: AdminEntry) -> PeerResponse {
    let request = &entry.request;
    let change = match Change::of(request) {
        Ok(c) => c,
        Err(e) => return error(PeerErrorCode::Invalid, e),
    };
    // Before authentication, whose nonce cache lives in memory only: an applied request
    // offered again, at whatever position, is the offering node's doing.
    let (client, nonce) = entry.client_nonce();
    match applied_at(&node.store, &client, &nonce) {
        // A fresh request applied already is a client's retry through another node, which
        // had not seen the commit yet: refused, but nobody is to blame for it.
        Ok(Some(at)) if is_fresh(node, request) => {
            return error(
                PeerErrorCode::Unauthorized,
                format!(
                    "node {} refuses: the request (client {client}, nonce {nonce}) was applied \
                     as entry {at} already (a fresh request offered again is a client's retry: \
                     nobody is blamed)",
                    node.id()
                ),
            );
        }
        Ok(Some(at)) => {
            let reason = format!(
                "node {from} offers as entry {} a request (client {client}, nonce {nonce}) \
                 applied as entry {at}",
                entry.seq
            );
            return blame(node, from, "admin.prepare", Some(&entry), &reason);
        }
        Ok(None) => {}
        Err(e) => return error(PeerErrorCode::Invalid, e.to_string()),
    }
    let refuse = |e: AuthError| {
        audit_denial(node, request, None, change.action(), "participant", &e);
        crate::auth::peer_refusal(node, &e)
    };
    let caller = match authenticate(node, from, request) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    if let Err(e) = authorize(node, &caller, &change) {
        return refuse(e);
    }
    match vote_for(node, &entry, from) {
        Ok(signature) => PeerResponse::AdminVote { signature },
        Err(VoteRefusal::Stale(m)) => error(PeerErrorCode::StalePolicy, m),
        Err(VoteRefusal::Conflict(m)) => error(PeerErrorCode::Conflict, m),
        Err(VoteRefusal::Internal(m)) => error(PeerErrorCode::Invalid, m),
        Err(VoteRefusal::Fork(reason)) => blame(node, from, "admin.prepare", Some(&entry), &reason),
    }
}

/// Applies `entry` on its certificate, whoever sends it.
pub fn commit(
    node: &Arc<Node>,
    from: u16,
    entry: AdminEntry,
    certificate: Certificate,
) -> PeerResponse {
    let role = if from == node.id() {
        "coordinator"
    } else {
        "participant"
    };
    match apply_certified(node, &entry, &certificate, role) {
        Ok(Applied::Now | Applied::Already) => PeerResponse::Ack,
        Err(Refusal::Behind(m)) => error(PeerErrorCode::StalePolicy, m),
        Err(Refusal::Internal(m)) => error(PeerErrorCode::Invalid, m),
        Err(Refusal::Evidence(reason)) => {
            blame(node, from, action_of(&entry), Some(&entry), &reason)
        }
    }
}

/// Releases this node's vote at `seq` if the abort is its coordinator's, for that entry.
pub fn abort(
    node: &Arc<Node>,
    from: u16,
    seq: u64,
    entry_hash: &str,
    signature: &str,
) -> PeerResponse {
    match release_on_abort(node, seq, entry_hash, signature) {
        Ok(_) => PeerResponse::Ack,
        Err(reason) => blame(node, from, "admin.abort", None, &reason),
    }
}

/// How this node's proposal of (seq, entry) ended. A proposal it has no record of never had
/// its prepares sent (it records before sending), so it is aborted (and the abort recorded);
/// one undecided for longer than an operation was abandoned (its coordinator's task ended)
/// and is aborted too.
pub fn decision(node: &Arc<Node>, seq: u64, entry_hash: &str) -> PeerResponse {
    let decided = match proposal::get(&node.store, seq, entry_hash) {
        Ok(Some(p)) if p.decision == Decision::Undecided => {
            let age = crate::auth::now_ms().saturating_sub(p.at_ms);
            if age <= node.config.timeouts.operation().as_millis() as u64 {
                return PeerResponse::AdminDecided {
                    decision: Decision::Undecided,
                };
            }
            proposal::abort(node, seq, entry_hash)
        }
        Ok(Some(p)) => Ok(p.decision),
        Ok(None) => proposal::abort(node, seq, entry_hash),
        Err(e) => Err(e),
    };
    match decided {
        Ok(decision) => PeerResponse::AdminDecided { decision },
        Err(e) => error(PeerErrorCode::Invalid, e.to_string()),
    }
}

/// The certified entries after `since` (at most 1000; a node far behind asks again) and this
/// node's head.
pub fn log(node: &Arc<Node>, since: u64) -> PeerResponse {
    let head = node.admin_seq();
    let entries: Result<Vec<CertifiedEntry>, String> = node
        .store
        .admin_log()
        .range(since.saturating_add(1).to_be_bytes()..)
        .take(1000)
        .map(|item| {
            let (seq, json) = item.map_err(|e| e.to_string())?;
            node.store
                .read_tagged(crate::store::Tagged::AdminLog, &seq, &json)
                .map_err(|e| e.to_string())
        })
        .collect();
    match entries {
        Ok(entries) => PeerResponse::AdminEntries { entries, head },
        Err(e) => error(
            PeerErrorCode::Invalid,
            format!("reading the admin log: {e}"),
        ),
    }
}
