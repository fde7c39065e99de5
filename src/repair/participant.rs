//! A node's side of a repair: a helper deals summands and adds up the ones it receives; the
//! node being repaired adds up the helpers' values, checks the result against its verifying
//! share on record, and stores it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use api::client::{b64, unb64};
use api::RepairRequest;
use keyshares::PublicKeys;
use zeroize::Zeroizing;

use super::{kinds, seal_context, vouch, HelperValue};
use crate::auth::policy::Permission;
use crate::auth::{audit_denial, authenticate, peer_refusal, AuthError, Caller, ClientRequest};
use crate::node::{ActiveKey, Node};
use crate::peer::messages::RepairSpec;
use crate::peer::{Envelope, PeerErrorCode, PeerResponse};
use crate::store::curve_of;

pub struct RepairSession {
    pub spec: RepairSpec,
    /// A helper's summand for itself.
    own_delta: Option<Zeroizing<Vec<u8>>>,
    pub started: Instant,
}

fn seal_key(node: &Node, to: u16) -> Option<[u8; 32]> {
    node.members
        .get(&to)
        .and_then(|m| hex::decode(&m.seal_public_key).ok())
        .and_then(|k| k.try_into().ok())
}

pub fn start(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    spec: RepairSpec,
    request: &ClientRequest,
) -> PeerResponse {
    if let Some(refusal) = crate::peer::refuse_start(node, from, spec.coordinator, "repair") {
        return refusal;
    }
    let name = spec.record.name.clone();
    if let Err(e) = authenticate(node, from, request).and_then(|c| permit(node, &spec, request, c))
    {
        audit_denial(node, request, Some(&name), "key.repair", "participant", &e);
        return peer_refusal(node, &e);
    }
    let me = node.id();
    let mut session_state = RepairSession {
        spec: spec.clone(),
        own_delta: None,
        started: Instant::now(),
    };
    let answer = if spec.target == me {
        if node.key(&name).is_some() {
            return PeerResponse::error(
                PeerErrorCode::Conflict,
                format!("node {me} holds a share of key {name}: there is nothing to repair"),
                None,
            );
        }
        PeerResponse::Ack
    } else {
        let Some(active) = node.key(&name).filter(|k| k.record == spec.record) else {
            return PeerResponse::error(
                PeerErrorCode::Invalid,
                format!("node {me} holds no share of key {name} as the coordinator describes it"),
                None,
            );
        };
        let mut deltas = match keyshares::repair::deltas(
            &spec.helpers,
            spec.target,
            &active.share,
            &mut rand::rngs::OsRng,
        ) {
            Ok(d) => d,
            Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None),
        };
        session_state.own_delta = deltas.remove(&me);
        let mut envelopes = Vec::new();
        for (to, delta) in deltas {
            let Some(key) = seal_key(node, to) else {
                return PeerResponse::error(
                    PeerErrorCode::Invalid,
                    format!("no sealing key for node {to}"),
                    None,
                );
            };
            let sealed = match keyshares::seal::seal(
                &key,
                &seal_context("delta", session, me, to),
                &delta,
                &mut rand::rngs::OsRng,
            ) {
                Ok(s) => s,
                Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None),
            };
            envelopes.push(Envelope::sign(
                &node.identity,
                to,
                session,
                kinds::DELTA,
                &sealed,
            ));
        }
        PeerResponse::Outgoing { envelopes }
    };
    let mut sessions = node.repair_sessions.lock();
    if sessions.contains_key(session) {
        return PeerResponse::error(
            PeerErrorCode::Conflict,
            format!("repair {session} is already running"),
            None,
        );
    }
    sessions.insert(session.to_string(), session_state);
    answer
}

fn unseal(
    node: &Node,
    step: &str,
    session: &str,
    from: u16,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PeerResponse> {
    keyshares::seal::open(
        node.identity.seal_secret(),
        &seal_context(step, session, from, node.id()),
        blob,
    )
    .map_err(|e| {
        PeerResponse::error(
            PeerErrorCode::Protocol,
            format!("{step} from node {from}: {e}"),
            Some(from),
        )
    })
}

/// A helper: the summands of every other helper; answers its value for the repaired node.
pub fn deltas(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let me = node.id();
    let (spec, own) = {
        let sessions = node.repair_sessions.lock();
        match sessions.get(session) {
            Some(s) if s.spec.coordinator == from && s.own_delta.is_some() => {
                (s.spec.clone(), s.own_delta.clone())
            }
            _ => {
                return PeerResponse::error(
                    PeerErrorCode::UnknownSession,
                    format!("no repair {session} that node {me} helps with"),
                    None,
                )
            }
        }
    };
    let others: Vec<u16> = spec.helpers.iter().copied().filter(|h| *h != me).collect();
    let sealed =
        match crate::peer::open_relayed(node, session, kinds::DELTA, &others, from, incoming) {
            Ok(s) => s,
            Err(e) => return e,
        };
    let mut deltas = BTreeMap::new();
    for (helper, blob) in sealed {
        match unseal(node, "delta", session, helper, &blob) {
            Ok(d) => deltas.insert(helper, d),
            Err(e) => return e,
        };
    }
    if let Some(own) = own {
        deltas.insert(me, own);
    }
    let value = match keyshares::repair::sigma(curve_of(spec.record.algorithm), &deltas) {
        Ok(v) => v,
        Err(e) => {
            return PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), e.culprit_id())
        }
    };
    let Some(key) = seal_key(node, spec.target) else {
        return PeerResponse::error(
            PeerErrorCode::Invalid,
            format!("no sealing key for node {}", spec.target),
            None,
        );
    };
    let sealed = match keyshares::seal::seal(
        &key,
        &seal_context("value", session, me, spec.target),
        &value,
        &mut rand::rngs::OsRng,
    ) {
        Ok(s) => s,
        Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None),
    };
    let payload = HelperValue {
        sealed: b64(&sealed),
        record_sha256: vouch(&spec),
    };
    node.repair_sessions.lock().remove(session);
    PeerResponse::Outgoing {
        envelopes: vec![Envelope::sign(
            &node.identity,
            spec.target,
            session,
            kinds::VALUE,
            &serde_json::to_vec(&payload).unwrap_or_default(),
        )],
    }
}

/// The repaired node: every helper's value; rebuilds, checks and stores its share.
pub fn values(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let me = node.id();
    let spec = {
        let mut sessions = node.repair_sessions.lock();
        match sessions.remove(session) {
            Some(s) if s.spec.coordinator == from && s.spec.target == me => s.spec,
            _ => {
                return PeerResponse::error(
                    PeerErrorCode::UnknownSession,
                    format!("no repair {session} of node {me}"),
                    None,
                )
            }
        }
    };
    let raw =
        match crate::peer::open_relayed(node, session, kinds::VALUE, &spec.helpers, from, incoming)
        {
            Ok(r) => r,
            Err(e) => return e,
        };
    let expected = vouch(&spec);
    let mut values = BTreeMap::new();
    for (helper, bytes) in raw {
        let Ok(value) = serde_json::from_slice::<HelperValue>(&bytes) else {
            return PeerResponse::error(
                PeerErrorCode::Protocol,
                format!("node {helper} sent a malformed value"),
                Some(helper),
            );
        };
        if value.record_sha256 != expected {
            return PeerResponse::error(
                PeerErrorCode::Protocol,
                format!(
                    "node {helper} holds another record of key {} than the coordinator sent",
                    spec.record.name
                ),
                Some(helper),
            );
        }
        let blob = match unb64(&value.sealed) {
            Ok(b) => b,
            Err(e) => return PeerResponse::error(PeerErrorCode::Protocol, e, Some(helper)),
        };
        match unseal(node, "value", session, helper, &blob) {
            Ok(v) => values.insert(helper, v),
            Err(e) => return e,
        };
    }
    let record = spec.record.clone();
    let public = match hex::decode(&record.public_keys)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            PublicKeys::from_bytes(curve_of(record.algorithm), &b).map_err(|e| e.to_string())
        }) {
        Ok(p) => p,
        Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e, None),
    };
    // No culprit: the values are not verifiable one by one, so a wrong sum cannot be pinned
    // on one helper.
    let share = match keyshares::repair::recover(me, &values, &public) {
        Ok(s) => s,
        Err(e) => return PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), None),
    };
    let active = match ActiveKey::new(record.clone(), share) {
        Ok(a) => a,
        Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None),
    };
    {
        let mut keys = node.keys.write();
        if keys.contains_key(&record.name) {
            return PeerResponse::error(
                PeerErrorCode::Conflict,
                format!("node {me} got a share of key {} meanwhile", record.name),
                None,
            );
        }
        if let Err(e) = node.store.put_key(&record, &spec.policy, &active.share) {
            tracing::error!(key = %record.name, error = %e, "storing a repaired share failed");
            return PeerResponse::error(
                PeerErrorCode::Invalid,
                format!("node {me} could not store the share: {e}"),
                None,
            );
        }
        keys.insert(record.name.clone(), Arc::new(active));
        node.policies
            .write()
            .insert(record.name.clone(), spec.policy.clone());
    }
    let audited = node.audit.append(crate::audit::Record {
        client: None,
        action: "key.repair",
        key: Some(record.name.clone()),
        role: "repaired",
        details: serde_json::json!({
            "session": session,
            "coordinator": from,
            "helpers": spec.helpers,
            "public_keys_sha256": crate::audit::hex_sha256(record.public_keys.as_bytes()),
        }),
        outcome: "ok",
        culprits: vec![],
    });
    if let Err(e) = audited {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
    tracing::info!(key = %record.name, session, "share repaired; it matches the verifying share on record");
    PeerResponse::Ack
}

/// A participant's own check that the signed request asks for exactly this repair, of the
/// key this node knows, by a client allowed to manage it.
fn permit(
    node: &Node,
    spec: &RepairSpec,
    request: &ClientRequest,
    caller: Caller,
) -> Result<Caller, AuthError> {
    let name = &spec.record.name;
    let body: RepairRequest = serde_json::from_slice(&request.body)
        .map_err(|e| AuthError::Forbidden(format!("the signed request is not a repair: {e}")))?;
    let helpers_match = body.helpers.as_ref().map_or(true, |h| {
        let mut h = h.clone();
        h.sort_unstable();
        h == spec.helpers
    });
    let matches = request.method == "POST"
        && request.path == format!("/v1/keys/{name}/repair")
        && body.node == spec.target
        && helpers_match
        && spec.record.held_by(spec.target)
        && spec.helpers.iter().all(|h| spec.record.held_by(*h));
    if !matches {
        return Err(AuthError::Forbidden(
            "the repair is not the one the client's signed request asks for".into(),
        ));
    }
    // The node being repaired may have lost its policy with its store: it judges by the
    // policy every helper vouches for.
    match node.policy(name) {
        Some(own) if own != spec.policy => Err(AuthError::Forbidden(format!(
            "the key's policy on node {} is not the coordinator's",
            node.id()
        ))),
        Some(own) => crate::auth::policy::check(&own, name, &caller, Permission::Manage),
        None => crate::auth::policy::check(&spec.policy, name, &caller, Permission::Manage),
    }?;
    Ok(caller)
}
