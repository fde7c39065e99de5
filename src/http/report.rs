//! `POST /v1/keys/{name}/decrypt/report`: in end-to-end mode only the requester can check the
//! holders' proofs (DESIGN.md §6), so it reports the holders whose sealed partials failed; the
//! node audits the report (`decrypt.report`, naming them) and counts them as culprits.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{DecryptReport, ReportAccepted};

use crate::auth::policy::Permission;
use crate::auth::AuditedOperation;
use crate::error::ApiError;
use crate::node::Node;

pub async fn decrypt_report(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    crate::admin::sync::ensure_caught_up(&node).await?;
    let (caller, request) = super::auth::key_operation(
        &req,
        &node,
        &body,
        &name,
        "decrypt/report",
        Permission::Decrypt,
    )?;
    let report: DecryptReport = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid decrypt report: {e}")))?;
    if report.culprits.is_empty() || report.culprits.len() > usize::from(u16::MAX) {
        return Err(ApiError::bad_request("a report names at least one holder"));
    }
    node.metrics
        .observe_culprits("decrypt.report", &report.culprits);
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action: "decrypt.report",
        key: &name,
        role: "coordinator",
    };
    let details = serde_json::json!({
        "request_nonce": report.request_nonce,
        "reasons": report.culprits,
    });
    audit
        .record(
            &node,
            "ok",
            report.culprits.iter().map(|c| c.node).collect(),
            details,
        )
        .map_err(|e| ApiError::internal(format!("audit trail: {e}")))?;
    Ok(HttpResponse::Ok().json(ReportAccepted { recorded: true }))
}
