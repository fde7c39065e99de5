//! What the API shows of a key, read from this node's store: its public data, a pending
//! generation, and why this node cannot act on it.

use api::{Algorithm, KeyInfo, KeyPolicy, VerifyingShare};
use keyshares::decrypt::{standard_public_key, Scheme};
use keyshares::PublicKeys;

use crate::error::ApiError;
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
        pending_generation: None,
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

/// The generation of `name` this node holds sealed, awaiting its certificate.
pub fn pending_generation(node: &Node, name: &str) -> Option<u32> {
    node.store
        .pending(name)
        .ok()
        .flatten()
        .map(|p| p.record.generation)
}

/// The public data of key `name` as this node's store has it now.
pub fn stored_info(node: &Node, name: &str) -> Result<KeyInfo, ApiError> {
    let record = node
        .store
        .record(name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    info_of(node, &record)
}

/// The API view of `record`, with the policy and any pending generation on this node.
pub fn info_of(node: &Node, record: &KeyRecord) -> Result<KeyInfo, ApiError> {
    let policy = node.policy(&record.name).unwrap_or_default();
    let mut info = key_info(record, &policy).map_err(|e| ApiError::internal(e.to_string()))?;
    info.pending_generation = pending_generation(node, &record.name);
    Ok(info)
}

/// Why this node cannot use key `name`: it does not exist, it is retired, or this node holds
/// no share of it.
pub fn no_share(node: &Node, name: &str) -> ApiError {
    match node.store.record(name) {
        Ok(Some(r)) if r.state == api::KeyState::Retired => retired(name),
        Ok(Some(r)) => ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "not_a_participant",
            format!(
                "node {} holds no share of key {name}; its participants are {:?}",
                node.id(),
                r.participants
            ),
        ),
        _ => ApiError::not_found(format!("no key named {name}")),
    }
}

pub fn retired(name: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "key_retired",
        format!("key {name} is retired: its shares are erased; only its public data remains"),
    )
}
