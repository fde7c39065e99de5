//! The two HTTP listeners: the client API (`/v1/...`, bearer-token authenticated except
//! `/v1/health`, `/v1/openapi.json` and `/metrics`) and the peer API (`/peer/v1/message`, signed
//! envelopes only). Both serve TLS when the config has `[tls]`.

pub mod admin;
pub mod auth;
pub mod body;
pub mod console;
pub mod keys;
pub mod lifecycle;
pub mod ops;
pub mod peer;
pub mod reject;
pub mod report;
pub mod requests;
pub mod status;

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};

use crate::error::{self, ApiError};
use crate::node::Node;

/// Largest client request body: a full decryption batch of small records fits comfortably.
pub const CLIENT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// How often a running node pings its peers for the reachability metric.
pub const PEER_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);
/// Largest peer message: a ceremony round of a 64-node cluster or a full decryption batch.
pub const PEER_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn client_routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config(CLIENT_BODY_LIMIT))
        .app_data(web::PayloadConfig::new(CLIENT_BODY_LIMIT))
        .app_data(error::path_config())
        .app_data(error::query_config())
        .configure(console::routes)
        .route("/v1/health", web::get().to(status::health))
        .route("/v1/openapi.json", web::get().to(status::openapi))
        .route("/metrics", web::get().to(status::metrics))
        .route("/v1/status", web::get().to(status::status))
        .route("/v1/keys", web::post().to(keys::create))
        .route("/v1/keys", web::get().to(keys::list))
        .route("/v1/keys/{name}", web::get().to(keys::show))
        .route("/v1/keys/{name}", web::delete().to(lifecycle::retire))
        .route(
            "/v1/keys/{name}/refresh",
            web::post().to(lifecycle::refresh),
        )
        .route("/v1/keys/{name}/repair", web::post().to(lifecycle::repair))
        .route(
            "/v1/keys/{name}/reshare",
            web::post().to(lifecycle::reshare),
        )
        .route("/v1/keys/{name}/sign", web::post().to(ops::sign))
        .route("/v1/keys/{name}/verify", web::post().to(ops::verify))
        .route("/v1/keys/{name}/decrypt", web::post().to(ops::decrypt))
        .route(
            "/v1/keys/{name}/decrypt/report",
            web::post().to(report::decrypt_report),
        )
        .route("/v1/keys/{name}/encrypt", web::post().to(ops::encrypt))
        .route(
            "/v1/keys/{name}/decrypt-requests",
            web::post().to(requests::create),
        )
        .route("/v1/decrypt-requests", web::get().to(requests::list))
        .route("/v1/decrypt-requests/{id}", web::get().to(requests::show))
        .route(
            "/v1/decrypt-requests/{id}/approve",
            web::post().to(requests::approve),
        )
        .route(
            "/v1/decrypt-requests/{id}/deny",
            web::post().to(requests::deny),
        )
        .route(
            "/v1/decrypt-requests/{id}/execute",
            web::post().to(requests::execute),
        )
        .route("/v1/keys/{name}/policy", web::put().to(admin::set_policy))
        .route("/v1/clients", web::get().to(admin::list_clients))
        .route("/v1/clients", web::post().to(admin::put_client))
        .route("/v1/clients/{name}", web::delete().to(admin::remove_client))
        .route("/v1/audit", web::get().to(admin::audit))
        .route("/v1/audit/heads", web::get().to(admin::audit_heads))
        .route("/v1/sys/seal", web::post().to(admin::seal))
        .route("/v1/sys/unseal", web::post().to(admin::unseal))
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
    node.set_local_router(crate::router::handle);
    // A proposal this node coordinated and left undecided when it stopped can no longer
    // gather votes: abort it before serving, so its voters may release their votes
    // (DESIGN.md §11).
    let aborted = crate::admin::proposal::abort_undecided(&node).map_err(std::io::Error::other)?;
    if aborted > 0 {
        tracing::info!(
            aborted,
            "aborted admin proposals left undecided at the last stop"
        );
    }
    let workers = node.config.workers.max(1);
    let data = web::Data::from(node.clone());
    let tls_error = |e: anyhow::Error| std::io::Error::other(format!("TLS: {e:#}"));
    let client = {
        let data = data.clone();
        let server = HttpServer::new(move || {
            let node = data.clone().into_inner();
            App::new()
                .app_data(data.clone())
                .wrap_fn(move |req, srv| {
                    // Counted here, around the handlers, so every answer is seen, errors and
                    // rejected bodies included.
                    let operation = crate::metrics::operation_of(req.method(), req.path());
                    let started = std::time::Instant::now();
                    // A source over its rejection rate is refused before anything is checked.
                    let answer = match reject::guard(&node, req.request()) {
                        Ok(()) => futures::future::Either::Left(srv.call(req)),
                        Err(e) => futures::future::Either::Right(futures::future::ready(Err(
                            actix_web::Error::from(e),
                        ))),
                    };
                    let node = node.clone();
                    async move {
                        let answer = answer.await;
                        let status = match &answer {
                            Ok(res) => res.status(),
                            Err(e) => e.as_response_error().status_code(),
                        };
                        node.metrics
                            .observe_request(operation, status, started.elapsed());
                        answer
                    }
                })
                .configure(client_routes)
        })
        .workers(workers)
        .shutdown_timeout(5);
        match &node.config.tls {
            Some(tls) => server.bind_rustls_0_23(
                node.config.client_listen,
                crate::tls::client_listener(tls).map_err(tls_error)?,
            )?,
            None => server.bind(node.config.client_listen)?,
        }
        .run()
    };
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(peer_routes))
        .workers(workers)
        .shutdown_timeout(5);
    let peer = match &node.config.tls {
        Some(tls) => server.bind_rustls_0_23(
            node.config.peer_listen,
            crate::tls::peer_listener(tls).map_err(tls_error)?,
        )?,
        None => server.bind(node.config.peer_listen)?,
    }
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
        tls = node.config.tls.is_some(),
        keys = node.keys.read().len(),
        "keyquorum node listening"
    );
    // Catches up on client and policy changes before serving key operations, then resolves
    // old votes and fetches certified entries now and then (DESIGN.md §11).
    let admin_sync = actix_web::rt::spawn(crate::admin::sync::run(node.clone()));
    // Unfinished key generations settle at start and then in the background.
    let reconciler = crate::ceremony::reconcile::spawn(&node);
    let expiry = {
        let node = node.clone();
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(std::time::Duration::from_secs(2)).await;
                node.expire_sessions();
            }
        })
    };
    // Keeps the peer reachability metric current between requests; a scrape then shows a
    // peer that went down even when no operation needed it.
    let probe = {
        let node = node.clone();
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(PEER_PROBE_INTERVAL).await;
                status::ping_peers(&node).await;
                // Each node audits the requests that expired on its own clock.
                if let Err(e) = crate::admin::requests::audit_expired(&node) {
                    tracing::warn!(error = %e, "auditing expired decryption requests failed");
                }
            }
        })
    };
    // Peers record each other's signed audit heads, at start and periodically, so a trail
    // truncated or rewritten on disk is noticed by the others (DESIGN.md §11).
    let witness = crate::witness::spawn(&node);
    let result = futures::future::try_join(servers.client, servers.peer)
        .await
        .map(|_| ());
    expiry.abort();
    reconciler.abort();
    probe.abort();
    witness.abort();
    admin_sync.abort();
    if let Err(e) = node.store.flush() {
        tracing::error!(error = %e, "flushing the store at shutdown failed");
    }
    tracing::info!(node = node.id(), "keyquorum node stopped");
    result
}
