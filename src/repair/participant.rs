//! A node's side of a repair: a helper deals summands and adds up the ones it receives; the
//! node being repaired adds up the helpers' values, checks the result against its verifying
//! share on record, and stores it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use api::client::{b64, unb64};
use api::RepairRequest;
use keyshares::repair::{Dealt, Repair};
use keyshares::PublicKeys;
use zeroize::Zeroizing;

use super::{kinds, seal_context, vouch, HelperSummand, HelperValue};
use crate::auth::policy::Permission;
use crate::auth::{audit_denial, authenticate, peer_refusal, AuthError, Caller, ClientRequest};
use crate::blame::Complaint;
use crate::node::{ActiveKey, Node};
use crate::peer::messages::RepairSpec;
use crate::peer::{Envelope, PeerErrorCode, PeerResponse};

/// A helper's summand for itself and its commitments, kept for step 2.
type Own = (Zeroizing<Vec<u8>>, Vec<u8>);

pub struct RepairSession {
    pub spec: RepairSpec,
    public: PublicKeys,
    own: Option<Own>,
    pub started: Instant,
}

/// This node's running repairs, by session id.
#[derive(Default)]
pub struct RepairSessions(pub parking_lot::Mutex<std::collections::HashMap<String, RepairSession>>);

impl crate::sessions::RoleState for RepairSessions {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.ceremony();
        self.0.lock().retain(|_, s| s.started.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// This node's RepairSessions table.
pub fn sessions(node: &Node) -> std::sync::Arc<RepairSessions> {
    node.sessions.of::<RepairSessions>()
}

impl RepairSession {
    fn repair(&self) -> Repair<'_> {
        Repair {
            helpers: &self.spec.helpers,
            target: self.spec.target,
            public: &self.public,
        }
    }
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
    if let Some(refusal) = crate::relay::refuse_start(node, from, spec.coordinator, "repair") {
        return refusal;
    }
    let name = spec.record.name.clone();
    if let Err(e) = authenticate(node, from, request).and_then(|c| permit(node, &spec, request, c))
    {
        audit_denial(node, request, Some(&name), "key.repair", "participant", &e);
        return peer_refusal(node, &e);
    }
    let me = node.id();
    let public = match super::public_of(&spec) {
        Ok(p) => p,
        Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e, None),
    };
    let mut session_state = RepairSession {
        spec: spec.clone(),
        public,
        own: None,
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
        let deal = || {
            session_state
                .repair()
                .deal(&active.share, &mut rand::rngs::OsRng)
                .map_err(|e| PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None))
        };
        let dealt = match deal() {
            Ok(d) => d,
            Err(e) => return e,
        };
        let second = match node.faults().equivocate_repair_commitments {
            true => match deal() {
                Ok(d) => Some(d),
                Err(e) => return e,
            },
            false => None,
        };
        let curve = session_state.public.curve();
        match summand_envelopes(node, session, curve, dealt, second) {
            Ok((own, envelopes)) => {
                session_state.own = Some(own);
                PeerResponse::Outgoing { envelopes }
            }
            Err(e) => return e,
        }
    };
    let table = sessions(node);
    let mut sessions = table.0.lock();
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

/// A helper's summands sealed to the other helpers, with its commitments; its own summand is
/// kept back. `second` is the fault hook's other dealing, shown to the first other helper.
fn summand_envelopes(
    node: &Node,
    session: &str,
    curve: keyshares::Curve,
    dealt: Dealt,
    mut second: Option<Dealt>,
) -> Result<(Own, Vec<Envelope>), PeerResponse> {
    let me = node.id();
    let Dealt {
        mut summands,
        commitments,
    } = dealt;
    let own = summands
        .remove(&me)
        .ok_or_else(|| PeerResponse::error(PeerErrorCode::Invalid, "no own summand", None))?;
    let first_other = summands.keys().next().copied();
    let corrupt = node.faults().corrupt_repair_summand;
    let mut envelopes = Vec::new();
    for (to, mut summand) in summands {
        let mut shown = &commitments;
        if Some(to) == first_other {
            if corrupt {
                summand = keyshares::repair::faults::random_scalar(curve, &mut rand::rngs::OsRng);
            }
            if let Some(other) = second.as_mut() {
                summand = other.summands.remove(&to).unwrap_or_default();
                shown = &other.commitments;
            }
        }
        let sealed = seal_to(node, "delta", session, to, &summand)?;
        let payload = HelperSummand {
            sealed: b64(&sealed),
            commitments: hex::encode(shown),
        };
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        envelopes.push(Envelope::sign(
            &node.identity,
            to,
            session,
            kinds::DELTA,
            &bytes,
        ));
    }
    Ok(((own, commitments), envelopes))
}

/// `secret` sealed to node `to` for `step` of this repair.
fn seal_to(
    node: &Node,
    step: &str,
    session: &str,
    to: u16,
    secret: &[u8],
) -> Result<Vec<u8>, PeerResponse> {
    let invalid = |message: String| PeerResponse::error(PeerErrorCode::Invalid, message, None);
    let key = seal_key(node, to).ok_or_else(|| invalid(format!("no sealing key for node {to}")))?;
    let context = seal_context(step, session, node.id(), to);
    keyshares::seal::seal(&key, &context, secret, &mut rand::rngs::OsRng)
        .map_err(|e| invalid(e.to_string()))
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

/// Takes this node's repair `session` out for its next step, if `fits` says the step is
/// one it expects from `from`; otherwise leaves it where it is, so a stray message cannot
/// end someone else's repair.
fn take_session(
    node: &Node,
    session: &str,
    fits: impl FnOnce(&RepairSession) -> bool,
    role: &str,
) -> Result<RepairSession, PeerResponse> {
    let table = sessions(node);
    let mut sessions = table.0.lock();
    match sessions.remove(session) {
        Some(s) if fits(&s) => Ok(s),
        other => {
            if let Some(other) = other {
                sessions.insert(session.to_string(), other);
            }
            Err(PeerResponse::error(
                PeerErrorCode::UnknownSession,
                format!("no repair {session} {role}"),
                None,
            ))
        }
    }
}

fn protocol_error(e: keyshares::ProtocolError) -> PeerResponse {
    PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), e.culprit_id())
}

/// A failure naming the sender of a sealed `step` message, as a complaint that reveals the
/// message's key so the coordinator can check it (DESIGN.md §11); others as they are.
fn sealed_complaint(
    node: &Node,
    step: &str,
    session: &str,
    blobs: &BTreeMap<u16, Vec<u8>>,
    e: keyshares::ProtocolError,
) -> PeerResponse {
    let Some((from, blob)) = e
        .culprit_id()
        .filter(|c| *c != node.id())
        .and_then(|c| Some((c, blobs.get(&c)?)))
    else {
        return protocol_error(e);
    };
    let context = seal_context(step, session, from, node.id());
    match keyshares::seal::reveal(node.identity.seal_secret(), &context, blob) {
        Ok(key) => PeerResponse::Complaint {
            accused: from,
            message: e.to_string(),
            complaint: Complaint::Sealed {
                message_key: hex::encode(&*key.to_bytes()),
            },
        },
        Err(_) => protocol_error(e),
    }
}

/// A helper: the summands of every other helper; answers its value for the repaired node.
pub fn deltas(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let me = node.id();
    let role = format!("that node {me} helps with");
    let fits = |s: &RepairSession| s.spec.coordinator == from && s.own.is_some();
    let state = match take_session(node, session, fits, &role) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let spec = &state.spec;
    let others: Vec<u16> = spec.helpers.iter().copied().filter(|h| *h != me).collect();
    let raw = match crate::relay::open_relayed(node, session, kinds::DELTA, &others, from, incoming)
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut received = BTreeMap::new();
    let mut blobs = BTreeMap::new();
    for (helper, bytes) in raw {
        let malformed = |what: &str| {
            let message = format!("node {helper} sent a malformed summand: {what}");
            PeerResponse::error(PeerErrorCode::Protocol, message, Some(helper))
        };
        let Ok(summand) = serde_json::from_slice::<HelperSummand>(&bytes) else {
            return malformed("not JSON");
        };
        let (Ok(blob), Ok(commitments)) =
            (unb64(&summand.sealed), hex::decode(&summand.commitments))
        else {
            return malformed("bad encoding");
        };
        match unseal(node, "delta", session, helper, &blob) {
            Ok(d) => received.insert(helper, (d, commitments)),
            Err(e) => return e,
        };
        blobs.insert(helper, blob);
    }
    if let Some(own) = &state.own {
        received.insert(me, own.clone());
    }
    let mut value = match state.repair().sigma(me, &received) {
        Ok(v) => v,
        Err(e) => return sealed_complaint(node, "delta", session, &blobs, e),
    };
    if node.faults().corrupt_repair_value {
        value =
            keyshares::repair::faults::random_scalar(state.public.curve(), &mut rand::rngs::OsRng);
    }
    let sealed = match seal_to(node, "value", session, spec.target, &value) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let payload = HelperValue {
        sealed: b64(&sealed),
        record_sha256: vouch(spec),
        commitments: state
            .own
            .as_ref()
            .map(|(_, commitments)| hex::encode(commitments))
            .unwrap_or_default(),
        forwarded: incoming.to_vec(),
    };
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

/// The repaired node's view of one helper's message: its value, and the commitments it and
/// the other helpers showed it.
struct Opened {
    value: Zeroizing<Vec<u8>>,
    commitments: Vec<u8>,
    /// dealer → the commitments that dealer signed for this helper.
    shown: BTreeMap<u16, Vec<u8>>,
}

/// `vouched` is [`vouch`] of this node's spec, which every helper's must equal.
fn open_value(
    node: &Node,
    session: &str,
    spec: &RepairSpec,
    vouched: &str,
    helper: u16,
    bytes: &[u8],
) -> Result<Opened, PeerResponse> {
    let blame =
        |message: String| PeerResponse::error(PeerErrorCode::Protocol, message, Some(helper));
    let value = serde_json::from_slice::<HelperValue>(bytes)
        .map_err(|_| blame(format!("node {helper} sent a malformed value")))?;
    if value.record_sha256 != vouched {
        return Err(blame(format!(
            "node {helper} holds another record of key {} than the coordinator sent",
            spec.record.name
        )));
    }
    let blob = unb64(&value.sealed).map_err(blame)?;
    let commitments = hex::decode(&value.commitments)
        .map_err(|e| blame(format!("node {helper} sent malformed commitments: {e}")))?;
    let mut shown = BTreeMap::new();
    for env in &value.forwarded {
        let dealer = env.from;
        let payload = node
            .verifier
            .check_forwarded(env, dealer, helper, session, kinds::DELTA)
            .ok()
            .filter(|_| dealer != helper && spec.helpers.contains(&dealer))
            .and_then(|p| serde_json::from_slice::<HelperSummand>(&p).ok())
            .and_then(|p| hex::decode(p.commitments).ok())
            .ok_or_else(|| {
                blame(format!(
                    "node {helper} passed on a message node {dealer} did not sign for it"
                ))
            })?;
        if shown.insert(dealer, payload).is_some() {
            return Err(blame(format!(
                "node {helper} passed on two summands of node {dealer}"
            )));
        }
    }
    if shown.len() + 1 != spec.helpers.len() {
        return Err(blame(format!(
            "node {helper} passed on {} summands, not one from each other helper",
            shown.len()
        )));
    }
    let value = unseal(node, "value", session, helper, &blob)?;
    Ok(Opened {
        value,
        commitments,
        shown,
    })
}

/// The repaired node: every helper's value; rebuilds, checks and stores its share.
pub fn values(node: &Arc<Node>, from: u16, session: &str, incoming: &[Envelope]) -> PeerResponse {
    let me = node.id();
    let role = format!("of node {me}");
    let fits = |s: &RepairSession| s.spec.coordinator == from && s.spec.target == me;
    let state = match take_session(node, session, fits, &role) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let spec = &state.spec;
    let raw = match crate::relay::open_relayed(
        node,
        session,
        kinds::VALUE,
        &spec.helpers,
        from,
        incoming,
    ) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let vouched = vouch(spec);
    let mut opened = BTreeMap::new();
    let mut blobs = BTreeMap::new();
    for (helper, bytes) in raw {
        match open_value(node, session, spec, &vouched, helper, &bytes) {
            Ok(o) => opened.insert(helper, o),
            Err(e) => return e,
        };
        if let Some(blob) = serde_json::from_slice::<HelperValue>(&bytes)
            .ok()
            .and_then(|v| unb64(&v.sealed).ok())
        {
            blobs.insert(helper, blob);
        }
    }
    // Every helper judged each dealer's summand by the commitments that dealer signed for it;
    // they must be the ones the dealer declared here.
    for (helper, o) in &opened {
        for (dealer, shown) in &o.shown {
            if opened.get(dealer).map(|d| &d.commitments) != Some(shown) {
                // Both are signed by the dealer, and the coordinator relayed both.
                return PeerResponse::Complaint {
                    accused: *dealer,
                    message: format!("node {dealer} signed different repair commitments for node {helper} and for node {me}"),
                    complaint: Complaint::Equivocation { echoer: *helper },
                };
            }
        }
    }
    let values = opened.iter().map(|(h, o)| (*h, o.value.clone())).collect();
    let commitments = opened
        .iter()
        .map(|(h, o)| (*h, o.commitments.clone()))
        .collect();
    let share = match state.repair().recover(&values, &commitments) {
        Ok(s) => s,
        Err(e) => return sealed_complaint(node, "value", session, &blobs, e),
    };
    let record = spec.record.clone();
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
