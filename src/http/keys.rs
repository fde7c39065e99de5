//! Key ceremony and key reading: `POST /v1/keys`, `GET /v1/keys`, `GET /v1/keys/{name}`.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{CreateKeyRequest, KeyList, Role};

use crate::audit::{hex_sha256, Record};
use crate::auth::policy::Permission;
use crate::auth::{audit_denial, AuthError, Caller};
use crate::error::ApiError;
use crate::keyview::info_of;
use crate::node::Node;

pub async fn create(
    req: HttpRequest,
    node: web::Data<Node>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    // Before authenticating: a node that just started judges the request by the registry
    // and policies it caught up on, never by the ones it had when it stopped.
    crate::admin::sync::ensure_caught_up(&node).await?;
    let (caller, request) = super::auth::signed(&req, &node, &body, "key.create", None)?;
    let create: CreateKeyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid key request: {e}")))?;
    if !(caller.has_role(Role::KeyCreator) || caller.has_role(Role::Admin)) {
        let e = AuthError::Forbidden(format!("client {} may not create keys", caller.name()));
        audit_denial(
            &node,
            &request,
            Some(&create.name),
            "key.create",
            "coordinator",
            &e,
        );
        return Err(e.into());
    }
    if node.is_sealed() {
        return Err(ApiError::sealed(node.id()));
    }
    let name = create.name.clone();
    let outcome = crate::ceremony::coordinator::create_key(&node, create, &request, &caller).await;
    let (outcome_text, culprits) = match &outcome {
        Ok(_) => ("ok", vec![]),
        Err(e) => ("failed", e.body.culprits.iter().map(|c| c.node).collect()),
    };
    node.audit
        .append(Record {
            client: Some(caller.name().to_string()),
            action: "key.create",
            key: Some(name),
            role: "coordinator",
            details: serde_json::json!({
                "operation": request.operation,
                "request_sha256": hex_sha256(&body),
                "public_key": outcome.as_ref().ok().map(|(info, _)| info.public_key.clone()),
            }),
            outcome: outcome_text,
            culprits,
        })
        .map_err(|e| ApiError::internal(format!("audit trail: {e}")))?;
    if let Err(e) = &outcome {
        node.metrics
            .observe_culprits("create_key", &e.body.culprits);
    }
    let (mut info, cost) = outcome?;
    let stats = cost.to_api();
    node.metrics.observe_cost("create_key", &stats);
    info.ceremony = Some(stats);
    Ok(HttpResponse::Created().json(info))
}

/// Whether `reader` may read key `name` (a bearer token reads all).
fn may_read(node: &Node, reader: Option<&Caller>, name: &str) -> bool {
    let policy = node.policy(name).unwrap_or_default();
    reader.map_or(true, |c| {
        crate::auth::policy::check(&policy, name, c, Permission::Read).is_ok()
    })
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// Most keys one page holds; a listing reads one page of the store at a time, so its memory
/// and time do not grow with the number of keys.
const MAX_PAGE: usize = 1000;

pub async fn list(
    req: HttpRequest,
    node: web::Data<Node>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let reader = super::auth::reader(&req, &node)?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let mut records = node
        .store
        .records_page(query.after.as_deref(), limit + 1, |r| {
            may_read(&node, reader.as_ref(), &r.name)
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next = (records.len() > limit).then(|| records[limit - 1].name.clone());
    records.truncate(limit);
    let keys = records
        .iter()
        .map(|r| info_of(&node, r))
        .collect::<Result<_, _>>()?;
    Ok(HttpResponse::Ok().json(KeyList { keys, next }))
}

pub async fn show(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reader = super::auth::reader(&req, &node)?;
    let record = node
        .store
        .record(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    if !may_read(&node, reader.as_ref(), &name) {
        return Err(ApiError::forbidden(format!("you may not read key {name}")));
    }
    Ok(HttpResponse::Ok().json(info_of(&node, &record)?))
}
