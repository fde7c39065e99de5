//! Authenticating client requests at the node that receives them: signed requests
//! (`Authorization: KQ-Ed25519 …`, required for every call that changes or uses a key) and
//! bearer tokens (accepted for reads).

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use api::auth::{APPROVAL_HEADER, SCHEME};
use api::RequestSignature;
use sha2::{Digest, Sha256};

use crate::auth::policy::Permission;
use crate::auth::{
    audit_denial, authenticate, permit_key_operation, AuthError, Caller, ClientRequest,
};
use crate::error::ApiError;
use crate::node::Node;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = actix_web::http::StatusCode::from_u16(e.status())
            .unwrap_or(actix_web::http::StatusCode::UNAUTHORIZED);
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The request as signed, ready to forward to participants.
fn client_request(req: &HttpRequest, node: &Node, body: &[u8]) -> Result<ClientRequest, AuthError> {
    let header = header_text(req, AUTHORIZATION.as_str()).ok_or_else(|| {
        AuthError::Malformed(format!(
            "this call needs a signed request: Authorization: {SCHEME} client=…,node=…,ts=…,nonce=…,sig=…"
        ))
    })?;
    let authorization = RequestSignature::from_header(header).map_err(AuthError::Malformed)?;
    let approvals = req
        .headers()
        .get_all(APPROVAL_HEADER)
        .map(|v| {
            v.to_str()
                .map_err(|_| "not ASCII".to_string())
                .and_then(RequestSignature::from_header)
                .map_err(|e| AuthError::Malformed(format!("X-KQ-Approval: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientRequest {
        operation: crate::random_id(),
        admin_seq: node.admin_seq(),
        method: req.method().as_str().to_string(),
        path: req.path().to_string(),
        body: body.to_vec(),
        authorization,
        approvals,
    })
}

/// Refusals of requests no registered client vouched for, fresh: counted per source rather
/// than audited one by one ([`super::reject`]).
fn is_unauthenticated(e: &AuthError) -> bool {
    matches!(
        e,
        AuthError::Malformed(_)
            | AuthError::UnknownClient(_)
            | AuthError::BadSignature(_)
            | AuthError::Stale(_)
            | AuthError::Replayed(_)
            | AuthError::Misaddressed(_)
    )
}

/// Checks a signed request as its coordinator, applies the client's rate limit, and audits a
/// refusal as `action` on `key`.
pub fn signed(
    req: &HttpRequest,
    node: &Node,
    body: &[u8],
    action: &'static str,
    key: Option<&str>,
) -> Result<(Caller, ClientRequest), ApiError> {
    let request = client_request(req, node, body).inspect_err(|e| {
        super::reject::record(node, req, e.code(), None);
    })?;
    let caller = authenticate(node, node.id(), &request).inspect_err(|e| {
        if is_unauthenticated(e) {
            let claimed = request.authorization.client.as_str();
            super::reject::record(node, req, e.code(), Some(claimed));
        } else {
            audit_denial(node, &request, key, action, "coordinator", e);
        }
    })?;
    limit(node, caller.name())?;
    Ok((caller, request))
}

/// The coordinator's admission of a signed `operation` (`sign`, `decrypt`) on key `name`:
/// authentic (401), a key this node holds (404), allowed by its policy (403, audited), and the
/// node unsealed (503).
pub fn key_operation(
    req: &HttpRequest,
    node: &Node,
    body: &[u8],
    name: &str,
    operation: &'static str,
    permission: Permission,
) -> Result<(Caller, ClientRequest), ApiError> {
    let (caller, request) = signed(req, node, body, operation, Some(name))?;
    if node.policy(name).is_none() {
        return Err(ApiError::not_found(format!("no key named {name}")));
    }
    let caller = permit_key_operation(node, &request, caller, name, operation, permission)
        .inspect_err(|e| audit_denial(node, &request, Some(name), operation, "coordinator", e))?;
    if node.is_sealed() {
        return Err(ApiError::sealed(node.id()));
    }
    Ok((caller, request))
}

fn limit(node: &Node, client: &str) -> Result<(), ApiError> {
    node.rate.take(client).map_err(|wait| {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("client {client} is over its rate limit; retry in {seconds} s"),
        )
        .with_retry_after(seconds)
    })
}

/// Who is reading: `None` for a bearer token (which reads everything), or the signed caller.
pub fn reader(req: &HttpRequest, node: &Node) -> Result<Option<Caller>, ApiError> {
    reader_of(req, node, &[])
}

/// [`reader`] for a call with a body (the signature covers it).
pub fn reader_of(req: &HttpRequest, node: &Node, body: &[u8]) -> Result<Option<Caller>, ApiError> {
    let Some(header) = header_text(req, AUTHORIZATION.as_str()) else {
        super::reject::record(node, req, "missing_credentials", None);
        return Err(ApiError::unauthorized(
            "missing Authorization header (Bearer token or signed request)",
        ));
    };
    if header.starts_with(SCHEME) {
        let (caller, _) = signed(req, node, body, "read", None)?;
        return Ok(Some(caller));
    }
    let Some(token) = header.strip_prefix("Bearer ") else {
        super::reject::record(node, req, "malformed_credentials", None);
        return Err(ApiError::unauthorized(format!(
            "the Authorization header must be 'Bearer <token>' or '{SCHEME} …'"
        )));
    };
    let digest = hex::encode(Sha256::digest(token.trim().as_bytes()));
    if node
        .config
        .client_token_sha256
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&digest))
    {
        // Not a valid client name, so no client shares this bucket.
        limit(node, "bearer token")?;
        Ok(None)
    } else {
        super::reject::record(node, req, "unknown_token", None);
        Err(ApiError::unauthorized("unknown or revoked token"))
    }
}
