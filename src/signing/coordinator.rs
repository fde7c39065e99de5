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
use keyshares::sign::{self, AggregateError};

use crate::auth::ClientRequest;
use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::{ActiveKey, Counters, Node};
use crate::peer::{PeerRequest, PeerResponse};
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
    let mut packages = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let commitments: BTreeMap<u16, Vec<u8>> =
            chosen.iter().map(|(p, c)| (*p, c[i].clone())).collect();
        match sign::signing_package(curve, &commitments, message) {
            Ok(p) => packages.push(p),
            Err(e) => {
                exclude(excluded, e.culprit_id().unwrap_or(node.id()), e.to_string());
                return None;
            }
        }
    }
    let request = PeerRequest::SignShare {
        packages: packages.clone(),
    };
    let signers: Vec<u16> = chosen.keys().copied().collect();
    let answers = futures::future::join_all(signers.iter().map(|p| {
        let request = &request;
        let session = &session;
        async move {
            (
                *p,
                transport::call(node, *p, session, request, Some(counters)).await,
            )
        }
    }))
    .await;
    let mut shares: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    for (p, result) in answers {
        match result {
            Ok(PeerResponse::Shares { shares: s }) if s.len() == messages.len() => {
                shares.insert(p, s);
            }
            Ok(other) => exclude(excluded, p, answer_error(other)),
            Err(e) => exclude(excluded, p, e.to_string()),
        }
    }
    if shares.len() < t {
        return None;
    }
    let mut signatures = Vec::with_capacity(messages.len());
    for (i, package) in packages.iter().enumerate() {
        let item: BTreeMap<u16, Vec<u8>> = shares.iter().map(|(p, s)| (*p, s[i].clone())).collect();
        match sign::aggregate(&active.public, package, &item) {
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
    Some((signatures, signers))
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
