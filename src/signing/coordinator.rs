//! Coordinating a FROST signature: pick t signers among those that answer, run the two rounds
//! for the whole batch at once, and retry without any signer that timed out, refused, or sent an
//! invalid share (a simple ROAST-like loop, DESIGN.md §5). Every exclusion is reported.
//!
//! Deadlines: each peer request has `timeouts.peer_ms`; the whole request, retries included,
//! `timeouts.operation_ms`. Round 1 goes to every candidate and proceeds with the first t that
//! answer, so a slow signer never delays a signature while t others are quick.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use api::{Excluded, Purpose};
use futures::stream::{FuturesUnordered, StreamExt};
use keyshares::sign::{self, AggregateError, Commitment, Package};

use crate::auth::ClientRequest;
use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::{ActiveKey, Counters, Node};
use crate::peer::{PeerRequest, PeerResponse, SignerCommitments};
use crate::store::curve_of;
use crate::transport;

pub struct Signed {
    pub signatures: Vec<Vec<u8>>,
    pub signers: Vec<u16>,
    pub excluded: Vec<Excluded>,
    pub cost: Cost,
}

fn exclude(excluded: &mut Vec<Excluded>, node: u16, reason: impl Into<String>) {
    let reason = reason.into();
    tracing::warn!(node, reason = %reason, "signer excluded");
    excluded.push(Excluded { node, reason });
}

fn answer_error(answer: PeerResponse) -> String {
    match answer {
        PeerResponse::Error { message, .. } => message,
        _ => "answered with an unexpected message".into(),
    }
}

/// What round 1 asks for: `messages` commitments each from `t` signers.
struct Round1<'a> {
    session: &'a str,
    request: &'a PeerRequest,
    t: usize,
    messages: usize,
}

/// Round 1: asks every candidate for commitments and returns the first t complete answers.
async fn collect_commitments(
    node: &Arc<Node>,
    round: Round1<'_>,
    candidates: &[u16],
    counters: &Counters,
    excluded: &mut Vec<Excluded>,
) -> BTreeMap<u16, Vec<Vec<u8>>> {
    let Round1 {
        session,
        request,
        t,
        messages: expected,
    } = round;
    let mut pending: FuturesUnordered<_> = candidates
        .iter()
        .map(|p| async move {
            (
                *p,
                transport::call(node, *p, session, request, Some(counters)).await,
            )
        })
        .collect();
    let mut chosen = BTreeMap::new();
    while let Some((p, result)) = pending.next().await {
        match result {
            Ok(PeerResponse::Commitments { commitments }) if commitments.len() == expected => {
                chosen.insert(p, commitments);
                if chosen.len() == t {
                    break;
                }
            }
            Ok(other) => {
                crate::admin::catch_up_if_stale(node, p, &other);
                crate::ceremony::reconcile::settle_if_other_generation(node, &other);
                exclude(excluded, p, answer_error(other))
            }
            Err(e) => exclude(excluded, p, e.to_string()),
        }
    }
    chosen
}

async fn attempt(
    node: &Arc<Node>,
    active: &ActiveKey,
    messages: &[Vec<u8>],
    request: &ClientRequest,
    excluded: &mut Vec<Excluded>,
    counters: &Counters,
) -> Option<(Vec<Vec<u8>>, Vec<u16>)> {
    let record = &active.record;
    let curve = curve_of(record.algorithm);
    let t = usize::from(record.threshold);
    // This node first: its own answer needs no network.
    let mut candidates: Vec<u16> = record
        .participants
        .iter()
        .copied()
        .filter(|p| excluded.iter().all(|e| e.node != *p))
        .collect();
    candidates.sort_by_key(|p| (*p != node.id(), *p));
    let session = crate::random_id();
    let commit = PeerRequest::SignCommit {
        key: record.name.clone(),
        key_session: record.session.clone(),
        request: request.clone(),
    };
    let round = Round1 {
        session: &session,
        request: &commit,
        t,
        messages: messages.len(),
    };
    let chosen = collect_commitments(node, round, &candidates, counters, excluded).await;
    if chosen.len() < t {
        return None;
    }
    let own = chosen
        .contains_key(&node.id())
        .then(|| super::participant::session_commitments(node, &session))
        .flatten();
    let packages = packages_for(node, curve, &chosen, messages, own, excluded)?;
    super::packages::remember(node, &session, &packages);
    let signers: Vec<u16> = chosen.keys().copied().collect();
    let round2 = PeerRequest::SignShare {
        signers: signer_commitments(&chosen),
    };
    let request_for = |_: u16| round2.clone();
    let shares = collect_shares(
        node,
        &session,
        &signers,
        request_for,
        messages.len(),
        counters,
        excluded,
    )
    .await;
    let signed = aggregate_all(node, active, &packages, shares, excluded);
    super::packages::forget(node, &session);
    signed.map(|s| (s, signers))
}

/// One FROST signing package per message, from each chosen signer's commitment to it, kept
/// parsed for this node's own signer and the aggregation. `own` is this node's own
/// commitments as it made them, when it is one of the signers: they are not parsed again.
fn packages_for(
    node: &Node,
    curve: keyshares::Curve,
    chosen: &BTreeMap<u16, Vec<Vec<u8>>>,
    messages: &[Vec<u8>],
    own: Option<Vec<Commitment>>,
    excluded: &mut Vec<Excluded>,
) -> Option<Arc<Vec<Package>>> {
    let mut packages = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let commitments: BTreeMap<u16, Vec<u8>> =
            chosen.iter().map(|(p, c)| (*p, c[i].clone())).collect();
        let mine = own.as_ref().and_then(|o| o.get(i)).map(|c| (node.id(), c));
        match sign::build_package(curve, &commitments, message, mine) {
            Ok(p) => packages.push(p),
            Err(e) => {
                exclude(excluded, e.culprit_id().unwrap_or(node.id()), e.to_string());
                return None;
            }
        }
    }
    Some(Arc::new(packages))
}

/// The chosen signers' commitments as the signers receive them.
fn signer_commitments(chosen: &BTreeMap<u16, Vec<Vec<u8>>>) -> Vec<SignerCommitments> {
    chosen
        .iter()
        .map(|(signer, commitments)| SignerCommitments {
            signer: *signer,
            commitments: commitments.clone(),
        })
        .collect()
}

/// Asks every signer for its signature shares (`request_for` it) and keeps the complete
/// answers; the others are excluded.
async fn collect_shares(
    node: &Arc<Node>,
    session: &str,
    signers: &[u16],
    request_for: impl Fn(u16) -> PeerRequest,
    messages: usize,
    counters: &Counters,
    excluded: &mut Vec<Excluded>,
) -> BTreeMap<u16, Vec<Vec<u8>>> {
    let answers = futures::future::join_all(signers.iter().map(|p| {
        let request = request_for(*p);
        async move {
            (
                *p,
                transport::call(node, *p, session, &request, Some(counters)).await,
            )
        }
    }))
    .await;
    let mut shares: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    for (p, result) in answers {
        match result {
            Ok(PeerResponse::Shares { shares: s }) if s.len() == messages => {
                shares.insert(p, s);
            }
            Ok(other) => exclude(excluded, p, answer_error(other)),
            Err(e) => exclude(excluded, p, e.to_string()),
        }
    }
    shares
}

/// The group signature of each package from t signers' shares; a signer whose share does not
/// verify is excluded (and no signature is returned).
fn aggregate_all(
    node: &Node,
    active: &ActiveKey,
    packages: &[Package],
    shares: BTreeMap<u16, Vec<Vec<u8>>>,
    excluded: &mut Vec<Excluded>,
) -> Option<Vec<Vec<u8>>> {
    if shares.len() < usize::from(active.record.threshold) {
        return None;
    }
    let mut signatures = Vec::with_capacity(packages.len());
    for (i, package) in packages.iter().enumerate() {
        let item: BTreeMap<u16, Vec<u8>> = shares.iter().map(|(p, s)| (*p, s[i].clone())).collect();
        match sign::aggregate_package(&active.public, package, &item) {
            Ok(sig) => signatures.push(sig),
            Err(AggregateError::InvalidShares(culprits)) => {
                for c in culprits {
                    exclude(excluded, c, "sent an invalid signature share");
                }
                return None;
            }
            Err(AggregateError::Protocol(e)) => {
                exclude(excluded, e.culprit_id().unwrap_or(node.id()), e.to_string());
                return None;
            }
        }
    }
    Some(signatures)
}

/// One round trip, with commitments the signers made ahead of time (RFC 9591 §5.1), when t
/// signers' pools hold enough; `None` when they do not or a signer failed (it is excluded).
async fn attempt_preprocessed(
    node: &Arc<Node>,
    active: &ActiveKey,
    messages: &[Vec<u8>],
    request: &ClientRequest,
    excluded: &mut Vec<Excluded>,
    counters: &Counters,
) -> Option<(Vec<Vec<u8>>, Vec<u16>)> {
    let taken = super::pool::take(node, active, messages.len(), excluded)?;
    let record = &active.record;
    let chosen: BTreeMap<u16, Vec<Vec<u8>>> = taken
        .iter()
        .map(|(p, c)| (*p, c.iter().map(|(_, bytes)| bytes.clone()).collect()))
        .collect();
    let own = taken
        .get(&node.id())
        .map(|c| c.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
        .and_then(|ids| super::participant::presigned_commitments(node, &ids));
    let curve = curve_of(record.algorithm);
    let packages = packages_for(node, curve, &chosen, messages, own, excluded)?;
    let session = crate::random_id();
    super::packages::remember(node, &session, &packages);
    let signers: Vec<u16> = taken.keys().copied().collect();
    let all = signer_commitments(&chosen);
    let request_for = |p: u16| PeerRequest::SignPresigned {
        key: record.name.clone(),
        key_session: record.session.clone(),
        request: request.clone(),
        commitment_ids: taken[&p].iter().map(|(id, _)| id.clone()).collect(),
        signers: all.clone(),
    };
    let mut failed = Vec::new();
    let shares = collect_shares(
        node,
        &session,
        &signers,
        request_for,
        messages.len(),
        counters,
        &mut failed,
    )
    .await;
    // A signer that lost its commitments (it restarted) is not to blame: its pool goes, and
    // two-round signing asks it again.
    for f in failed {
        if f.reason.contains(super::participant::UNKNOWN_COMMITMENT) {
            super::pool::forget(node, active, f.node);
        } else {
            excluded.push(f);
        }
    }
    let signed = aggregate_all(node, active, &packages, shares, excluded);
    super::packages::forget(node, &session);
    signed.map(|s| (s, signers))
}

/// Signs every message of the client's signed `request` with the key, one FROST session
/// each, in one pair of rounds. `messages` are the ones the request's body names.
pub async fn sign_messages(
    node: &Arc<Node>,
    key: &str,
    messages: Vec<Vec<u8>>,
    request: &ClientRequest,
) -> Result<Signed, ApiError> {
    let active = node
        .key(key)
        .ok_or_else(|| crate::keyview::no_share(node, key))?;
    if active.record.algorithm.purpose() != Purpose::Sign {
        return Err(ApiError::bad_request(format!(
            "key {key} is a {} decryption key; it cannot sign",
            active.record.algorithm
        )));
    }
    let started = Instant::now();
    let deadline = started + node.config.timeouts.operation();
    let counters = Counters::default();
    let mut excluded = Vec::new();
    let mut rounds = 0;
    let t = usize::from(active.record.threshold);
    if let Ok(Some((signatures, signers))) = tokio::time::timeout(
        node.config.timeouts.operation(),
        attempt_preprocessed(node, &active, &messages, request, &mut excluded, &counters),
    )
    .await
    {
        super::pool::spawn_refill(node, &active);
        node.metrics.count_one_round_signature();
        let cost = Cost::measured(1, &counters, node.id(), started);
        return Ok(Signed {
            signatures,
            signers,
            excluded,
            cost,
        });
    }
    super::pool::spawn_refill(node, &active);
    // A round trip spent on a failed preprocessed attempt counts.
    if counters
        .peer_requests
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        rounds += 1;
    }
    loop {
        let healthy = active
            .record
            .participants
            .iter()
            .filter(|p| excluded.iter().all(|e: &Excluded| e.node != **p))
            .count();
        if healthy < t || Instant::now() >= deadline {
            let why = if healthy < t {
                format!("only {healthy} of the {t} signers needed are available")
            } else {
                format!(
                    "no signature within the {} ms deadline",
                    node.config.timeouts.operation_ms
                )
            };
            return Err(
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "quorum_unavailable", why)
                    .with_culprits(excluded),
            );
        }
        rounds += 2;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(
            remaining,
            attempt(node, &active, &messages, request, &mut excluded, &counters),
        )
        .await;
        if let Ok(Some((signatures, signers))) = outcome {
            let cost = Cost::measured(rounds, &counters, node.id(), started);
            return Ok(Signed {
                signatures,
                signers,
                excluded,
                cost,
            });
        }
    }
}
