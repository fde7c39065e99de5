//! Key ceremony and key reading: `POST /v1/keys`, `GET /v1/keys`, `GET /v1/keys/{name}`.

use actix_web::{web, HttpRequest, HttpResponse};
use api::{Algorithm, CreateKeyRequest, KeyInfo, KeyList, KeyState, VerifyingShare};
use keyshares::decrypt::{standard_public_key, Scheme};
use keyshares::PublicKeys;

use super::error::ApiError;
use crate::node::Node;
use crate::store::{curve_of, KeyRecord};

/// The public data of a key as the API shows it.
pub fn key_info(record: &KeyRecord) -> anyhow::Result<KeyInfo> {
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
        state: KeyState::Active,
        created_at: record.created_at.clone(),
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
        ceremony: None,
    })
}

pub async fn create(
    req: HttpRequest,
    node: web::Data<Node>,
    body: web::Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    super::authorize(&req, &node)?;
    let (mut info, cost) = crate::ceremony::coordinator::create_key(&node, body.into_inner())
        .await
        .inspect_err(|e| {
            node.metrics
                .observe_culprits("create_key", &e.body.culprits)
        })?;
    let stats = cost.to_api();
    node.metrics.observe_cost("create_key", &stats);
    info.ceremony = Some(stats);
    Ok(HttpResponse::Created().json(info))
}

pub async fn list(req: HttpRequest, node: web::Data<Node>) -> Result<HttpResponse, ApiError> {
    super::authorize(&req, &node)?;
    let keys = node
        .keys
        .read()
        .values()
        .map(|k| key_info(&k.record))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(KeyList { keys }))
}

pub async fn show(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::authorize(&req, &node)?;
    let key = node
        .key(&name)
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    Ok(HttpResponse::Ok()
        .json(key_info(&key.record).map_err(|e| ApiError::internal(e.to_string()))?))
}
