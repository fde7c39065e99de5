//! Making a confirmed ceremony's result a node's key, durably, and undoing it when the
//! ceremony is aborted after all: a refresh or reshare keeps what it replaced until it closes.

use std::sync::Arc;

use keyshares::KeyShare;

use crate::node::{ActiveKey, Node};
use crate::peer::messages::CeremonyPurpose;
use crate::peer::{CeremonySpec, PeerErrorCode, PeerResponse};
use crate::store::KeyRecord;

/// What a node held before a refresh or reshare replaced it.
pub(super) struct Rollback {
    record: Option<KeyRecord>,
    share: Option<KeyShare>,
    policy: Option<api::KeyPolicy>,
}

/// Makes the ceremony's result this node's key, durably; for a refresh or reshare returns
/// what it replaced.
pub(super) fn activate(
    node: &Node,
    spec: &CeremonySpec,
    record: &KeyRecord,
    share: Option<KeyShare>,
) -> Result<Option<Rollback>, PeerResponse> {
    let store_failed = |e: crate::store::StoreError| {
        tracing::error!(key = %record.name, error = %e, "storing a key failed");
        PeerResponse::error(
            PeerErrorCode::Invalid,
            format!("node {} could not store the key: {e}", node.id()),
            None,
        )
    };
    let active = match share {
        Some(share) => Some(
            ActiveKey::new(record.clone(), share)
                .map_err(|e| PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), None))?,
        ),
        None => None,
    };
    let mut keys = node.keys.write();
    let rollback = match &spec.purpose {
        CeremonyPurpose::Create => {
            if keys.contains_key(&record.name) {
                return Err(PeerResponse::error(
                    PeerErrorCode::Conflict,
                    format!("key {} exists already", record.name),
                    None,
                ));
            }
            None
        }
        _ => Some(Rollback {
            record: node.store.record(&record.name).map_err(store_failed)?,
            share: keys.get(&record.name).map(|k| k.share.clone()),
            policy: node.policy(&record.name),
        }),
    };
    match &active {
        Some(active) => node.store.put_key(record, &spec.policy, &active.share),
        None => node.store.put_public(record, &spec.policy),
    }
    .map_err(store_failed)?;
    match active {
        Some(active) => keys.insert(record.name.clone(), Arc::new(active)),
        None => keys.remove(&record.name),
    };
    node.policies
        .write()
        .insert(record.name.clone(), spec.policy.clone());
    Ok(rollback)
}

/// Puts back what an aborted ceremony replaced (nothing, for a new key).
pub(super) fn undo(
    node: &Node,
    name: &str,
    rollback: Option<&Rollback>,
) -> Result<(), crate::store::StoreError> {
    let mut keys = node.keys.write();
    let mut policies = node.policies.write();
    keys.remove(name);
    policies.remove(name);
    let Some(Rollback {
        record: Some(record),
        share,
        policy,
    }) = rollback
    else {
        return node.store.delete_key(name);
    };
    let policy = policy.clone().unwrap_or_default();
    match share {
        Some(share) => {
            node.store.put_key(record, &policy, share)?;
            if let Ok(active) = ActiveKey::new(record.clone(), share.clone()) {
                keys.insert(name.to_string(), Arc::new(active));
            }
        }
        None => node.store.put_public(record, &policy)?,
    }
    policies.insert(name.to_string(), policy);
    Ok(())
}
