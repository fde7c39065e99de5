//! Coordinating a client or policy change (DESIGN.md §11): record the proposal, collect
//! votes, and with `q` valid ones record and send the certificate with the entry; otherwise
//! record and send a signed abort, so that the voters release their votes.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use api::{ChangeApplied, Excluded};
use futures::future::join_all;

use super::proposal::{self, Decision};
use crate::auth::{AuthError, ClientRequest};
use crate::error::ApiError;
use crate::node::Node;
use crate::peer::{PeerErrorCode, PeerRequest, PeerResponse};
use crate::state::admin_log::{self as entry, AdminEntry, Certificate};
use crate::transport;

async fn everyone(
    node: &Arc<Node>,
    request: &PeerRequest,
) -> Vec<(u16, Result<PeerResponse, String>)> {
    let session = crate::random_id();
    join_all(node.members.keys().map(|p| {
        let session = &session;
        async move {
            (
                *p,
                transport::call(node, *p, session, request, None)
                    .await
                    .map_err(|e| e.to_string()),
            )
        }
    }))
    .await
}

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("admin log: {e}"))
}

/// Applies the change a signed request asks for on every node that accepts it, provided at
/// least `q` do; otherwise on none.
pub async fn change(node: &Arc<Node>, request: ClientRequest) -> Result<ChangeApplied, ApiError> {
    let _one = node.admin.proposing.lock().await;
    let head = node.admin.head();
    if request.admin_seq != head.seq {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "retry",
            "this node applied another change meanwhile; sign the request again",
        ));
    }
    let sig = &request.authorization;
    if let Some(at) = super::applied_at(&node.store, &sig.client, &sig.nonce).map_err(internal)? {
        return Err(AuthError::Replayed(format!(
            "this request was applied already, as admin change {at}"
        ))
        .into());
    }
    let entry = AdminEntry {
        seq: head.seq + 1,
        prev_hash: head.hash,
        request,
    };
    let seq = entry.seq;
    let entry_hash = entry.hash();
    proposal::propose(&node.store, &entry).map_err(internal)?;

    let prepared = everyone(
        node,
        &PeerRequest::AdminPrepare {
            entry: entry.clone(),
        },
    )
    .await;
    let mut votes = BTreeMap::new();
    let mut refusals: Vec<Excluded> = Vec::new();
    let mut own_refusal = None;
    for (p, answer) in prepared {
        let reason = match answer {
            Ok(PeerResponse::AdminVote { signature }) => match entry::verify_vote(
                &node.signers,
                p,
                seq,
                &entry.prev_hash,
                &entry_hash,
                node.id(),
                &signature,
            ) {
                Ok(()) => {
                    votes.insert(p, signature);
                    continue;
                }
                Err(e) => format!("sent an invalid vote: {e}"),
            },
            Ok(PeerResponse::Error { code, message, .. }) => {
                if p == node.id() {
                    own_refusal = Some(code);
                }
                if code == PeerErrorCode::StalePolicy {
                    super::sync::spawn_catch_up(node, p);
                }
                message
            }
            Ok(_) => "answered with an unexpected message".into(),
            Err(e) => e,
        };
        refusals.push(Excluded { node: p, reason });
    }
    let quorum = node.config.admin_quorum();
    if votes.len() >= quorum {
        let certificate = Certificate {
            seq,
            prev_hash: entry.prev_hash.clone(),
            entry_hash: entry_hash.clone(),
            coordinator: node.id(),
            votes,
        };
        let decided = proposal::commit(&node.store, &certificate).map_err(internal)?;
        if let Decision::Commit { certificate } = decided {
            return Ok(commit(node, entry, certificate).await);
        }
        // Aborted meanwhile (a decision query found the proposal abandoned): fall through
        // and send that abort.
    }
    let signature = match proposal::abort(node, seq, &entry_hash).map_err(internal)? {
        Decision::Abort { signature } => signature,
        // Committed after all: not reachable while this task holds the proposal, but the
        // record is what counts.
        Decision::Commit { certificate } => return Ok(commit(node, entry, certificate).await),
        Decision::Undecided => return Err(ApiError::internal("the proposal stayed undecided")),
    };
    everyone(
        node,
        &PeerRequest::AdminAbort {
            seq,
            entry_hash,
            signature,
        },
    )
    .await;
    let who: Vec<String> = refusals
        .iter()
        .map(|c| format!("node {}: {}", c.node, c.reason))
        .collect();
    let status = match own_refusal {
        Some(PeerErrorCode::Unauthorized) => StatusCode::FORBIDDEN,
        Some(PeerErrorCode::Invalid) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    Err(ApiError::new(
        status,
        "change_not_applied",
        format!(
            "the change was applied nowhere: {quorum} of {} nodes must accept it ({})",
            node.members.len(),
            who.join("; ")
        ),
    )
    .with_culprits(refusals))
}

/// Sends the certified entry to every node; the answer names those that applied it. A node
/// that missed it applies it later from the certificate (decision query or catch-up).
async fn commit(node: &Arc<Node>, entry: AdminEntry, certificate: Certificate) -> ChangeApplied {
    let seq = entry.seq;
    let mut nodes = Vec::new();
    for (p, answer) in everyone(node, &PeerRequest::AdminCommit { entry, certificate }).await {
        match answer {
            Ok(PeerResponse::Ack) => nodes.push(p),
            other => {
                tracing::warn!(node = p, seq, answer = ?other, "admin commit not acknowledged")
            }
        }
    }
    ChangeApplied {
        admin_seq: seq,
        nodes,
    }
}
