//! A ceremony's result through its life on one node (DESIGN.md §11): sealed on disk as pending
//! before the node confirms it, made live only with the certificate, discarded only on proof
//! that the certificate cannot exist, and the share it replaced erased only once every member
//! has acknowledged the new generation.

use std::sync::Arc;

use keyshares::{KeyShare, PublicKeys};

use crate::node::{ActiveKey, Node};
use crate::peer::{CeremonySpec, PeerErrorCode, PeerResponse};
use crate::state::generation::{self, GenerationCertificate};
use crate::store::PendingGeneration;

/// Seals this node's result of ceremony `session` beside its live share, then signs the
/// statement that, with every other member's, commits it. Never signs what is not on disk.
pub(super) fn seal_pending(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    share: Option<&KeyShare>,
    public: &PublicKeys,
) -> PeerResponse {
    let other;
    let public = if node.faults().confirm_other_key {
        other = other_key(spec, session).unwrap_or_else(|| public.clone());
        &other
    } else {
        public
    };
    let public_keys = match public.to_bytes() {
        Ok(b) => hex::encode(b),
        Err(e) => return PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), None),
    };
    let record = super::record_of(spec, &public_keys, session);
    let statement = super::statement_of(spec, &record);
    if let Err(e) = node.store.put_pending(
        &record,
        &spec.policy,
        &statement,
        spec.purpose.action(),
        share,
        super::window::confirm_by(session, &node.config.timeouts).unwrap_or(0),
    ) {
        tracing::error!(key = %record.name, session, error = %e, "sealing a ceremony's result failed");
        return PeerResponse::error(
            PeerErrorCode::Invalid,
            format!(
                "node {} did not store the ceremony's result: {e}",
                node.id()
            ),
            None,
        );
    }
    let signature = statement.sign(&node.identity);
    PeerResponse::Confirmed {
        public_keys,
        statement: Box::new(statement),
        signature,
    }
}

/// Fault hook: a key of the ceremony's shape that it did not make, the same for every node
/// with the fault (seeded by the session).
fn other_key(spec: &CeremonySpec, session: &str) -> Option<PublicKeys> {
    use rand::SeedableRng;
    let seed = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(session));
    let mut rng = rand::rngs::StdRng::from_seed(seed.into());
    let curve = crate::store::curve_of(spec.algorithm);
    let members = match &spec.purpose {
        crate::peer::messages::CeremonyPurpose::Reshare { participants, .. } => participants,
        _ => &spec.participants,
    };
    keyshares::dkg::run_in_memory(curve, spec.threshold, members, &mut rng)
        .ok()
        .and_then(|key| key.into_iter().next().map(|(_, public)| public))
}

/// Makes the generation `certificate` proves committed this node's live one (the caller
/// verified the certificate). Idempotent: a generation already live is left as it is.
pub fn activate(node: &Node, certificate: &GenerationCertificate, via: &str) -> Result<(), String> {
    let s = &certificate.statement;
    let mut keys = node.keys.write();
    if already_moved_on(node, &s.key, &s.session, s.generation) {
        return Ok(());
    }
    // A key retired meanwhile stays retired: its erased shares do not come back.
    if let Ok(Some(r)) = node.store.record(&s.key) {
        if r.state == api::KeyState::Retired {
            if let Ok(Some(p)) = node.store.pending(&s.key) {
                drop(keys);
                discard(node, &p, "the key was retired");
            }
            return Ok(());
        }
    }
    let activated = node
        .store
        .activate(certificate)
        .map_err(|e| e.to_string())?;
    let live = match activated.share {
        Some(share) => {
            Some(ActiveKey::new(activated.record.clone(), share).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    match live {
        Some(k) => keys.insert(s.key.clone(), Arc::new(k)),
        None => keys.remove(&s.key),
    };
    {
        let mut previous = node.previous_keys.write();
        match activated.previous {
            Some((record, share)) => match ActiveKey::new(record, share) {
                Ok(k) => previous.insert(s.key.clone(), Arc::new(k)),
                Err(_) => previous.remove(&s.key),
            },
            None => previous.remove(&s.key),
        };
    }
    node.policies
        .write()
        .insert(s.key.clone(), activated.policy.clone());
    drop(keys);
    node.metrics.set_keys(node.keys.read().len());
    let action = match activated.action.as_str() {
        "key.create" => "key.create",
        "key.refresh" => "key.refresh",
        "key.reshare" => "key.reshare",
        _ => "key.activate",
    };
    audit(
        node,
        action,
        s,
        via,
        serde_json::json!({
            "holds_share": activated.record.held_by(node.id()),
            "participants": activated.record.participants,
            "threshold": activated.record.threshold,
            "public_keys_sha256": crate::audit::hex_sha256(activated.record.public_keys.as_bytes()),
        }),
    );
    tracing::info!(key = %s.key, session = %s.session, generation = s.generation, via, "certified generation activated");
    Ok(())
}

/// Whether this node's record of `key` is ceremony `session`'s already, or a later one.
fn already_moved_on(node: &Node, key: &str, session: &str, generation: u32) -> bool {
    node.store
        .record(key)
        .ok()
        .flatten()
        .is_some_and(|r| r.session == session || r.generation > generation)
}

/// Drops a pending result whose certificate cannot exist; the live generation stays.
pub fn discard(node: &Node, pending: &PendingGeneration, why: &str) {
    let s = &pending.statement;
    match node.store.discard_pending(&s.key, &s.session) {
        Ok(true) => {
            audit(node, "key.discard", s, why, serde_json::json!({}));
            tracing::warn!(key = %s.key, session = %s.session, why, "pending generation discarded");
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(key = %s.key, error = %e, "discarding a pending generation failed")
        }
    }
}

/// This node's acknowledgement of ceremony `certificate`, if it activated it (or a later one).
pub fn acknowledgement(node: &Node, certificate: &GenerationCertificate) -> Option<String> {
    let s = &certificate.statement;
    if !s.members.contains(&node.id()) {
        return None;
    }
    let pending = node.store.pending(&s.key).ok().flatten();
    if pending.is_some_and(|p| p.statement.session == s.session) {
        return None;
    }
    let record = node.store.record(&s.key).ok().flatten()?;
    (record.session == s.session || record.generation > s.generation)
        .then(|| generation::sign_ack(&node.identity, &s.key, &s.session))
}

/// Erases the generation that `certificate`'s replaced, once `acks` shows every member has
/// activated it.
pub fn close(
    node: &Node,
    certificate: &GenerationCertificate,
    acks: &std::collections::BTreeMap<u16, String>,
) -> Result<bool, String> {
    if !generation::all_acknowledged(&node.signers, certificate, acks) {
        return Err("not every member acknowledged the new generation".into());
    }
    let s = &certificate.statement;
    let dropped = node
        .store
        .drop_previous(&s.key, &s.session)
        .map_err(|e| e.to_string())?;
    if dropped {
        node.previous_keys.write().remove(&s.key);
        tracing::info!(key = %s.key, session = %s.session, "every member moved on: previous generation erased");
    }
    Ok(dropped)
}

fn audit(
    node: &Node,
    action: &'static str,
    s: &generation::GenerationStatement,
    via: &str,
    mut details: serde_json::Value,
) {
    details["session"] = s.session.clone().into();
    details["generation"] = s.generation.into();
    details["coordinator"] = s.coordinator.into();
    details["via"] = via.into();
    let appended = node.audit.append(crate::audit::Record {
        client: None,
        action,
        key: Some(s.key.clone()),
        role: "participant",
        details,
        outcome: "ok",
        culprits: vec![],
    });
    if let Err(e) = appended {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
}

/// The keys this node holds between two generations: a result pending, or the previous
/// generation kept until every member has moved on.
pub fn unsettled(node: &Node) -> Vec<api::UnsettledKey> {
    let pending = node.store.all_pending().unwrap_or_default();
    let previous = node.store.previous_names().unwrap_or_default();
    let mut names: Vec<&str> = pending
        .iter()
        .map(|p| p.statement.key.as_str())
        .chain(previous.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| api::UnsettledKey {
            key: name.to_string(),
            node: node.id(),
            generation: node
                .store
                .record(name)
                .ok()
                .flatten()
                .map_or(0, |r| r.generation),
            pending_generation: pending
                .iter()
                .find(|p| p.statement.key == name)
                .map(|p| p.record.generation),
            keeps_previous: previous.iter().any(|p| p == name),
        })
        .collect()
}
