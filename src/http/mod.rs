//! The two HTTP listeners: the client API (`/v1/...`, bearer-token authenticated except
//! `/v1/health`) and the peer API (`/peer/v1/message`, signed envelopes only).

pub mod error;
pub mod keys;
pub mod ops;
pub mod peer;
pub mod status;

use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpServer};
use sha2::{Digest, Sha256};

use crate::node::Node;
use error::ApiError;

/// Largest client request body: a full decryption batch of small records fits comfortably.
pub const CLIENT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest peer message: a ceremony round of a 64-node cluster or a full decryption batch.
pub const PEER_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Checks the `Authorization: Bearer` token against the configured hashes.
pub fn authorize(req: &HttpRequest, node: &Node) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
        })?;
    let digest = hex::encode(Sha256::digest(token.trim().as_bytes()));
    if node
        .config
        .client_token_sha256
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&digest))
    {
        Ok(())
    } else {
        Err(ApiError::unauthorized("unknown or revoked token"))
    }
}

pub fn client_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config(CLIENT_BODY_LIMIT))
        .app_data(error::path_config())
        .route("/v1/health", web::get().to(status::health))
        .route("/v1/status", web::get().to(status::status))
        .route("/v1/keys", web::post().to(keys::create))
        .route("/v1/keys", web::get().to(keys::list))
        .route("/v1/keys/{name}", web::get().to(keys::show))
        .route("/v1/keys/{name}/sign", web::post().to(ops::sign))
        .route("/v1/keys/{name}/verify", web::post().to(ops::verify))
        .route("/v1/keys/{name}/decrypt", web::post().to(ops::decrypt))
        .route("/v1/keys/{name}/encrypt", web::post().to(ops::encrypt))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such endpoint"))
        }));
}

pub fn peer_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(PEER_BODY_LIMIT))
        .route("/peer/v1/message", web::post().to(peer::message))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such endpoint"))
        }));
}

/// The bound (not yet running) client and peer servers of a node.
pub struct Servers {
    pub client: actix_web::dev::Server,
    pub peer: actix_web::dev::Server,
}

/// Binds both listeners. Await the servers to run them; they stop on SIGINT/SIGTERM.
pub fn bind(node: Arc<Node>) -> std::io::Result<Servers> {
    let workers = node.config.workers.max(1);
    let data = web::Data::from(node.clone());
    let client = {
        let data = data.clone();
        HttpServer::new(move || App::new().app_data(data.clone()).configure(client_routes))
            .workers(workers)
            .shutdown_timeout(5)
            .bind(node.config.client_listen)?
            .run()
    };
    let peer = HttpServer::new(move || App::new().app_data(data.clone()).configure(peer_routes))
        .workers(workers)
        .shutdown_timeout(5)
        .bind(node.config.peer_listen)?
        .run();
    Ok(Servers { client, peer })
}

/// Runs a node until both servers stop (SIGINT/SIGTERM), expiring stale protocol sessions in
/// the background.
pub async fn run(node: Arc<Node>) -> std::io::Result<()> {
    let servers = bind(node.clone())?;
    serve_bound(node, servers).await
}

pub async fn serve_bound(node: Arc<Node>, servers: Servers) -> std::io::Result<()> {
    tracing::info!(
        node = node.id(),
        client = %node.config.client_listen,
        peer = %node.config.peer_listen,
        keys = node.keys.read().len(),
        "keyquorum node listening"
    );
    let expiry = {
        let node = node.clone();
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(std::time::Duration::from_secs(2)).await;
                node.expire_sessions();
            }
        })
    };
    let result = futures::future::try_join(servers.client, servers.peer)
        .await
        .map(|_| ());
    expiry.abort();
    if let Err(e) = node.store.flush() {
        tracing::error!(error = %e, "flushing the store at shutdown failed");
    }
    tracing::info!(node = node.id(), "keyquorum node stopped");
    result
}
