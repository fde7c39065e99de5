//! Key ceremony and key reading: `POST /v1/keys`, `GET /v1/keys`, `GET /v1/keys/{name}`.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{Algorithm, CreateKeyRequest, KeyInfo, KeyList, KeyPolicy, Role, VerifyingShare};
use keyshares::decrypt::{standard_public_key, Scheme};
use keyshares::PublicKeys;

use super::error::ApiError;
use crate::audit::{hex_sha256, Record};
use crate::auth::policy::Permission;
use crate::auth::{audit_denial, AuthError, Caller};
use crate::node::Node;
use crate::store::{curve_of, KeyRecord};

/// The public data of a key as the API shows it.
pub fn key_info(record: &KeyRecord, policy: &KeyPolicy) -> anyhow::Result<KeyInfo> {
    let public = PublicKeys::from_bytes(
        curve_of(record.algorithm),
        &hex::decode(&record.public_keys)?,
    )?;
    let group = public.group_key();
    let standard = match record.algorithm {
        Algorithm::HpkeX25519 => standard_public_key(Scheme::HpkeX25519, &group)?,
        _ => group.clone(),
    };
    Ok(KeyInfo {
        name: record.name.clone(),
        algorithm: record.algorithm,
        purpose: record.algorithm.purpose(),
        threshold: record.threshold,
        participants: record.participants.clone(),
        state: record.state,
        created_at: record.created_at.clone(),
        generation: record.generation,
        retired_at: record.retired_at.clone(),
        public_key: hex::encode(standard),
        group_verifying_key: hex::encode(&group),
        verifying_shares: public
            .verifying_shares()
            .into_iter()
            .map(|(node, share)| VerifyingShare {
                node,
                verifying_share: hex::encode(share),
            })
            .collect(),
        policy: policy.clone(),
        ceremony: None,
    })
}

/// The public data of key `name` as this node's store has it now.
pub fn stored_info(node: &Node, name: &str) -> Result<KeyInfo, ApiError> {
    let record = node
        .store
        .record(name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    let policy = node.policy(name).unwrap_or_default();
    key_info(&record, &policy).map_err(|e| ApiError::internal(e.to_string()))
}

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

/// The public data of every key this node takes part in, sealed or not, that `reader` may
/// read (a bearer token reads all).
fn readable(node: &Node, reader: Option<&Caller>) -> Result<Vec<KeyInfo>, ApiError> {
    let records = node
        .store
        .load_records()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let policies = node.policies.read();
    records
        .iter()
        .filter_map(|r| {
            let policy = policies.get(&r.name).cloned().unwrap_or_default();
            let allowed = reader.map_or(true, |c| {
                crate::auth::policy::check(&policy, &r.name, c, Permission::Read).is_ok()
            });
            allowed.then(|| key_info(r, &policy).map_err(|e| ApiError::internal(e.to_string())))
        })
        .collect()
}

pub async fn list(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    let reader = super::auth::reader(&req, &node)?;
    let keys = readable(&node, reader.as_ref())?;
    Ok(HttpResponse::Ok().json(KeyList { keys }))
}

pub async fn show(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reader = super::auth::reader(&req, &node)?;
    let exists = node
        .store
        .contains_key(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !exists {
        return Err(ApiError::not_found(format!("no key named {name}")));
    }
    readable(&node, reader.as_ref())?
        .into_iter()
        .find(|k| k.name == *name)
        .map(|info| HttpResponse::Ok().json(info))
        .ok_or_else(|| ApiError::forbidden(format!("you may not read key {name}")))
}
