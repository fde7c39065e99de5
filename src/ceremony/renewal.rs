//! Coordinating new shares of an existing key: a refresh (same committee, frost
//! `keys::refresh`) or a reshare (new committee and/or threshold, Feldman VSS of each old
//! share). Both run the key ceremony's rounds, so they fail or succeed everywhere alike.

use std::sync::Arc;

use api::{KeyPolicy, ReshareRequest};

use super::coordinator::{committee, run, Cost};
use crate::auth::ClientRequest;
use crate::http::error::ApiError;
use crate::node::Node;
use crate::peer::messages::CeremonyPurpose;
use crate::peer::CeremonySpec;
use crate::store::KeyRecord;

/// The key as this node knows it, if it can be renewed.
pub fn current(node: &Node, name: &str) -> Result<(KeyRecord, KeyPolicy), ApiError> {
    let record = node
        .store
        .record(name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    if record.state == api::KeyState::Retired {
        return Err(retired(name));
    }
    let policy = node
        .policy(name)
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    Ok((record, policy))
}

pub fn retired(name: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "key_retired",
        format!("key {name} is retired: its shares are erased; only its public data remains"),
    )
}

fn spec_for(
    node: &Node,
    previous: &KeyRecord,
    policy: KeyPolicy,
    threshold: u16,
    participants: Vec<u16>,
    purpose: CeremonyPurpose,
) -> CeremonySpec {
    CeremonySpec {
        name: previous.name.clone(),
        algorithm: previous.algorithm,
        threshold,
        participants,
        created_at: previous.created_at.clone(),
        coordinator: node.id(),
        policy,
        purpose,
    }
}

/// New shares of `name` for every participant; the same public key.
pub async fn refresh(
    node: &Arc<Node>,
    name: &str,
    client_request: &ClientRequest,
) -> Result<(KeyRecord, KeyPolicy, Cost), ApiError> {
    let (previous, policy) = current(node, name)?;
    let spec = spec_for(
        node,
        &previous,
        policy,
        previous.threshold,
        previous.participants.clone(),
        CeremonyPurpose::Refresh {
            previous: previous.clone(),
        },
    );
    let (record, cost) = run(node, &spec, client_request).await?;
    Ok((record, spec.policy, cost))
}

/// The same key shared to `request.participants` with `request.threshold`: every current
/// holder deals, holders outside the new committee erase their shares.
pub async fn reshare(
    node: &Arc<Node>,
    name: &str,
    request: ReshareRequest,
    client_request: &ClientRequest,
) -> Result<(KeyRecord, KeyPolicy, Cost), ApiError> {
    let (previous, policy) = current(node, name)?;
    let new_committee = committee(node, request.participants, request.threshold)?;
    let mut members: Vec<u16> = previous
        .participants
        .iter()
        .chain(&new_committee)
        .copied()
        .collect();
    members.sort_unstable();
    members.dedup();
    let spec = spec_for(
        node,
        &previous,
        policy,
        request.threshold,
        members,
        CeremonyPurpose::Reshare {
            previous: previous.clone(),
            participants: new_committee,
        },
    );
    let (record, cost) = run(node, &spec, client_request).await?;
    Ok((record, spec.policy, cost))
}
