//! Decryption requests (README, "Decryption requests"): `POST /v1/keys/{name}/decrypt-requests`,
//! `GET /v1/decrypt-requests[?state=]`, `GET /v1/decrypt-requests/{id}`, and `approve`, `deny`,
//! `execute` on one. Each step is a signed request that goes through the admin log, so every
//! node checks it against its own copy of the request (`crate::admin::requests`).

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use api::{
    DecryptRequestCreated, DecryptRequestInfo, DecryptRequestList, ExecuteDecryptRequest,
    RequestState, Role,
};
use serde::Deserialize;

use crate::admin::requests::{self, audit_expired};
use crate::admin::Change;
use crate::auth::{audit_denial, AuditedOperation, AuthError, Caller, ClientRequest};
use crate::error::ApiError;
use crate::node::Node;
use crate::state::decrypt_requests::{names, StoredRequest};

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("decryption requests: {e}"))
}

/// Checks a signed step as its coordinator, then has every node log it.
async fn log_step(
    req: &HttpRequest,
    node: &Arc<Node>,
    body: &[u8],
    action: &'static str,
    key: Option<&str>,
) -> Result<(Caller, ClientRequest, Change), ApiError> {
    crate::admin::sync::ensure_caught_up(node).await?;
    let (caller, request) = super::auth::signed(req, node, body, action, key)?;
    let change = Change::of(&request).map_err(ApiError::bad_request)?;
    if let Err(e) = crate::admin::authorize(node, &caller, &change) {
        audit_denial(node, &request, key, action, "coordinator", &e);
        return Err(match e {
            AuthError::Malformed(m) => ApiError::bad_request(m),
            e => e.into(),
        });
    }
    crate::admin::coordinator::change(node, request.clone()).await?;
    Ok((caller, request, change))
}

fn stored(node: &Node, id: &str) -> Result<StoredRequest, ApiError> {
    requests::load(&node.store, id)
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "no_such_request",
                format!("no decryption request {id} on this node"),
            )
        })
}

pub async fn create(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    if node.policy(&name).is_none() {
        return Err(ApiError::not_found(format!("no key named {name}")));
    }
    // Refuse records that cannot be decrypted before approvers spend time on them.
    let key = super::ops::key_for(&node, &name)?;
    let scheme = super::ops::decryption_scheme(key.record.algorithm, &name)?;
    let create = crate::state::decrypt_requests::parse_create(
        &body,
        crate::state::decrypt_requests::MAX_RECORDS,
    )
    .map_err(ApiError::bad_request)?;
    for (i, record) in create.ciphertexts.iter().enumerate() {
        api::ciphertexts::parse_ciphertext(scheme, &record.item)
            .map_err(|e| ApiError::bad_request(format!("ciphertexts[{i}]: {e}")))?;
    }
    let (_, _, change) =
        log_step(&req, &node, &body, "decrypt_request.create", Some(&name)).await?;
    let Change::CreateDecryptRequest { id, .. } = change else {
        return Err(ApiError::bad_request("not a decryption request"));
    };
    let created = stored(&node, &id)?;
    let now = crate::clock::now_ms();
    let shown = created.to_api(now, false);
    Ok(HttpResponse::Created().json(DecryptRequestCreated {
        id,
        state: shown.state,
        approvals_needed: shown.approvals_needed,
        expires_at: shown.expires_at,
        content_sha256: shown.content_sha256,
    }))
}

/// Who may see a request: a bearer token, an admin or auditor, its requester, its approvers,
/// and whoever may read or manage its key.
fn visible(node: &Node, caller: Option<&Caller>, request: &StoredRequest) -> bool {
    let Some(caller) = caller else {
        return true;
    };
    if caller.has_role(Role::Admin) || caller.has_role(Role::Auditor) {
        return true;
    }
    let who = caller.name();
    who == request.requester
        || names(&request.approvers, who)
        || node
            .policy(&request.key)
            .is_some_and(|p| names(&p.read, who) || names(&p.manage, who))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    node: web::Data<Node>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::auth::reader(&req, &node)?;
    let wanted: Option<RequestState> = query
        .state
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    audit_expired(&node).map_err(internal)?;
    let now = crate::clock::now_ms();
    let mut shown: Vec<(u64, DecryptRequestInfo)> = requests::all(&node.store)
        .map_err(internal)?
        .into_iter()
        .filter(|r| visible(&node, caller.as_ref(), r))
        .map(|r| (r.created_ms, r.to_api(now, false)))
        .filter(|(_, r)| wanted.map_or(true, |s| r.state == s))
        .collect();
    shown.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(HttpResponse::Ok().json(DecryptRequestList {
        requests: shown.into_iter().map(|(_, r)| r).collect(),
    }))
}

pub async fn show(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::auth::reader(&req, &node)?;
    audit_expired(&node).map_err(internal)?;
    let request = stored(&node, &id)?;
    if !visible(&node, caller.as_ref(), &request) {
        return Err(ApiError::forbidden(format!(
            "client {} may not read request {id}",
            caller.map(|c| c.name().to_string()).unwrap_or_default()
        )));
    }
    Ok(HttpResponse::Ok().json(request.to_api(crate::clock::now_ms(), true)))
}

async fn review(
    req: HttpRequest,
    node: web::Data<Node>,
    id: &str,
    body: &[u8],
    action: &'static str,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    let key = stored(&node, id)?.key;
    log_step(&req, &node, body, action, Some(&key)).await?;
    Ok(HttpResponse::Ok().json(stored(&node, id)?.to_api(crate::clock::now_ms(), false)))
}

pub async fn approve(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    review(req, node, &id, &body, "decrypt_request.approve").await
}

pub async fn deny(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    review(req, node, &id, &body, "decrypt_request.deny").await
}

/// Logs the execution on every node, then decrypts exactly the approved records with the
/// signed execute request, which each holder checks against its own log.
pub async fn execute(
    req: HttpRequest,
    node: web::Data<Node>,
    id: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    let name = stored(&node, &id)?.key;
    let key = super::ops::key_for(&node, &name)?;
    let scheme = super::ops::decryption_scheme(key.record.algorithm, &name)?;
    let options: ExecuteDecryptRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid execute request: {e}")))?;
    let end_to_end_only = node
        .policy(&name)
        .is_some_and(|p| p.decrypt_mode == api::DecryptMode::EndToEnd);
    if end_to_end_only && options.reply_to.is_none() {
        // Refused before the execution is logged: it would be spent for nothing.
        return Err(ApiError::forbidden(format!(
            "key {name}'s policy allows only end-to-end decryption: name reply_to"
        )));
    }
    let (caller, mut request, _) =
        log_step(&req, &node, &body, "decrypt_request.execute", Some(&name)).await?;
    // A hint for holders that missed the commit: fetch the log up to the execution first.
    request.admin_seq = node.admin_seq();
    let request_now = stored(&node, &id)?;
    let batch = serde_json::to_vec(&api::DecryptRequest {
        ciphertexts: request_now.ciphertexts(),
        reply_to: options.reply_to,
        exclude: options.exclude,
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let parsed =
        crate::decryption::wire::parse_request(scheme, &batch).map_err(ApiError::bad_request)?;
    let caller = Caller {
        approvers: request_now
            .approvals
            .iter()
            .map(|a| a.client.clone())
            .collect(),
        ..caller
    };
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action: "decrypt",
        key: &name,
        role: "coordinator",
    };
    super::ops::run_decrypt(&node, &audit, &name, scheme, parsed, &request).await
}
