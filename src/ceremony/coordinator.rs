//! Coordinating a key ceremony: the node that took `POST /v1/keys` drives every participant
//! through the rounds, relays their signed messages, and aborts everywhere on the first failure,
//! naming the node to blame.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use api::{CreateKeyRequest, Excluded, KeyInfo};
use futures::future::join_all;

use crate::auth::{Caller, ClientRequest};
use crate::blame::Relayed;
use crate::blame::{Accusation, Verdict};
use crate::error::ApiError;
use crate::node::{Counters, Node};
use crate::peer::messages::CeremonyPurpose;
use crate::peer::{CeremonySpec, Envelope, PeerErrorCode, PeerRequest, PeerResponse};
use crate::state::generation::{self, GenerationCertificate};
use crate::store::KeyRecord;
use crate::transport;
use crate::transport::CallError;
use keyshares::outcome::{Ceremony, Outcome};
use keyshares::PublicKeys;

use super::kinds;

/// Communication cost of one operation, as the coordinator counted it.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    pub rounds: u32,
    pub peer_requests: u64,
    pub peer_bytes: u64,
    pub elapsed_ms: f64,
    pub nodes: Vec<api::NodeTraffic>,
}

impl Cost {
    /// The cost counted in `counters` by `coordinator` over `rounds` round trips since
    /// `started`.
    pub fn measured(rounds: u32, counters: &Counters, coordinator: u16, started: Instant) -> Cost {
        use std::sync::atomic::Ordering::Relaxed;
        Cost {
            rounds,
            peer_requests: counters.peer_requests.load(Relaxed),
            peer_bytes: counters.peer_bytes.load(Relaxed),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
            nodes: counters.by_node(coordinator),
        }
    }

    pub fn to_api(self) -> api::OperationStats {
        api::OperationStats {
            rounds: self.rounds,
            peer_requests: self.peer_requests,
            peer_bytes: self.peer_bytes,
            elapsed_ms: self.elapsed_ms,
            nodes: self.nodes,
        }
    }
}

/// Why a phase failed.
pub(crate) enum Failure {
    Invalid(String),
    /// A participant refused the request as invalid: named, with the status of a bad request.
    Refused(String, Vec<Excluded>),
    /// The whole ceremony ran out of time (each peer call has its own, shorter deadline).
    TimedOut(String),
    /// A participant's state conflicts with the request: named, with the status of a conflict.
    Conflict(String, Vec<Excluded>),
    Blame {
        culprits: Vec<Excluded>,
        unavailable: bool,
    },
}

impl Failure {
    pub(crate) fn into_api(self, name: &str) -> ApiError {
        match self {
            Failure::Invalid(m) => ApiError::bad_request(m),
            Failure::TimedOut(m) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timed_out", m),
            Failure::Refused(m, culprits) => ApiError::bad_request(m).with_culprits(culprits),
            Failure::Conflict(m, culprits) => ApiError::conflict(m).with_culprits(culprits),
            Failure::Blame {
                culprits,
                unavailable,
            } => {
                let who: Vec<String> = culprits
                    .iter()
                    .map(|c| format!("node {}: {}", c.node, c.reason))
                    .collect();
                let status = if unavailable {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                ApiError::new(
                    status,
                    "ceremony_failed",
                    format!("key ceremony for {name} failed: {}", who.join("; ")),
                )
                .with_culprits(culprits)
            }
        }
    }
}

pub(crate) fn blame(node: u16, reason: String, unavailable: bool) -> Failure {
    Failure::Blame {
        culprits: vec![Excluded { node, reason }],
        unavailable,
    }
}

/// Sends one request to every participant at once and collects their answers.
///
/// A failure this node saw itself (no answer) is a fact. A participant's refusal without a
/// culprit names that participant: it is the one that stopped the protocol. An accusation
/// of another node is settled by `settle` on evidence (DESIGN.md §11, `crate::blame`): a node
/// is named only on proof it signed, or with its accuser when nothing can be checked. How
/// many nodes accuse one another counts for nothing.
pub(crate) async fn phase(
    node: &Arc<Node>,
    session: &str,
    participants: &[u16],
    counters: &Counters,
    mut request_for: impl FnMut(u16) -> PeerRequest,
    settle: impl Fn(&Accusation) -> Verdict,
) -> Result<BTreeMap<u16, PeerResponse>, Failure> {
    let calls = participants.iter().map(|p| {
        let request = request_for(*p);
        async move {
            (
                *p,
                transport::call(node, *p, session, &request, Some(counters)).await,
            )
        }
    });
    let mut answers = BTreeMap::new();
    let mut culprits = Vec::new();
    let mut refusal: Option<(PeerErrorCode, u16, String)> = None;
    let mut unavailable = false;
    for (p, result) in join_all(calls).await {
        match result {
            Ok(PeerResponse::Error {
                message,
                culprit: Some(accused),
                ..
            }) if accused != p => {
                let accusation = Accusation {
                    accuser: p,
                    accused,
                    message,
                    complaint: None,
                };
                culprits.extend(settle(&accusation).into_excluded());
            }
            Ok(PeerResponse::Error { code, message, .. }) => {
                if matches!(code, PeerErrorCode::Invalid | PeerErrorCode::Conflict) {
                    refusal.get_or_insert((code, p, message.clone()));
                }
                culprits.push(Excluded {
                    node: p,
                    reason: message,
                });
            }
            Ok(PeerResponse::Complaint {
                accused,
                message,
                complaint,
            }) => {
                let accusation = Accusation {
                    accuser: p,
                    accused,
                    message,
                    complaint: Some(complaint),
                };
                culprits.extend(settle(&accusation).into_excluded());
            }
            Ok(answer) => {
                answers.insert(p, answer);
            }
            Err(e) => {
                unavailable |= matches!(e, CallError::Unreachable(_) | CallError::Timeout);
                culprits.push(Excluded {
                    node: p,
                    reason: e.to_string(),
                });
            }
        }
    }
    if culprits.is_empty() {
        return Ok(answers);
    }
    culprits.sort_by_key(|c| c.node);
    culprits.dedup_by_key(|c| c.node);
    // A refusal (invalid request, conflicting state) keeps its status, naming who refused.
    if let Some((code, p, message)) = refusal {
        let message = format!("node {p}: {message}");
        return Err(match code {
            PeerErrorCode::Conflict => Failure::Conflict(message, culprits),
            _ => Failure::Refused(message, culprits),
        });
    }
    Err(Failure::Blame {
        culprits,
        unavailable,
    })
}

/// Checks that every participant answered with one envelope for each other participant, each
/// signed by it for this session and step, and sorts the envelopes by recipient. A message
/// that does not verify is its sender's (it came in the sender's own signed answer), so no
/// participant ever has to accuse a peer of what this node relays.
fn route(
    node: &Node,
    session: &str,
    kind: &str,
    answers: BTreeMap<u16, PeerResponse>,
    participants: &[u16],
) -> Result<BTreeMap<u16, Vec<Envelope>>, Failure> {
    let mut routed: BTreeMap<u16, Vec<Envelope>> =
        participants.iter().map(|p| (*p, Vec::new())).collect();
    for (p, answer) in answers {
        let PeerResponse::Outgoing { envelopes } = answer else {
            return Err(blame(
                p,
                "answered with an unexpected message".into(),
                false,
            ));
        };
        let mut recipients: Vec<u16> = envelopes.iter().map(|e| e.to).collect();
        recipients.sort_unstable();
        let expected: Vec<u16> = participants.iter().copied().filter(|q| *q != p).collect();
        if recipients != expected || envelopes.iter().any(|e| e.from != p) {
            return Err(blame(
                p,
                "sent messages for the wrong set of participants".into(),
                false,
            ));
        }
        for env in envelopes {
            if let Err(e) = node
                .verifier
                .check_forwarded(&env, p, env.to, session, kind)
            {
                return Err(blame(p, format!("sent an invalid {kind}: {e}"), false));
            }
            routed.entry(env.to).or_default().push(env);
        }
    }
    Ok(routed)
}

async fn run_phases(
    node: &Arc<Node>,
    session: &str,
    spec: &CeremonySpec,
    request: &ClientRequest,
    counters: &Counters,
) -> Result<Confirmed, Failure> {
    let ps = &spec.participants;
    // Every message relayed, signed by its origin: the evidence complaints are settled on.
    let relayed = parking_lot::Mutex::new(Relayed::default());
    let settle = |a: &Accusation| {
        let relayed = relayed.lock();
        super::blame::settle(node, spec, session, &relayed, a)
    };
    let answers = phase(
        node,
        session,
        ps,
        counters,
        |_| PeerRequest::DkgStart {
            spec: spec.clone(),
            request: request.clone(),
        },
        settle,
    )
    .await?;
    let mut routed = route(node, session, kinds::ROUND1, answers, ps)?;
    relayed.lock().record(kinds::ROUND1, &routed);
    let answers = phase(
        node,
        session,
        ps,
        counters,
        |p| PeerRequest::DkgRound1 {
            incoming: routed.remove(&p).unwrap_or_default(),
        },
        settle,
    )
    .await?;
    let mut routed = route(node, session, kinds::ECHO, answers, ps)?;
    relayed.lock().record(kinds::ECHO, &routed);
    let answers = phase(
        node,
        session,
        ps,
        counters,
        |p| PeerRequest::DkgEcho {
            incoming: routed.remove(&p).unwrap_or_default(),
        },
        settle,
    )
    .await?;
    let mut routed = route(node, session, kinds::ROUND2, answers, ps)?;
    relayed.lock().record(kinds::ROUND2, &routed);
    let answers = phase(
        node,
        session,
        ps,
        counters,
        |p| PeerRequest::DkgRound2 {
            incoming: routed.remove(&p).unwrap_or_default(),
        },
        settle,
    )
    .await?;
    let relayed = relayed.into_inner();
    let expected = expected_outcome(node, spec, session, &relayed)?;
    certify(node, spec, session, answers, &expected)
}

/// The key the signed round-1 messages this node relayed make (`keyshares::outcome`): what
/// every member's confirmation must report.
fn expected_outcome(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
) -> Result<Outcome, Failure> {
    let ps = &spec.participants;
    let round1: BTreeMap<u16, Vec<u8>> = ps
        .iter()
        .filter_map(|p| {
            let to = ps.iter().find(|q| *q != p)?;
            Some((*p, relayed.signed(node, session, kinds::ROUND1, *p, *to)?))
        })
        .collect();
    let curve = crate::store::curve_of(spec.algorithm);
    let old = spec
        .purpose
        .previous()
        .map(|previous| {
            hex::decode(&previous.public_keys)
                .ok()
                .and_then(|b| PublicKeys::from_bytes(curve, &b).ok())
                .ok_or_else(|| Failure::Invalid("the previous public keys are unreadable".into()))
        })
        .transpose()?;
    let (ceremony, holders) = match (&spec.purpose, &old) {
        (CeremonyPurpose::Refresh { previous }, Some(old)) => {
            (Ceremony::Refresh { old }, previous.participants.clone())
        }
        (
            CeremonyPurpose::Reshare {
                dealers,
                participants,
                ..
            },
            Some(old),
        ) => (
            Ceremony::Reshare {
                old,
                dealers,
                new_threshold: spec.threshold,
            },
            participants.clone(),
        ),
        _ => (
            Ceremony::Dkg {
                threshold: spec.threshold,
            },
            ps.clone(),
        ),
    };
    keyshares::outcome::expected(curve, &ceremony, &holders, &round1)
        .map_err(|e| Failure::Invalid(format!("the relayed round-1 messages: {e}")))
}

/// A ceremony every member confirmed: the new public key package and the certificate.
struct Confirmed {
    public_keys: String,
    certificate: GenerationCertificate,
}

/// Builds the certificate from every member's confirmation (DESIGN.md §11). Each member
/// sealed its result before it signed; the statement it signed must be the one this node
/// computes from the spec and the public keys it reports, and those keys must be `expected`,
/// so a member that reports another key, or signed something else, is named.
fn certify(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    answers: BTreeMap<u16, PeerResponse>,
    expected: &Outcome,
) -> Result<Confirmed, Failure> {
    let mut signatures = BTreeMap::new();
    let mut reported: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut statements = BTreeMap::new();
    let mut computed = BTreeMap::new();
    for (p, answer) in answers {
        let PeerResponse::Confirmed {
            public_keys,
            statement,
            signature,
        } = answer
        else {
            return Err(blame(
                p,
                "answered with an unexpected message".into(),
                false,
            ));
        };
        // Honest members report the same keys: the statement (and the spec's hash in it) is
        // computed once per distinct report, not once per member.
        let expected = computed
            .entry(public_keys.clone())
            .or_insert_with(|| {
                super::statement_of(spec, &super::record_of(spec, &public_keys, session))
            })
            .clone();
        if *statement != expected {
            return Err(blame(
                p,
                "confirmed a statement that does not describe its key".into(),
                false,
            ));
        }
        if let Err(e) = statement.verify(&node.signers, p, &signature) {
            return Err(blame(p, format!("confirmation: {e}"), false));
        }
        reported.entry(public_keys).or_default().push(p);
        statements.insert(p, *statement);
        signatures.insert(p, signature);
    }
    // A member whose signed confirmation reports another key than the signed round-1
    // messages make is named on that evidence (DESIGN.md §11), however many agree with it.
    let curve = crate::store::curve_of(spec.algorithm);
    let culprits: Vec<Excluded> = reported
        .iter()
        .filter(|(keys, _)| {
            let reported = hex::decode(keys)
                .ok()
                .and_then(|b| PublicKeys::from_bytes(curve, &b).ok());
            !reported.is_some_and(|r| Outcome::of(&r) == *expected)
        })
        .flat_map(|(_, nodes)| nodes)
        .map(|p| Excluded {
            node: *p,
            reason: "its signed confirmation reports another key than the signed round-1 \
                     messages make"
                .into(),
        })
        .collect();
    if !culprits.is_empty() {
        return Err(Failure::Blame {
            culprits,
            unavailable: false,
        });
    }
    let public_keys = reported
        .into_keys()
        .next()
        .ok_or_else(|| Failure::Invalid("no confirmation to read the key from".into()))?;
    let statement = statements
        .into_values()
        .next()
        .ok_or_else(|| Failure::Invalid("no confirmation".into()))?;
    Ok(Confirmed {
        public_keys,
        certificate: GenerationCertificate {
            statement,
            signatures,
        },
    })
}

/// Checks a requested committee: cluster members, no duplicates, a usable threshold.
/// Answers it sorted.
pub fn committee(
    node: &Node,
    mut participants: Vec<u16>,
    threshold: u16,
) -> Result<Vec<u16>, ApiError> {
    participants.sort_unstable();
    if participants.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::bad_request("participants contain a duplicate id"));
    }
    if let Some(p) = participants.iter().find(|p| !node.members.contains_key(p)) {
        return Err(ApiError::bad_request(format!(
            "unknown participant {p}: cluster members are {:?}",
            node.members.keys().collect::<Vec<_>>()
        )));
    }
    let n = participants.len();
    if threshold < 2 || usize::from(threshold) > n {
        return Err(ApiError::bad_request(format!(
            "threshold must be between 2 and the number of participants ({n}), got {threshold}"
        )));
    }
    Ok(participants)
}

/// The number of peer round trips of a ceremony: start, round 1, echo, round 2, commit.
const CEREMONY_ROUNDS: u32 = 5;

/// Runs the key ceremony the client's signed `client_request` asks for (`request` is its
/// body); answers the new key's public data.
pub async fn create_key(
    node: &Arc<Node>,
    request: CreateKeyRequest,
    client_request: &ClientRequest,
    caller: &Caller,
) -> Result<(KeyInfo, Cost), ApiError> {
    if let Some(policy) = &request.policy {
        crate::auth::policy::validate(policy).map_err(ApiError::bad_request)?;
    }
    crate::validate::key_name(&request.name).map_err(ApiError::bad_request)?;
    let participants = committee(
        node,
        request
            .participants
            .clone()
            .unwrap_or_else(|| node.members.keys().copied().collect()),
        request.threshold,
    )?;
    if node
        .store
        .contains_key(&request.name)
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        return Err(ApiError::conflict(format!(
            "key {} exists already",
            request.name
        )));
    }
    let spec = CeremonySpec {
        name: request.name.clone(),
        algorithm: request.algorithm,
        threshold: request.threshold,
        participants,
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        coordinator: node.id(),
        policy: crate::auth::policy::initial(&request, caller.name()),
        purpose: CeremonyPurpose::Create,
    };
    let (record, cost) = run(node, &spec, client_request).await?;
    let info = crate::keyview::key_info(&record, &spec.policy)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((info, cost))
}

/// Runs the ceremony `spec` describes with every participant, within the ceremony timeout.
/// Until every member has confirmed it fails and is aborted everywhere; from then on it is
/// committed (DESIGN.md §11): the certificate is stored here first, then handed to every
/// member, and a member this node cannot reach now gets it later from the reconciler.
pub async fn run(
    node: &Arc<Node>,
    spec: &CeremonySpec,
    client_request: &ClientRequest,
) -> Result<(KeyRecord, Cost), ApiError> {
    let minted = crate::clock::now_ms().saturating_sub(node.faults().mint_sessions_ago_ms);
    let session = super::window::mint(minted);
    node.coordinating.lock().insert(session.clone());
    let outcome = coordinate(node, spec, client_request, &session).await;
    node.coordinating.lock().remove(&session);
    outcome
}

async fn coordinate(
    node: &Arc<Node>,
    spec: &CeremonySpec,
    client_request: &ClientRequest,
    session: &str,
) -> Result<(KeyRecord, Cost), ApiError> {
    let started = Instant::now();
    let counters = Counters::default();
    let action = spec.purpose.action();
    tracing::info!(key = %spec.name, algorithm = %spec.algorithm, t = spec.threshold, members = ?spec.participants, session, action, "key ceremony started");
    let outcome = match tokio::time::timeout(
        node.config.timeouts.ceremony(),
        run_phases(node, session, spec, client_request, &counters),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(Failure::TimedOut(format!(
            "the ceremony did not finish within {} ms",
            node.config.timeouts.ceremony_ms
        ))),
    };
    if node.faults().halt_coordinator_at == Some("confirmations") {
        return Err(halted());
    }
    let committed = outcome.and_then(|confirmed| {
        node.store
            .commit_coordinated(
                &confirmed.certificate,
                super::window::confirm_by(session, &node.config.timeouts).unwrap_or(0),
            )
            .map(|()| confirmed)
            .map_err(|e| Failure::Invalid(format!("committing the ceremony: {e}")))
    });
    let confirmed = match committed {
        Ok(c) => c,
        Err(failure) => {
            let api = failure.into_api(&spec.name);
            tracing::warn!(key = %spec.name, session, action, culprits = ?api.body.culprits, "key ceremony failed: {}", api.body.message);
            abort(node, spec, session, &api.body.message).await;
            return Err(api);
        }
    };
    if node.faults().halt_coordinator_at == Some("commit") {
        return Err(halted());
    }
    let certificate = &confirmed.certificate;
    let commit = PeerRequest::DkgCommit {
        certificate: certificate.clone(),
    };
    let acks =
        super::reconcile::collect_acks(node, session, &spec.participants, &commit, Some(&counters))
            .await;
    let mut rounds = CEREMONY_ROUNDS;
    if generation::all_acknowledged(&node.signers, certificate, &acks) {
        if spec.purpose.previous().is_some() {
            let close = PeerRequest::DkgClose {
                key: spec.name.clone(),
                acks,
            };
            everyone(node, session, &spec.participants, &close, Some(&counters)).await;
            rounds += 1;
        }
        if let Err(e) = node.store.close_coordinated(session) {
            tracing::error!(error = %e, "closing a coordinated ceremony failed");
        }
    } else {
        let missing: Vec<u16> = spec
            .participants
            .iter()
            .copied()
            .filter(|p| !acks.contains_key(p))
            .collect();
        tracing::warn!(key = %spec.name, session, ?missing, "ceremony committed; members not acknowledging yet get the certificate later");
        node.reconcile.notify_one();
    }
    let record = super::record_of(spec, &confirmed.public_keys, session);
    let cost = Cost::measured(rounds, &counters, node.id(), started);
    tracing::info!(key = %record.name, action, generation = record.generation, elapsed_ms = cost.elapsed_ms, peer_bytes = cost.peer_bytes, "key ceremony succeeded");
    Ok((record, cost))
}

fn halted() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "halted",
        "the coordinator stopped (fault hook)",
    )
}

/// Promises never to commit `session`, durably, and tells every member, so that those that
/// sealed a result discard it (DESIGN.md §11). A member the abort does not reach asks later.
async fn abort(node: &Arc<Node>, spec: &CeremonySpec, session: &str, reason: &str) {
    // This node's own sealed result goes first: as coordinator it will never commit it.
    if let Ok(Some(p)) = node.store.pending(&spec.name) {
        if p.statement.session == session {
            super::activation::discard(node, &p, "its coordinator (this node) aborted it");
        }
    }
    let refusal = super::participant::refuse(node, &spec.name, session, node.id());
    let abort = PeerRequest::DkgAbort {
        reason: reason.to_string(),
        refusal,
    };
    everyone(node, session, &spec.participants, &abort, None).await;
}
/// Sends `request` to every participant, best effort (aborts and closes); `counters` counts
/// it as part of the operation's cost.
async fn everyone(
    node: &Arc<Node>,
    session: &str,
    participants: &[u16],
    request: &PeerRequest,
    counters: Option<&Counters>,
) {
    join_all(
        participants
            .iter()
            .map(|p| transport::call(node, *p, session, request, counters)),
    )
    .await;
}
