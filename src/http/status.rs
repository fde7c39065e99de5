//! `GET /v1/health` (liveness), `GET /v1/openapi.json`, `GET /metrics` (all three without
//! auth) and `GET /v1/status`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use api::{Health, PeerStatus, Status};

use crate::error::ApiError;
use crate::node::Node;
use crate::peer::{PeerRequest, PeerResponse};
use crate::transport;

pub async fn health(node: web::Data<Node>) -> HttpResponse {
    // Up, but refusing key operations until it has caught up on client and policy changes
    // (DESIGN.md §11): a client or orchestrator waits for "ok".
    let status = if node.admin.caught_up() {
        "ok"
    } else {
        "catching_up"
    };
    HttpResponse::Ok().json(Health {
        status: status.into(),
        node: node.id(),
    })
}

/// The OpenAPI document generated from the `api` crate's types, rendered once.
pub async fn openapi() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(api::openapi::json).clone())
}

/// Prometheus metrics. Unauthenticated like `/v1/health`: scrapers rarely carry bearer
/// tokens, and nothing in it is secret (counts, timings, node ids).
pub async fn metrics(node: web::Data<Node>) -> HttpResponse {
    node.metrics.set_keys(node.keys.read().len());
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(node.metrics.encode())
}

pub async fn status(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    super::auth::reader(&req, &node)?;
    let peers = ping_peers(&node).await;
    let keys = node.policies.read().len();
    let unsettled_keys = unsettled_everywhere(&node, &peers).await;
    Ok(HttpResponse::Ok().json(Status {
        node: node.id(),
        name: node.config.name.clone(),
        sealed: node.is_sealed(),
        keys,
        peers,
        admin_caught_up: node.admin.caught_up(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        unsettled_keys,
        seal: node.seal_kind().to_string(),
    }))
}

/// Every reachable node's keys between two generations, this node's first.
async fn unsettled_everywhere(node: &Arc<Node>, peers: &[PeerStatus]) -> Vec<api::UnsettledKey> {
    let session = crate::random_id();
    let asks = peers.iter().filter(|p| p.reachable).map(|p| {
        let session = &session;
        async move {
            match transport::call(node, p.node, session, &PeerRequest::Unsettled, None).await {
                Ok(PeerResponse::Unsettled { keys }) => {
                    // A peer speaks for itself only.
                    keys.into_iter().filter(|k| k.node == p.node).collect()
                }
                _ => Vec::new(),
            }
        }
    });
    let mut all = crate::ceremony::activation::unsettled(node);
    for keys in futures::future::join_all(asks).await {
        all.extend(keys);
    }
    all
}

/// Pings every other member at once (a signed round trip, 2 s each). The transport records
/// each outcome in the peer reachability metric.
pub async fn ping_peers(node: &Arc<Node>) -> Vec<PeerStatus> {
    let session = crate::random_id();
    let pings = node
        .members
        .values()
        .filter(|m| m.id != node.id())
        .map(|m| {
            let session = &session;
            async move {
                let ping = transport::call(node, m.id, session, &PeerRequest::Ping, None);
                let mut sealed = None;
                let outcome = match tokio::time::timeout(Duration::from_secs(2), ping).await {
                    Ok(Ok(PeerResponse::Pong { sealed: s })) => {
                        sealed = Some(s);
                        None
                    }
                    Ok(Ok(_)) => Some("unexpected answer".to_string()),
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => {
                        // The transport's own deadline did not fire first: record it here.
                        node.metrics
                            .set_peer_reachable(&node.config.members, m.id, false);
                        Some("timed out".to_string())
                    }
                };
                PeerStatus {
                    node: m.id,
                    name: m.name.clone(),
                    reachable: outcome.is_none(),
                    sealed,
                    error: outcome,
                }
            }
        });
    futures::future::join_all(pings).await
}
