//! A key's life after its ceremony: `POST /v1/keys/{name}/refresh`, `/repair`, `/reshare`,
//! and `DELETE /v1/keys/{name}` (retire). None of them reconstructs the key.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{KeyInfo, RefreshRequest, RepairRequest, ReshareRequest};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::audit::hex_sha256;
use crate::auth::policy::Permission;
use crate::auth::AuditedOperation;
use crate::node::Node;

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

/// Runs a refresh, repair or reshare the client signed, audits it and answers the key.
async fn renew(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
    operation: &'static str,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    let (caller, request) =
        super::auth::key_operation(&req, &node, &body, &name, operation, Permission::Manage)?;
    let (action, metric) = match operation {
        "refresh" => ("key.refresh", "refresh_key"),
        "repair" => ("key.repair", "repair_key"),
        _ => ("key.reshare", "reshare_key"),
    };
    let outcome = match operation {
        "refresh" => {
            if !body.is_empty() {
                parse::<RefreshRequest>(&body, "refresh request")?;
            }
            crate::ceremony::renewal::refresh(&node, &name, &request).await
        }
        "repair" => {
            let repair: RepairRequest = parse(&body, "repair request")?;
            crate::repair::coordinator::repair(&node, &name, repair, &request).await
        }
        _ => {
            let reshare: ReshareRequest = parse(&body, "reshare request")?;
            crate::ceremony::renewal::reshare(&node, &name, reshare, &request).await
        }
    };
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action,
        key: &name,
        role: "coordinator",
    };
    let (outcome_text, culprits) = match &outcome {
        Ok(_) => ("ok", vec![]),
        Err(e) => ("failed", e.body.culprits.iter().map(|c| c.node).collect()),
    };
    let details = serde_json::json!({
        "request_sha256": hex_sha256(&body),
        "generation": outcome.as_ref().ok().map(|(r, _, _)| r.generation),
        "participants": outcome.as_ref().ok().map(|(r, _, _)| r.participants.clone()),
        "threshold": outcome.as_ref().ok().map(|(r, _, _)| r.threshold),
        "error": outcome.as_ref().err().map(|e| e.body.message.clone()),
    });
    audit
        .record(&node, outcome_text, culprits, details)
        .map_err(|e| ApiError::internal(format!("audit trail: {e}")))?;
    let (record, policy, cost) = outcome.inspect_err(|e| {
        node.metrics.observe_culprits(metric, &e.body.culprits);
    })?;
    let stats = cost.to_api();
    node.metrics.observe_cost(metric, &stats);
    let mut info: KeyInfo =
        super::keys::key_info(&record, &policy).map_err(|e| ApiError::internal(e.to_string()))?;
    info.ceremony = Some(stats);
    Ok(HttpResponse::Ok().json(info))
}

pub async fn refresh(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, "refresh").await
}

pub async fn repair(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, "repair").await
}

pub async fn reshare(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, "reshare").await
}

/// Erases every share of the key on every node (an admin-log change, so all or none), and
/// answers its public data, now `retired`.
pub async fn retire(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    crate::ceremony::renewal::current(&node, &name)?;
    super::admin::change(req, node.clone(), body, "key.retire", Some(&name)).await?;
    let record = node
        .store
        .record(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    let policy = node.policy(&name).unwrap_or_default();
    let info =
        super::keys::key_info(&record, &policy).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(info))
}
