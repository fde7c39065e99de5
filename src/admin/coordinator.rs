//! Coordinating a client or policy change: prepare on every node, then commit on every node.

use std::sync::Arc;

use actix_web::http::StatusCode;
use api::{ChangeApplied, Excluded};
use futures::future::join_all;

use crate::auth::ClientRequest;
use crate::http::error::ApiError;
use crate::node::Node;
use crate::peer::{transport, PeerErrorCode, PeerRequest, PeerResponse};

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

/// Applies the change a signed request asks for on every node, or on none.
pub async fn change(node: &Arc<Node>, request: ClientRequest) -> Result<ChangeApplied, ApiError> {
    let _applying = node.admin.applying.lock().await;
    if request.admin_seq != node.admin_seq() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "retry",
            "this node applied another change meanwhile; sign the request again",
        ));
    }
    let seq = request.admin_seq + 1;
    let prepared = everyone(node, &PeerRequest::AdminPrepare { seq, request }).await;
    let mut refusals: Vec<Excluded> = Vec::new();
    let mut own_refusal = None;
    for (p, answer) in prepared {
        match answer {
            Ok(PeerResponse::Ack) => {}
            Ok(PeerResponse::Error { code, message, .. }) => {
                if p == node.id() {
                    own_refusal = Some((code, message.clone()));
                }
                if code == PeerErrorCode::StalePolicy {
                    crate::admin::spawn_catch_up(node, p);
                }
                refusals.push(Excluded {
                    node: p,
                    reason: message,
                });
            }
            Ok(_) => refusals.push(Excluded {
                node: p,
                reason: "answered with an unexpected message".into(),
            }),
            Err(e) => refusals.push(Excluded { node: p, reason: e }),
        }
    }
    if !refusals.is_empty() {
        everyone(node, &PeerRequest::AdminAbort { seq }).await;
        let who: Vec<String> = refusals
            .iter()
            .map(|c| format!("node {}: {}", c.node, c.reason))
            .collect();
        let status = match own_refusal.map(|(code, _)| code) {
            Some(PeerErrorCode::Unauthorized) => StatusCode::FORBIDDEN,
            Some(PeerErrorCode::Invalid) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        return Err(ApiError::new(
            status,
            "change_not_applied",
            format!(
                "the change was applied nowhere: every node must accept it ({})",
                who.join("; ")
            ),
        )
        .with_culprits(refusals));
    }
    let mut nodes = Vec::new();
    for (p, answer) in everyone(node, &PeerRequest::AdminCommit { seq }).await {
        match answer {
            Ok(PeerResponse::Ack) => nodes.push(p),
            // Every node prepared it, so it is decided; a node that missed the commit catches
            // up from the next coordinator that is ahead of it.
            other => {
                tracing::warn!(node = p, seq, answer = ?other, "admin commit not acknowledged")
            }
        }
    }
    Ok(ChangeApplied {
        admin_seq: seq,
        nodes,
    })
}
