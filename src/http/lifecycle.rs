//! A key's life after its ceremony: `POST /v1/keys/{name}/refresh`, `/repair`, `/reshare`,
//! and `DELETE /v1/keys/{name}` (retire). None of them reconstructs the key.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{KeyInfo, RefreshRequest, RepairRequest, ReshareRequest};
use serde::de::DeserializeOwned;

use crate::audit::hex_sha256;
use crate::auth::policy::Permission;
use crate::auth::AuditedOperation;
use crate::error::ApiError;
use crate::node::Node;

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

/// The ceremonies that renew an existing key's shares.
#[derive(Clone, Copy)]
enum Renewal {
    Refresh,
    Repair,
    Reshare,
}

impl Renewal {
    /// The last path segment, which the signed request must name.
    fn operation(self) -> &'static str {
        match self {
            Renewal::Refresh => "refresh",
            Renewal::Repair => "repair",
            Renewal::Reshare => "reshare",
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Renewal::Refresh => "key.refresh",
            Renewal::Repair => "key.repair",
            Renewal::Reshare => "key.reshare",
        }
    }

    /// The operation label of the metrics, as `metrics::operation_of` names the request.
    fn metric(self) -> &'static str {
        match self {
            Renewal::Refresh => "refresh_key",
            Renewal::Repair => "repair_key",
            Renewal::Reshare => "reshare_key",
        }
    }
}

/// Runs a refresh, repair or reshare the client signed, audits it and answers the key.
async fn renew(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
    renewal: Renewal,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    // Before authenticating: a node that just started judges the request by the registry
    // and policies it caught up on, never by the ones it had when it stopped.
    crate::admin::sync::ensure_caught_up(&node).await?;
    let operation = renewal.operation();
    let (caller, request) =
        super::auth::key_operation(&req, &node, &body, &name, operation, Permission::Manage)?;
    let what = format!("{operation} request");
    let outcome = match renewal {
        Renewal::Refresh => {
            if !body.is_empty() {
                parse::<RefreshRequest>(&body, &what)?;
            }
            crate::ceremony::renewal::refresh(&node, &name, &request).await
        }
        Renewal::Repair => {
            let repair: RepairRequest = parse(&body, &what)?;
            crate::repair::coordinator::repair(&node, &name, repair, &request).await
        }
        Renewal::Reshare => {
            let reshare: ReshareRequest = parse(&body, &what)?;
            crate::ceremony::renewal::reshare(&node, &name, reshare, &request).await
        }
    };
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action: renewal.audit_action(),
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
        node.metrics
            .observe_culprits(renewal.metric(), &e.body.culprits);
    })?;
    let stats = cost.to_api();
    node.metrics.observe_cost(renewal.metric(), &stats);
    let mut info: KeyInfo = crate::keyview::key_info(&record, &policy)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    info.ceremony = Some(stats);
    Ok(HttpResponse::Ok().json(info))
}

pub async fn refresh(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, Renewal::Refresh).await
}

pub async fn repair(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, Renewal::Repair).await
}

pub async fn reshare(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    renew(req, node, name, body, Renewal::Reshare).await
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
    Ok(HttpResponse::Ok().json(crate::keyview::stored_info(&node, &name)?))
}
