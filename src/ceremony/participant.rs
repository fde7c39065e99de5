//! A node's side of a key ceremony. Each function handles one request of the coordinator,
//! checks everything it relays, and answers with this node's next messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::{CreateKeyRequest, Role};

use crate::auth::policy::initial;
use crate::auth::{audit_denial, authenticate, peer_refusal, AuthError, Caller, ClientRequest};
use std::time::Instant;

use keyshares::dkg::{faults, Dkg, DkgParams, Echo};
use keyshares::{KeyShare, ProtocolError, PublicKeys};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use super::{kinds, round2_context, Confirmation};
use crate::node::{ActiveKey, Node};
use crate::peer::{CeremonySpec, Envelope, PeerErrorCode, PeerResponse};
use crate::store::{curve_of, KeyRecord};

pub struct DkgSession {
    pub spec: CeremonySpec,
    dkg: Dkg,
    result: Option<(KeyShare, PublicKeys, Confirmation)>,
    activated: bool,
    pub started: Instant,
}

fn error(code: PeerErrorCode, message: impl Into<String>, culprit: Option<u16>) -> PeerResponse {
    PeerResponse::Error {
        code,
        message: message.into(),
        culprit,
    }
}

fn protocol(e: ProtocolError) -> PeerResponse {
    error(PeerErrorCode::Protocol, e.to_string(), e.culprit_id())
}

fn session_of(
    node: &Node,
    from: u16,
    session: &str,
) -> Result<Arc<Mutex<DkgSession>>, PeerResponse> {
    let s = node
        .dkg_sessions
        .lock()
        .get(session)
        .cloned()
        .ok_or_else(|| {
            error(
                PeerErrorCode::UnknownSession,
                format!("no ceremony {session} here (expired or aborted)"),
                None,
            )
        })?;
    if s.lock().spec.coordinator != from {
        return Err(error(
            PeerErrorCode::Invalid,
            format!("node {from} does not coordinate ceremony {session}"),
            None,
        ));
    }
    Ok(s)
}

/// Opens the relayed envelopes of one kind: exactly one from every other participant, each
/// signed by its origin, addressed to this node and bound to this session.
fn open_incoming(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    kind: &str,
    incoming: &[Envelope],
) -> Result<BTreeMap<u16, Vec<u8>>, PeerResponse> {
    let mut out = BTreeMap::new();
    for env in incoming {
        if !spec.participants.contains(&env.from) || env.from == node.id() {
            return Err(error(
                PeerErrorCode::Protocol,
                format!("relayed {kind} from non-participant {}", env.from),
                Some(spec.coordinator),
            ));
        }
        let payload = node
            .verifier
            .open(env, Some(session), Some(kind))
            .map_err(|e| {
                error(
                    PeerErrorCode::Protocol,
                    format!("invalid {kind} relayed from node {}: {e}", env.from),
                    Some(env.from),
                )
            })?;
        if out.insert(env.from, payload).is_some() {
            return Err(error(
                PeerErrorCode::Protocol,
                format!("two {kind} messages from node {}", env.from),
                Some(env.from),
            ));
        }
    }
    for p in &spec.participants {
        if *p != node.id() && !out.contains_key(p) {
            return Err(error(
                PeerErrorCode::Protocol,
                format!("no {kind} from node {p}"),
                Some(*p),
            ));
        }
    }
    Ok(out)
}

fn outgoing(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    kind: &str,
    mut payload_for: impl FnMut(u16) -> Vec<u8>,
) -> PeerResponse {
    let envelopes = spec
        .participants
        .iter()
        .filter(|p| **p != node.id())
        .map(|to| Envelope::sign(&node.identity, *to, session, kind, &payload_for(*to)))
        .collect();
    PeerResponse::Outgoing { envelopes }
}

pub fn start(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    spec: CeremonySpec,
    request: &ClientRequest,
) -> PeerResponse {
    if spec.coordinator != from {
        return error(
            PeerErrorCode::Invalid,
            "the ceremony's coordinator must be the sender",
            None,
        );
    }
    if node.is_sealed() {
        return error(
            PeerErrorCode::Sealed,
            format!("node {} is sealed", node.id()),
            None,
        );
    }
    if let Err(e) =
        authenticate(node, from, request).and_then(|c| permit_ceremony(node, &spec, request, c))
    {
        audit_denial(
            node,
            request,
            Some(&spec.name),
            "key.create",
            "participant",
            &e,
        );
        return peer_refusal(node, &e);
    }
    if let Err(e) = crate::validate::key_name(&spec.name) {
        return error(PeerErrorCode::Invalid, e, None);
    }
    if let Some(p) = spec
        .participants
        .iter()
        .find(|p| !node.members.contains_key(p))
    {
        return error(
            PeerErrorCode::Invalid,
            format!("participant {p} is not a cluster member"),
            None,
        );
    }
    if node.store.contains_key(&spec.name).unwrap_or(true) {
        return error(
            PeerErrorCode::Conflict,
            format!("key {} exists already on node {}", spec.name, node.id()),
            None,
        );
    }
    let params = DkgParams {
        me: node.id(),
        participants: spec.participants.clone(),
        threshold: spec.threshold,
    };
    let curve = curve_of(spec.algorithm);
    let mut rng = rand::rngs::OsRng;
    let f = node.faults();
    let started = if f.tamper_dkg_round1 {
        faults::start_with_tampered_round1(curve, params.clone(), &mut rng)
    } else {
        Dkg::start(curve, params.clone(), &mut rng)
    };
    let (dkg, package) = match started {
        Ok(x) => x,
        Err(e) => return error(PeerErrorCode::Invalid, e.to_string(), None),
    };
    {
        let mut sessions = node.dkg_sessions.lock();
        if sessions.contains_key(session) {
            return error(
                PeerErrorCode::Conflict,
                format!("ceremony {session} is already running"),
                None,
            );
        }
        if sessions.values().any(|s| s.lock().spec.name == spec.name) {
            return error(
                PeerErrorCode::Conflict,
                format!("a ceremony for key {} is already running", spec.name),
                None,
            );
        }
        sessions.insert(
            session.to_string(),
            Arc::new(Mutex::new(DkgSession {
                spec: spec.clone(),
                dkg,
                result: None,
                activated: false,
                started: Instant::now(),
            })),
        );
    }
    let first_other = spec.participants.iter().copied().find(|p| *p != node.id());
    let second = f
        .equivocate_dkg_round1
        .then(|| faults::equivocating_round1(curve, &params, &mut rng).ok())
        .flatten();
    outgoing(node, &spec, session, kinds::ROUND1, |to| match &second {
        Some(other) if Some(to) != first_other => other.clone(),
        _ => package.clone(),
    })
}

pub fn round1(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let s = match session_of(node, from, session) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut s = s.lock();
    let packages = match open_incoming(node, &s.spec, session, kinds::ROUND1, incoming) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let echo = match s.dkg.receive_round1(&packages) {
        Ok(e) => e,
        Err(e) => return protocol(e),
    };
    let encoded: BTreeMap<u16, String> = echo.iter().map(|(k, v)| (*k, hex::encode(v))).collect();
    let payload = serde_json::to_vec(&encoded).unwrap_or_default();
    outgoing(node, &s.spec, session, kinds::ECHO, |_| payload.clone())
}

fn parse_echo(from: u16, bytes: &[u8]) -> Result<Echo, ProtocolError> {
    let bad = || ProtocolError::culprit(from, "sent a malformed echo");
    let encoded: BTreeMap<u16, String> = serde_json::from_slice(bytes).map_err(|_| bad())?;
    encoded
        .into_iter()
        .map(|(k, v)| {
            let digest: [u8; 32] = hex::decode(v)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(bad)?;
            Ok((k, digest))
        })
        .collect()
}

pub fn echo(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let s = match session_of(node, from, session) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut s = s.lock();
    let raw = match open_incoming(node, &s.spec, session, kinds::ECHO, incoming) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut echoes = BTreeMap::new();
    for (sender, bytes) in raw {
        match parse_echo(sender, &bytes) {
            Ok(e) => {
                echoes.insert(sender, e);
            }
            Err(e) => return protocol(e),
        }
    }
    let mut packages = match s.dkg.check_echoes(&echoes) {
        Ok(p) => p,
        Err(e) => return protocol(e),
    };
    let curve = curve_of(s.spec.algorithm);
    if node.faults().tamper_dkg_round2 {
        if let Some(first) = s
            .spec
            .participants
            .iter()
            .copied()
            .find(|p| *p != node.id())
        {
            if let Ok(bad) = faults::tampered_round2(curve, &mut rand::rngs::OsRng) {
                packages.insert(first, bad);
            }
        }
    }
    let mut sealed = BTreeMap::new();
    for (to, package) in &packages {
        let Some(key) = node
            .members
            .get(to)
            .and_then(|m| hex::decode(&m.seal_public_key).ok())
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
        else {
            return error(
                PeerErrorCode::Invalid,
                format!("no sealing key for node {to}"),
                None,
            );
        };
        match keyshares::seal::seal(
            &key,
            &round2_context(session, node.id(), *to),
            package,
            &mut rand::rngs::OsRng,
        ) {
            Ok(b) => sealed.insert(*to, b),
            Err(e) => return protocol(e),
        };
    }
    outgoing(node, &s.spec, session, kinds::ROUND2, |to| {
        sealed.remove(&to).unwrap_or_default()
    })
}

pub fn round2(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let s = match session_of(node, from, session) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut s = s.lock();
    let sealed = match open_incoming(node, &s.spec, session, kinds::ROUND2, incoming) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut packages: BTreeMap<u16, Zeroizing<Vec<u8>>> = BTreeMap::new();
    for (sender, blob) in sealed {
        match keyshares::seal::open(
            node.identity.seal_secret(),
            &round2_context(session, sender, node.id()),
            &blob,
        ) {
            Ok(p) => packages.insert(sender, p),
            Err(e) => {
                return error(
                    PeerErrorCode::Protocol,
                    format!("round-2 package from node {sender}: {e}"),
                    Some(sender),
                )
            }
        };
    }
    let (share, public) = match s.dkg.receive_round2(&packages) {
        Ok(x) => x,
        Err(e) => return protocol(e),
    };
    let (public_hex, digest) = match (public.to_bytes(), public.digest()) {
        (Ok(b), Ok(d)) => (hex::encode(b), hex::encode(d)),
        (Err(e), _) | (_, Err(e)) => return protocol(e),
    };
    let confirmation = Confirmation {
        spec: s.spec.clone(),
        public_keys: public_hex,
        public_digest: digest,
    };
    let payload = serde_json::to_vec(&confirmation).unwrap_or_default();
    s.result = Some((share, public, confirmation));
    outgoing(node, &s.spec, session, kinds::CONFIRMATION, |_| {
        payload.clone()
    })
}

pub fn confirm(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let s = match session_of(node, from, session) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut s = s.lock();
    let raw = match open_incoming(node, &s.spec, session, kinds::CONFIRMATION, incoming) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some((share, _, mine)) = s.result.as_ref() else {
        return error(
            PeerErrorCode::Invalid,
            "confirmations arrived before round 2 finished",
            None,
        );
    };
    for (sender, bytes) in &raw {
        let theirs: Result<Confirmation, _> = serde_json::from_slice(bytes);
        if theirs.as_ref().ok() != Some(mine) {
            return error(
                PeerErrorCode::Protocol,
                format!(
                    "node {sender} confirmed a different key than node {} computed",
                    node.id()
                ),
                Some(*sender),
            );
        }
    }
    let record = KeyRecord {
        name: s.spec.name.clone(),
        algorithm: s.spec.algorithm,
        threshold: s.spec.threshold,
        participants: s.spec.participants.clone(),
        created_at: s.spec.created_at.clone(),
        public_keys: mine.public_keys.clone(),
        session: session.to_string(),
    };
    let active = match ActiveKey::new(record.clone(), share.clone()) {
        Ok(a) => a,
        Err(e) => return error(PeerErrorCode::Protocol, e.to_string(), None),
    };
    {
        let mut keys = node.keys.write();
        if keys.contains_key(&record.name) {
            return error(
                PeerErrorCode::Conflict,
                format!("key {} exists already", record.name),
                None,
            );
        }
        if let Err(e) = node.store.put_key(&record, &s.spec.policy, share) {
            tracing::error!(key = %record.name, error = %e, "storing a new key failed");
            return error(
                PeerErrorCode::Invalid,
                format!("node {} could not store the key: {e}", node.id()),
                None,
            );
        }
        keys.insert(record.name.clone(), Arc::new(active));
        node.policies
            .write()
            .insert(record.name.clone(), s.spec.policy.clone());
    }
    s.activated = true;
    let audited = node.audit.append(crate::audit::Record {
        client: None,
        action: "key.create",
        key: Some(record.name.clone()),
        role: "participant",
        details: serde_json::json!({
            "session": session,
            "coordinator": from,
            "algorithm": record.algorithm,
            "threshold": record.threshold,
            "participants": record.participants,
            "public_keys_sha256": crate::audit::hex_sha256(record.public_keys.as_bytes()),
        }),
        outcome: "ok",
        culprits: vec![],
    });
    if let Err(e) = audited {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
    tracing::info!(key = %record.name, session, "key ceremony confirmed by all participants; key active");
    PeerResponse::Ack
}

pub fn abort(node: &Arc<Node>, from: u16, session: &str, reason: &str) -> PeerResponse {
    let s = match session_of(node, from, session) {
        Ok(s) => s,
        // Nothing to forget: the ceremony never reached this node or expired already.
        Err(_) => return PeerResponse::Ack,
    };
    node.dkg_sessions.lock().remove(session);
    let s = s.lock();
    if s.activated {
        let mut keys = node.keys.write();
        if keys
            .get(&s.spec.name)
            .is_some_and(|k| k.record.session == session)
        {
            keys.remove(&s.spec.name);
            node.policies.write().remove(&s.spec.name);
            if let Err(e) = node.store.delete_key(&s.spec.name) {
                tracing::error!(key = %s.spec.name, error = %e, "could not delete the key of an aborted ceremony");
            }
        }
    }
    tracing::warn!(key = %s.spec.name, session, reason, "key ceremony aborted");
    PeerResponse::Ack
}

/// A participant's own check that a signed key-creation request asks for exactly this
/// ceremony, by a client allowed to create keys, with the policy the spec carries.
fn permit_ceremony(
    node: &Node,
    spec: &CeremonySpec,
    request: &ClientRequest,
    caller: Caller,
) -> Result<Caller, AuthError> {
    if !(caller.has_role(Role::KeyCreator) || caller.has_role(Role::Admin)) {
        return Err(AuthError::Forbidden(format!(
            "client {} may not create keys",
            caller.name()
        )));
    }
    let body: CreateKeyRequest = serde_json::from_slice(&request.body).map_err(|e| {
        AuthError::Forbidden(format!("the signed request is not a key creation: {e}"))
    })?;
    let mut participants = body
        .participants
        .clone()
        .unwrap_or_else(|| node.members.keys().copied().collect());
    participants.sort_unstable();
    let matches = request.method == "POST"
        && request.path == "/v1/keys"
        && body.name == spec.name
        && body.algorithm == spec.algorithm
        && body.threshold == spec.threshold
        && participants == spec.participants
        && initial(&body, caller.name()) == spec.policy;
    if !matches {
        return Err(AuthError::Forbidden(
            "the ceremony is not the one the client's signed request asks for".into(),
        ));
    }
    Ok(caller)
}
