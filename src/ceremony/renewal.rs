//! Coordinating new shares of an existing key: a refresh (same committee, frost
//! `keys::refresh`) or a reshare (new committee and/or threshold, Feldman VSS of each old
//! share). Both run the key ceremony's rounds, so they fail or succeed everywhere alike.

use std::sync::Arc;

use api::{KeyPolicy, ReshareRequest};

use super::coordinator::{committee, run, Cost};
use crate::auth::ClientRequest;
use crate::error::ApiError;
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
        return Err(crate::keyview::retired(name));
    }
    let policy = node
        .policy(name)
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    Ok((record, policy))
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
    let dealers = dealers(&previous, request.dealers, &new_committee)?;
    let mut members: Vec<u16> = dealers.iter().chain(&new_committee).copied().collect();
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
            dealers,
            participants: new_committee,
        },
    );
    let (record, cost) = run(node, &spec, client_request).await?;
    Ok((record, spec.policy, cost))
}

/// The current holders that deal in a reshare: all of them, or the ones asked for, as long
/// as the holders left out of both committees (who keep their share of the same key) are too
/// few to use it.
fn dealers(
    previous: &KeyRecord,
    asked: Option<Vec<u16>>,
    new_committee: &[u16],
) -> Result<Vec<u16>, ApiError> {
    let Some(mut dealers) = asked else {
        return Ok(previous.participants.clone());
    };
    dealers.sort_unstable();
    if dealers.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::bad_request("dealers contain a duplicate id"));
    }
    if let Some(d) = dealers.iter().find(|d| !previous.participants.contains(d)) {
        return Err(ApiError::bad_request(format!(
            "node {d} cannot deal: it holds no share of key {} (participants: {:?})",
            previous.name, previous.participants
        )));
    }
    let t = usize::from(previous.threshold);
    if dealers.len() < t {
        return Err(ApiError::bad_request(format!(
            "a reshare needs at least {t} dealers, got {}",
            dealers.len()
        )));
    }
    let left_out: Vec<u16> = previous
        .participants
        .iter()
        .copied()
        .filter(|p| !dealers.contains(p) && !new_committee.contains(p))
        .collect();
    if left_out.len() >= t {
        return Err(ApiError::bad_request(format!(
            "nodes {left_out:?} would keep {} shares of key {}, enough to use it (threshold {t}); \
             leave out fewer, or let them deal",
            left_out.len(),
            previous.name
        )));
    }
    Ok(dealers)
}
