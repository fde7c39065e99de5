//! A node's side of a key ceremony. Each function handles one request of the coordinator,
//! checks everything it relays, and answers with this node's next messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use keyshares::dkg::{faults, Dkg, DkgParams, Echo};
use keyshares::echo::EchoMismatch;
use keyshares::reshare::{Reshare, ReshareParams};
use keyshares::{ProtocolError, PublicKeys};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use super::activation;
use super::blame::EchoReceipts;
use super::permit::{permit_ceremony, permit_renewal};
use super::protocol::Protocol;
use super::{kinds, round2_context};
use crate::auth::{audit_denial, authenticate, peer_refusal, ClientRequest};
use crate::blame::Complaint;
use crate::node::{ActiveKey, Node};
use crate::peer::messages::CeremonyPurpose;
use crate::peer::messages::GenerationAnswer;
use crate::peer::{CeremonySpec, Envelope, PeerErrorCode, PeerResponse};
use crate::state::generation::{GenerationCertificate, Refusal};
use crate::store::{curve_of, KeyRecord, Refused};

pub struct DkgSession {
    pub spec: CeremonySpec,
    protocol: Protocol,
    pub started: Instant,
    /// Receipts of the round-1 messages received, by origin: what this node's echo quotes.
    receipts: EchoReceipts,
}

/// This node's running ceremonies, by session id.
#[derive(Default)]
pub struct DkgSessions(
    pub parking_lot::Mutex<std::collections::HashMap<String, Arc<Mutex<DkgSession>>>>,
);

impl crate::sessions::RoleState for DkgSessions {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.ceremony();
        self.0
            .lock()
            .retain(|_, s| s.lock().started.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// This node's DkgSessions table.
pub fn sessions(node: &Node) -> std::sync::Arc<DkgSessions> {
    node.sessions.of::<DkgSessions>()
}

fn protocol(e: ProtocolError) -> PeerResponse {
    PeerResponse::error(PeerErrorCode::Protocol, e.to_string(), e.culprit_id())
}

/// A protocol failure that names another node, as a complaint the coordinator can check
/// (DESIGN.md §11); any other failure as it is.
fn complain(node: &Node, e: ProtocolError, complaint: Complaint) -> PeerResponse {
    match e.culprit_id() {
        Some(accused) if accused != node.id() => PeerResponse::Complaint {
            accused,
            message: e.to_string(),
            complaint,
        },
        _ => protocol(e),
    }
}

fn session_of(
    node: &Node,
    from: u16,
    session: &str,
) -> Result<Arc<Mutex<DkgSession>>, PeerResponse> {
    let s = sessions(node)
        .0
        .lock()
        .get(session)
        .cloned()
        .ok_or_else(|| {
            PeerResponse::error(
                PeerErrorCode::UnknownSession,
                format!("no ceremony {session} here (expired or aborted)"),
                None,
            )
        })?;
    if s.lock().spec.coordinator != from {
        return Err(PeerResponse::error(
            PeerErrorCode::Invalid,
            format!("node {from} does not coordinate ceremony {session}"),
            None,
        ));
    }
    Ok(s)
}

/// Opens the relayed envelopes of one kind: exactly one from every other participant.
fn open_incoming(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    kind: &str,
    incoming: &[Envelope],
) -> Result<BTreeMap<u16, Vec<u8>>, PeerResponse> {
    let others: Vec<u16> = spec
        .participants
        .iter()
        .copied()
        .filter(|p| *p != node.id())
        .collect();
    crate::relay::open_relayed(node, session, kind, &others, spec.coordinator, incoming)
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
    if let Some(refusal) = crate::relay::refuse_start(node, from, spec.coordinator, "ceremony") {
        return refusal;
    }
    let action = spec.purpose.action();
    if let Err(e) = authenticate(node, from, request).and_then(|c| match &spec.purpose {
        CeremonyPurpose::Create => permit_ceremony(node, &spec, request, c),
        _ => permit_renewal(node, &spec, request, c),
    }) {
        audit_denial(node, request, Some(&spec.name), action, "participant", &e);
        return peer_refusal(node, &e);
    }
    if let Err(e) = crate::validate::key_name(&spec.name) {
        return PeerResponse::error(PeerErrorCode::Invalid, e, None);
    }
    // Only inside its window, or a refusal forgotten after it could be contradicted.
    if let Err(e) =
        super::window::check_start(session, crate::clock::now_ms(), &node.config.timeouts)
    {
        return PeerResponse::error(PeerErrorCode::Invalid, e, None);
    }
    if let Some(p) = spec
        .participants
        .iter()
        .find(|p| !node.members.contains_key(p))
    {
        return PeerResponse::error(
            PeerErrorCode::Invalid,
            format!("participant {p} is not a cluster member"),
            None,
        );
    }
    // One ceremony's result at a time: an earlier one this node confirmed is settled first
    // (by its certificate or a refusal), or the two could not both be kept (DESIGN.md §11).
    if let Ok(Some(p)) = node.store.pending(&spec.name) {
        return PeerResponse::error(
            PeerErrorCode::Conflict,
            format!(
                "node {} holds the unsettled result of ceremony {} of key {}; it settles first",
                node.id(),
                p.statement.session,
                spec.name
            ),
            None,
        );
    }
    let Begun {
        protocol,
        package,
        second,
    } = match begin(node, &spec) {
        Ok(x) => x,
        Err(e) => return e,
    };
    {
        let table = sessions(node);
        let mut sessions = table.0.lock();
        if sessions.contains_key(session) {
            return PeerResponse::error(
                PeerErrorCode::Conflict,
                format!("ceremony {session} is already running"),
                None,
            );
        }
        if sessions.values().any(|s| s.lock().spec.name == spec.name) {
            return PeerResponse::error(
                PeerErrorCode::Conflict,
                format!("a ceremony for key {} is already running", spec.name),
                None,
            );
        }
        sessions.insert(
            session.to_string(),
            Arc::new(Mutex::new(DkgSession {
                spec: spec.clone(),
                protocol,
                started: Instant::now(),
                receipts: EchoReceipts::new(),
            })),
        );
    }
    let first_other = spec.participants.iter().copied().find(|p| *p != node.id());
    outgoing(node, &spec, session, kinds::ROUND1, |to| match &second {
        Some(other) if Some(to) != first_other => other.clone(),
        _ => package.clone(),
    })
}

/// This node's round 1: the protocol state, the round-1 payload, and (fault hook) a second
/// payload to equivocate with.
struct Begun {
    protocol: Protocol,
    package: Vec<u8>,
    second: Option<Vec<u8>>,
}

/// This node's round 1 of the ceremony `spec` asks for.
fn begin(node: &Node, spec: &CeremonySpec) -> Result<Begun, PeerResponse> {
    let curve = curve_of(spec.algorithm);
    let mut rng = rand::rngs::OsRng;
    let f = node.faults();
    let params = DkgParams {
        me: node.id(),
        participants: spec.participants.clone(),
        threshold: spec.threshold,
    };
    let invalid =
        |e: ProtocolError| PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None);
    match &spec.purpose {
        CeremonyPurpose::Create => {
            if node.store.contains_key(&spec.name).unwrap_or(true) {
                return Err(PeerResponse::error(
                    PeerErrorCode::Conflict,
                    format!("key {} exists already on node {}", spec.name, node.id()),
                    None,
                ));
            }
            let (dkg, package) = if f.tamper_dkg_round1 {
                faults::start_with_tampered_round1(curve, params.clone(), &mut rng)
            } else {
                Dkg::start(curve, params.clone(), &mut rng)
            }
            .map_err(invalid)?;
            let second = f
                .equivocate_dkg_round1
                .then(|| faults::equivocating_round1(curve, &params, &mut rng).ok())
                .flatten();
            Ok(Begun {
                protocol: Protocol::Dkg(Box::new(dkg)),
                package,
                second,
            })
        }
        CeremonyPurpose::Refresh { previous } => {
            let active = held(node, previous)?;
            let (dkg, package) =
                Dkg::start_refresh(params, &active.share, &active.public, &mut rng)
                    .map_err(invalid)?;
            Ok(Begun {
                protocol: Protocol::Dkg(Box::new(dkg)),
                package,
                second: None,
            })
        }
        CeremonyPurpose::Reshare {
            previous,
            dealers,
            participants,
        } => {
            let mut members: Vec<u16> = dealers.iter().chain(participants).copied().collect();
            members.sort_unstable();
            members.dedup();
            let left_out = previous
                .participants
                .iter()
                .filter(|p| !members.contains(p))
                .count();
            if members != spec.participants || left_out >= usize::from(previous.threshold) {
                return Err(PeerResponse::error(
                    PeerErrorCode::Invalid,
                    "the reshare's members are not its dealers and new committee, or leave \
                     enough holders out to use the key",
                    None,
                ));
            }
            let old = PublicKeys::from_bytes(
                curve,
                &hex::decode(&previous.public_keys).unwrap_or_default(),
            )
            .map_err(invalid)?;
            let active = if previous.participants.contains(&node.id()) {
                Some(held(node, previous)?)
            } else if node.key(&spec.name).is_some() {
                return Err(PeerResponse::error(
                    PeerErrorCode::Conflict,
                    format!(
                        "node {} holds a share of {} the coordinator does not know of",
                        node.id(),
                        spec.name
                    ),
                    None,
                ));
            } else {
                None
            };
            let params = ReshareParams {
                me: node.id(),
                dealers: dealers.clone(),
                new_participants: participants.clone(),
                new_threshold: spec.threshold,
            };
            let (reshare, package) =
                Reshare::start(params, old, active.as_ref().map(|a| &a.share), &mut rng)
                    .map_err(invalid)?;
            Ok(Begun {
                protocol: Protocol::Reshare(Box::new(reshare)),
                package,
                second: None,
            })
        }
    }
}

/// The share this node holds of the key `previous` describes; refused unless this node's
/// record of the key is exactly `previous`.
fn held(node: &Node, previous: &KeyRecord) -> Result<Arc<ActiveKey>, PeerResponse> {
    match node.key(&previous.name) {
        Some(active) if active.record == *previous => Ok(active),
        Some(_) => Err(PeerResponse::error(
            PeerErrorCode::Conflict,
            format!(
                "node {} holds another generation of key {} than the coordinator",
                node.id(),
                previous.name
            ),
            None,
        )),
        None => Err(PeerResponse::error(
            PeerErrorCode::Invalid,
            format!("node {} holds no share of key {}", node.id(), previous.name),
            None,
        )),
    }
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
    let echo = match s.protocol.receive_round1(&packages) {
        Ok(e) => e,
        Err(e) => return complain(node, e, Complaint::Round1),
    };
    // The echo quotes each round-1 message by its sender's signature (DESIGN.md §4.2, §11).
    let me = node.id();
    let mut receipts = EchoReceipts::new();
    for env in incoming.iter().filter(|e| echo.contains_key(&e.from)) {
        match env.receipt() {
            Ok(r) => receipts.insert(env.from, r),
            Err(e) => return PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None),
        };
    }
    s.receipts = receipts.clone();
    let framed = node.faults().frame_in_echo;
    outgoing(node, &s.spec, session, kinds::ECHO, |to| {
        let mut quoted = receipts.clone();
        if let Some(victim) = framed.filter(|v| *v != to && *v != me) {
            if let Some(r) = quoted.get_mut(&victim) {
                // A digest of another package, under the victim's signature.
                r.payload_sha256 = hex::encode(keyshares::echo::round1_digest(b"framed"));
            }
        }
        serde_json::to_vec(&quoted).unwrap_or_default()
    })
}

/// An echo whose every quote carries its origin's signature, as the digests it quotes.
fn parse_echo(node: &Node, session: &str, echoer: u16, bytes: &[u8]) -> Option<Echo> {
    let receipts: EchoReceipts = serde_json::from_slice(bytes).ok()?;
    receipts
        .iter()
        .map(|(origin, r)| {
            let digest = node
                .verifier
                .check_receipt(r, *origin, echoer, session, kinds::ROUND1)
                .ok()?;
            Some((*origin, digest))
        })
        .collect()
}

/// The complaint an echo mismatch makes: every quote was checked for its origin's signature
/// already, so a digest that differs from ours is the origin's second signed message.
fn mismatch_complaint(m: &EchoMismatch) -> PeerResponse {
    let (accused, complaint) = if m.is_malformed() {
        (m.echoer, Complaint::Echo)
    } else {
        (m.origin, Complaint::Equivocation { echoer: m.echoer })
    };
    PeerResponse::Complaint {
        accused,
        message: m.to_string(),
        complaint,
    }
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
        match parse_echo(node, session, sender, &bytes) {
            Some(e) => echoes.insert(sender, e),
            None => {
                return PeerResponse::Complaint {
                    accused: sender,
                    message: format!(
                    "node {sender}'s echo is malformed or quotes a message its origin did not sign"
                ),
                    complaint: Complaint::Echo,
                }
            }
        };
    }
    let mut packages = match s.protocol.check_echoes(&echoes) {
        Ok(p) => p,
        Err(ProtocolError::Echo(m)) => return mismatch_complaint(&m),
        // What else fails here is a round-1 message (frost's proof of knowledge).
        Err(e) => return complain(node, e, Complaint::Round1),
    };
    let curve = curve_of(s.spec.algorithm);
    if node.faults().tamper_dkg_round2 {
        let bad = match s.protocol {
            Protocol::Dkg(_) => faults::tampered_round2(curve, &mut rand::rngs::OsRng),
            Protocol::Reshare(_) => {
                keyshares::reshare::faults::tampered_subshare(curve, &mut rand::rngs::OsRng)
            }
        };
        if let (Some(first), Ok(bad)) = (packages.keys().next().copied(), bad) {
            packages.insert(first, bad);
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
            return PeerResponse::error(
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
    for (sender, blob) in sealed.clone() {
        // A reshare member with nothing for this node sends nothing; the protocol decides
        // whether that sender owed something.
        if blob.is_empty() {
            packages.insert(sender, Zeroizing::new(Vec::new()));
            continue;
        }
        match keyshares::seal::open(
            node.identity.seal_secret(),
            &round2_context(session, sender, node.id()),
            &blob,
        ) {
            Ok(p) => packages.insert(sender, p),
            Err(e) => {
                return PeerResponse::error(
                    PeerErrorCode::Protocol,
                    format!("round-2 package from node {sender}: {e}"),
                    Some(sender),
                )
            }
        };
    }
    if let Some(answer) = false_complaint(node, session, &sealed) {
        return answer;
    }
    let (share, public) = match s.protocol.receive_round2(&packages) {
        Ok(x) => x,
        Err(e) => return share_complaint(node, session, &sealed, e),
    };
    let answer = activation::seal_pending(node, &s.spec, session, share.as_ref(), &public);
    // Its part is done: what is left of the ceremony is on disk, settled by evidence alone.
    drop(s);
    sessions(node).0.lock().remove(session);
    answer
}

/// A complaint about `e`'s culprit's round-2 share, with the key of the sealed message it
/// came in (GJKR's complaint phase: the share is revealed and checked against the sender's
/// signed commitment, DESIGN.md §11). Without a sealed message there is nothing to reveal,
/// and the failure is answered as it is.
fn share_complaint(
    node: &Node,
    session: &str,
    sealed: &BTreeMap<u16, Vec<u8>>,
    e: ProtocolError,
) -> PeerResponse {
    let Some(accused) = e.culprit_id().filter(|c| *c != node.id()) else {
        return protocol(e);
    };
    match reveal(node, session, accused, sealed) {
        Some(message_key) => complain(node, e, Complaint::Sealed { message_key }),
        None => protocol(e),
    }
}

/// The hex key of the sealed message `from` sent this node, if there is one that opens.
fn reveal(
    node: &Node,
    session: &str,
    from: u16,
    sealed: &BTreeMap<u16, Vec<u8>>,
) -> Option<String> {
    let blob = sealed.get(&from).filter(|b| !b.is_empty())?;
    let context = round2_context(session, from, node.id());
    let key = keyshares::seal::reveal(node.identity.seal_secret(), &context, blob).ok()?;
    Some(hex::encode(&*key.to_bytes()))
}

/// The fault hooks' false complaints in round 2: bare, or with the key of a sound share.
fn false_complaint(
    node: &Node,
    session: &str,
    sealed: &BTreeMap<u16, Vec<u8>>,
) -> Option<PeerResponse> {
    let f = node.faults();
    let message = |x: u16| format!("node {x}'s round-2 share does not match its commitment");
    if let Some(x) = f.false_complaint_against {
        return Some(PeerResponse::error(
            PeerErrorCode::Protocol,
            message(x),
            Some(x),
        ));
    }
    let x = f.false_share_complaint_against?;
    Some(PeerResponse::Complaint {
        accused: x,
        message: message(x),
        complaint: Complaint::Sealed {
            message_key: reveal(node, session, x, sealed)?,
        },
    })
}

/// The ceremony committed: activate this node's pending result with the certificate.
pub fn commit(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    certificate: &GenerationCertificate,
) -> PeerResponse {
    let s = &certificate.statement;
    if s.session != session || s.coordinator != from {
        return PeerResponse::error(
            PeerErrorCode::Invalid,
            "the certificate is not of this ceremony or not from its coordinator",
            Some(from),
        );
    }
    if let Err(e) = certificate.verify(&node.signers) {
        return PeerResponse::error(
            PeerErrorCode::Protocol,
            format!("invalid certificate: {e}"),
            Some(from),
        );
    }
    sessions(node).0.lock().remove(session);
    if let Err(e) = activation::activate(node, certificate, "coordinator") {
        return PeerResponse::error(PeerErrorCode::Invalid, e, None);
    }
    match activation::acknowledgement(node, certificate) {
        Some(signature) => PeerResponse::Acknowledged { signature },
        None => PeerResponse::error(
            PeerErrorCode::Invalid,
            format!(
                "node {} is not a member of the certified ceremony",
                node.id()
            ),
            None,
        ),
    }
}

/// Every member acknowledged the ceremony: erase the share it replaced.
pub fn close(
    node: &Arc<Node>,
    session: &str,
    key: &str,
    acks: &BTreeMap<u16, String>,
) -> PeerResponse {
    let certificate = match node.store.certificate(session) {
        Ok(Some(c)) if c.statement.key == key => c,
        _ => {
            return PeerResponse::error(
                PeerErrorCode::UnknownSession,
                format!(
                    "node {} holds no certificate of ceremony {session}",
                    node.id()
                ),
                None,
            )
        }
    };
    match activation::close(node, &certificate, acks) {
        Ok(_) => PeerResponse::Ack,
        Err(e) => PeerResponse::error(PeerErrorCode::Invalid, e, None),
    }
}

/// The ceremony failed: forget it; a result already sealed goes only on the coordinator's
/// signed refusal, since without it the certificate might still exist.
pub fn abort(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    reason: &str,
    refusal: Option<&Refusal>,
) -> PeerResponse {
    if let Ok(s) = session_of(node, from, session) {
        sessions(node).0.lock().remove(session);
        tracing::warn!(key = %s.lock().spec.name, session, reason, "key ceremony aborted");
    }
    if let Some(refusal) = refusal {
        let pending = node.store.pending(&refusal.key).ok().flatten();
        // Only the coordinator's own refusal, pushed by the coordinator: a member's refusal
        // is weighed against the certificate others may hold (the reconciler asks them all).
        let coordinators = |p: &crate::store::PendingGeneration| {
            p.statement.coordinator == from && refusal.signer == from
        };
        if let Some(p) = pending.filter(|p| p.statement.session == session && coordinators(p)) {
            match refusal.proves_aborted(&node.signers, &p.statement) {
                Ok(()) => activation::discard(node, &p, "aborted by its coordinator"),
                Err(e) => {
                    return PeerResponse::error(
                        PeerErrorCode::Protocol,
                        format!("invalid refusal: {e}"),
                        Some(from),
                    )
                }
            }
        }
    }
    PeerResponse::Ack
}

/// What this node knows of ceremony `session` of `key` (DESIGN.md §11): its certificate (with
/// this node's acknowledgement once it activated it), or a refusal when this node never
/// confirmed it and now promises never to, or nothing while it is in doubt or the ceremony
/// runs.
pub fn status(node: &Arc<Node>, asker: u16, key: &str, session: &str) -> PeerResponse {
    let answer = |a| PeerResponse::Generation(Box::new(a));
    let failed = |e: crate::store::StoreError| {
        PeerResponse::error(PeerErrorCode::Invalid, e.to_string(), None)
    };
    match node.store.certificate(session) {
        Ok(Some(certificate)) if certificate.statement.key == key => {
            let ack = activation::acknowledgement(node, &certificate);
            return answer(GenerationAnswer {
                certificate: Some(certificate),
                refusal: None,
                ack,
            });
        }
        Ok(_) => {}
        Err(e) => return failed(e),
    }
    if node.coordinating.lock().contains(session) || sessions(node).0.lock().contains_key(session) {
        return answer(GenerationAnswer::default());
    }
    let pending = match node.store.pending(key) {
        Ok(p) => p.filter(|p| p.statement.session == session),
        Err(e) => return failed(e),
    };
    if let Some(p) = pending {
        // A member that confirmed is in doubt, unless it is also the ceremony's coordinator:
        // only the coordinator collects the confirmations, and a coordinator that is not
        // running the ceremony any more (it failed, or the node restarted) never will.
        if p.statement.coordinator != node.id() {
            return answer(GenerationAnswer::default());
        }
        activation::discard(node, &p, "its coordinator (this node) never committed it");
    }
    answer(GenerationAnswer {
        refusal: refuse(node, key, session, asker),
        ..Default::default()
    })
}

/// Promises, durably, never to confirm ceremony `session` of `key`, on `asker`'s request, and
/// signs the promise; `None` when it cannot be given (already confirmed here, a session
/// minted ahead of this node's clock, or an asker that already holds its share of live
/// refusals), which leaves the asker in doubt: it asks again later (DESIGN.md §11).
pub(super) fn refuse(node: &Node, key: &str, session: &str, asker: u16) -> Option<Refusal> {
    use super::window::RefusalKeeping;
    let until = match super::window::refusal_keeping(
        session,
        crate::clock::now_ms(),
        &node.config.timeouts,
    ) {
        RefusalKeeping::Until(t) => Some(t),
        RefusalKeeping::Closed => None,
        RefusalKeeping::FromTheFuture => return None,
    };
    match node.store.refuse(key, session, asker, until) {
        Ok(Refused::Kept | Refused::Closed) => Some(Refusal::sign(&node.identity, key, session)),
        Ok(Refused::AskerAtLimit) => {
            tracing::warn!(key, session, asker, "not refusing a ceremony: the asker holds as many live refusals as it may ([limits] refusals_per_peer)");
            None
        }
        // Confirmed meanwhile: in doubt after all.
        Err(_) => None,
    }
}
