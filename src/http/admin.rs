//! Clients, key policies, the audit trail, and sealing: `/v1/clients`, `/v1/keys/{name}/policy`,
//! `/v1/audit`, `/v1/sys/seal`, `/v1/sys/unseal`.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{AuditPage, ClientList, Role, SealState, UnsealRequest};
use serde::Deserialize;

use crate::audit::Record;
use crate::auth::{audit_denial, AuthError};
use crate::error::ApiError;
use crate::node::Node;
use crate::store::StoreError;

pub async fn list_clients(
    req: HttpRequest,
    node: web::Data<Node>,
) -> Result<HttpResponse, ApiError> {
    super::auth::reader(&req, &node)?;
    Ok(HttpResponse::Ok().json(ClientList {
        clients: node.clients.read().values().cloned().collect(),
        admin_seq: node.admin_seq(),
    }))
}

/// A client or policy change: checked here, then prepared and committed on every node.
pub(crate) async fn change(
    req: HttpRequest,
    node: web::Data<Node>,
    body: super::body::RawBody,
    action: &'static str,
    key: Option<&str>,
) -> Result<api::ChangeApplied, ApiError> {
    let node = node.into_inner();
    let (caller, request) = super::auth::signed(&req, &node, &body, action, key)?;
    let change = crate::admin::Change::of(&request).map_err(ApiError::bad_request)?;
    if let Err(e) = crate::admin::authorize(&node, &caller, &change) {
        audit_denial(&node, &request, key, action, "coordinator", &e);
        return Err(match e {
            AuthError::Malformed(m) => ApiError::bad_request(m),
            e => e.into(),
        });
    }
    crate::admin::coordinator::change(&node, request).await
}

pub async fn put_client(
    req: HttpRequest,
    node: web::Data<Node>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(change(req, node, body, "client.put", None).await?))
}

pub async fn remove_client(
    req: HttpRequest,
    node: web::Data<Node>,
    _name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        change(
            req,
            node,
            super::body::RawBody(web::Bytes::new()),
            "client.remove",
            None,
        )
        .await?,
    ))
}

pub async fn set_policy(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    if node.policy(&name).is_none() {
        return Err(ApiError::not_found(format!(
            "no key named {name} on this node"
        )));
    }
    change(req, node.clone(), body, "policy.set", Some(&name)).await?;
    Ok(HttpResponse::Ok().json(crate::keyview::stored_info(&node, &name)?))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// Admits a reader of the audit trail: a bearer token, or a signed admin or auditor.
fn audit_reader(req: &HttpRequest, node: &Node) -> Result<(), ApiError> {
    if let Some(caller) = super::auth::reader(req, node)? {
        if !(caller.has_role(Role::Admin) || caller.has_role(Role::Auditor)) {
            return Err(ApiError::forbidden(format!(
                "client {} may not read the audit trail (needs admin or auditor)",
                caller.name()
            )));
        }
    }
    Ok(())
}

/// `GET /v1/audit/heads`: this node's signed head and the peers' heads it recorded.
pub async fn audit_heads(
    req: HttpRequest,
    node: web::Data<Node>,
) -> Result<HttpResponse, ApiError> {
    audit_reader(&req, &node)?;
    let peers = node
        .audit
        .peers
        .list()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(api::AuditHeads {
        own: node.audit.head(),
        peers,
    }))
}

pub async fn audit(
    req: HttpRequest,
    node: web::Data<Node>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    audit_reader(&req, &node)?;
    let limit = query.limit.clamp(1, 1000);
    let entries = node
        .audit
        .page(query.after, limit + 1)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next_after = (entries.len() > limit).then(|| entries[limit - 1].seq);
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().take(limit).collect(),
        next_after,
        next: next_after.map(|n| n.to_string()),
    }))
}

pub async fn seal(
    req: HttpRequest,
    node: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (caller, request) = super::auth::signed(&req, &node, &body, "seal", None)?;
    if !caller.has_role(Role::Admin) {
        let e = AuthError::Forbidden(format!("client {} is not an admin", caller.name()));
        audit_denial(&node, &request, None, "seal", "coordinator", &e);
        return Err(e.into());
    }
    node.seal();
    node.metrics.set_sealed(true);
    node.audit
        .append(Record {
            client: Some(caller.name().to_string()),
            action: "seal",
            role: "coordinator",
            details: serde_json::json!({ "operation": request.operation }),
            outcome: "ok",
            ..Default::default()
        })
        .map_err(|e| ApiError::internal(format!("audit trail: {e}")))?;
    tracing::warn!(
        client = caller.name(),
        "node sealed: key material dropped from memory"
    );
    Ok(HttpResponse::Ok().json(SealState { sealed: true }))
}

/// Unsealing a passphrase node needs the passphrase and nothing else, as an operator at the
/// console would; Argon2id makes each guess cost, and guesses are taken one at a time. A node
/// sealed by a PKCS#11 token unseals through the token with no secret in the request, so the
/// request must be signed by an admin, as sealing is.
pub async fn unseal(
    req: HttpRequest,
    node: web::Data<Node>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    let mut request: UnsealRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid unseal request: {e}")))?;
    let passphrase = zeroize::Zeroizing::new(std::mem::take(&mut request.passphrase));
    let by_token = node.seal_kind() == "pkcs11";
    let mut client = None;
    if by_token {
        let (caller, signed) = super::auth::signed(&req, &node, &body, "unseal", None)?;
        if !caller.has_role(Role::Admin) {
            let e = AuthError::Forbidden(format!("client {} is not an admin", caller.name()));
            audit_denial(&node, &signed, None, "unseal", "coordinator", &e);
            return Err(e.into());
        }
        client = Some(caller.name().to_string());
    } else if passphrase.is_empty() {
        return Err(ApiError::bad_request(
            "this node is sealed by a passphrase: give it in \"passphrase\"",
        ));
    }
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    if !node.is_sealed() {
        return Ok(HttpResponse::Ok().json(SealState { sealed: false }));
    }
    let result = {
        let node = node.clone();
        web::block(move || node.unseal(&passphrase))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    };
    let outcome = if result.is_ok() { "ok" } else { "denied" };
    node.audit
        .append(Record {
            client,
            action: "unseal",
            role: "coordinator",
            details: serde_json::json!({ "seal": node.seal_kind() }),
            outcome,
            ..Default::default()
        })
        .map_err(|e| ApiError::internal(format!("audit trail: {e}")))?;
    match result {
        Ok(()) => {
            node.metrics.set_sealed(false);
            tracing::info!(seal = node.seal_kind(), "node unsealed");
            Ok(HttpResponse::Ok().json(SealState { sealed: false }))
        }
        Err(StoreError::WrongPassphrase) => Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "wrong_passphrase",
            "the passphrase does not unwrap this node's data key; the node stays sealed",
        )),
        Err(e @ StoreError::WrongPin { .. }) => Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "wrong_pin",
            format!("{e}; the node stays sealed"),
        )),
        Err(StoreError::Seal(message)) => Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "seal_unavailable",
            format!("{message}; the node stays sealed"),
        )),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
