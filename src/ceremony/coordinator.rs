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
use crate::error::ApiError;
use crate::node::{Counters, Node};
use crate::peer::messages::CeremonyPurpose;
use crate::peer::{CeremonySpec, Envelope, PeerErrorCode, PeerRequest, PeerResponse};
use crate::state::generation::{self, GenerationCertificate, Refusal};
use crate::store::KeyRecord;
use crate::transport;
use crate::transport::CallError;

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
    /// The whole ceremony ran out of time (each peer call has its own, shorter deadline).
    TimedOut(String),
    Conflict(String),
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
            Failure::Conflict(m) => ApiError::conflict(m),
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
pub(crate) async fn phase(
    node: &Arc<Node>,
    session: &str,
    participants: &[u16],
    counters: &Counters,
    mut request_for: impl FnMut(u16) -> PeerRequest,
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
    // Failures this node saw itself (no answer, invalid answer) are facts; blame reported by
    // participants is weighed: the nodes accused by the most distinct reporters are named, so
    // a cheater's counter-accusation cannot outvote the honest majority that caught it.
    let mut witnessed = Vec::new();
    let mut accusations: BTreeMap<u16, Vec<(u16, String)>> = BTreeMap::new();
    let mut unavailable = false;
    for (p, result) in join_all(calls).await {
        match result {
            Ok(PeerResponse::Error {
                code,
                message,
                culprit,
            }) => match code {
                PeerErrorCode::Conflict => return Err(Failure::Conflict(message)),
                PeerErrorCode::Invalid if culprit.is_none() => {
                    return Err(Failure::Invalid(format!("node {p}: {message}")))
                }
                _ => accusations
                    .entry(culprit.unwrap_or(p))
                    .or_default()
                    .push((p, message)),
            },
            Ok(answer) => {
                answers.insert(p, answer);
            }
            Err(e) => {
                unavailable |= matches!(e, CallError::Unreachable(_) | CallError::Timeout);
                witnessed.push(Excluded {
                    node: p,
                    reason: e.to_string(),
                });
            }
        }
    }
    let most = accusations.values().map(Vec::len).max().unwrap_or(0);
    let mut culprits = witnessed;
    for (accused, reports) in accusations.into_iter().filter(|(_, r)| r.len() == most) {
        let reporters: Vec<String> = reports.iter().map(|(r, _)| r.to_string()).collect();
        culprits.push(Excluded {
            node: accused,
            reason: format!(
                "reported by node(s) {}: {}",
                reporters.join(", "),
                reports[0].1
            ),
        });
    }
    if culprits.is_empty() {
        Ok(answers)
    } else {
        culprits.sort_by_key(|c| c.node);
        culprits.dedup_by_key(|c| c.node);
        Err(Failure::Blame {
            culprits,
            unavailable,
        })
    }
}

/// Checks that every participant answered with one envelope for each other participant, and
/// sorts the envelopes by recipient.
fn route(
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
    let answers = phase(node, session, ps, counters, |_| PeerRequest::DkgStart {
        spec: spec.clone(),
        request: request.clone(),
    })
    .await?;
    let mut routed = route(answers, ps)?;
    let answers = phase(node, session, ps, counters, |p| PeerRequest::DkgRound1 {
        incoming: routed.remove(&p).unwrap_or_default(),
    })
    .await?;
    let mut routed = route(answers, ps)?;
    let answers = phase(node, session, ps, counters, |p| PeerRequest::DkgEcho {
        incoming: routed.remove(&p).unwrap_or_default(),
    })
    .await?;
    let mut routed = route(answers, ps)?;
    let answers = phase(node, session, ps, counters, |p| PeerRequest::DkgRound2 {
        incoming: routed.remove(&p).unwrap_or_default(),
    })
    .await?;
    certify(node, spec, session, answers)
}

/// A ceremony every member confirmed: the new public key package and the certificate.
struct Confirmed {
    public_keys: String,
    certificate: GenerationCertificate,
}

/// Builds the certificate from every member's confirmation (DESIGN.md §11). Each member
/// sealed its result before it signed; the statement it signed must be the one this node
/// computes from the spec and the public keys it reports, so a member that computed another
/// key, or signed something else, is named.
fn certify(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    answers: BTreeMap<u16, PeerResponse>,
) -> Result<Confirmed, Failure> {
    let mut signatures = BTreeMap::new();
    let mut reported: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut statements = BTreeMap::new();
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
        let expected = super::statement_of(spec, &super::record_of(spec, &public_keys, session));
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
    // Members that computed different keys: those outside the largest agreeing group are
    // named (DESIGN.md §4.5).
    let (public_keys, agreeing) = reported
        .iter()
        .max_by_key(|(_, nodes)| nodes.len())
        .map(|(k, nodes)| (k.clone(), nodes.clone()))
        .ok_or_else(|| Failure::Invalid("no confirmation to read the key from".into()))?;
    if agreeing.len() != spec.participants.len() {
        let culprits = spec
            .participants
            .iter()
            .filter(|p| !agreeing.contains(p))
            .map(|p| Excluded {
                node: *p,
                reason: format!("confirmed a different key than nodes {agreeing:?}"),
            })
            .collect();
        return Err(Failure::Blame {
            culprits,
            unavailable: false,
        });
    }
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
    let session = crate::random_id();
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
            .commit_coordinated(&confirmed.certificate)
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
    let refusal = match node.store.refuse(&spec.name, session) {
        Ok(()) => Some(Refusal::sign(&node.identity, &spec.name, session)),
        Err(e) => {
            tracing::error!(session, error = %e, "recording the refusal of an aborted ceremony failed");
            None
        }
    };
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
