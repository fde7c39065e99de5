//! Coordinating a threshold decryption: ask t participants (this node first) for partials of
//! the whole batch at once, verify every partial's DLEQ proof, replace any node that fails or
//! cheats by another, then combine per ciphertext and open it. A bad item never fails the batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::web;
use api::Excluded;
use keyshares::decrypt::{combine_and_open, verify_partial, Ciphertext, PartialDecryption};
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{partials_context, scheme_of};
use crate::auth::ClientRequest;
use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::{ActiveKey, Counters, Node};
use crate::peer::messages::PartialOutcome;
use crate::peer::{PeerRequest, PeerResponse};
use crate::transport;

pub type ItemResult = Result<Zeroizing<Vec<u8>>, String>;

pub struct Decrypted {
    pub results: Vec<ItemResult>,
    pub contributors: Vec<u16>,
    pub excluded: Vec<Excluded>,
    pub cost: Cost,
}

/// Opens and checks one node's answer: every partial must carry a valid proof against the
/// node's verifying share, or the node is to blame. Proofs are checked on all cores. This
/// node's own partials are not: it computed them itself, and a proof only convinces others.
fn check_answer(
    node: &Node,
    active: &ActiveKey,
    session: &str,
    from: u16,
    answer: PeerResponse,
    ephemerals: &[Vec<u8>],
) -> Result<Vec<PartialOutcome>, String> {
    let sealed = match answer {
        PeerResponse::Partials { sealed } => sealed,
        PeerResponse::Error { message, .. } => return Err(message),
        _ => return Err("answered with an unexpected message".into()),
    };
    let plain = keyshares::seal::open(
        node.identity.seal_secret(),
        &partials_context(session, from, node.id()),
        &sealed,
    )
    .map_err(|e| format!("sealed partials do not open: {e}"))?;
    let outcomes: Vec<PartialOutcome> =
        serde_json::from_slice(&plain).map_err(|e| format!("malformed partials: {e}"))?;
    if outcomes.len() != ephemerals.len() {
        return Err(format!(
            "sent {} partials for {} ciphertexts",
            outcomes.len(),
            ephemerals.len()
        ));
    }
    if from == node.id() {
        return Ok(outcomes);
    }
    let scheme = scheme_of(active.record.algorithm).ok_or("not a decryption key")?;
    let share = active
        .public
        .verifying_shares()
        .remove(&from)
        .ok_or("has no verifying share for this key")?;
    let invalid = outcomes
        .par_iter()
        .zip(ephemerals.par_iter())
        .enumerate()
        .find_map_first(|(i, (outcome, e))| match outcome {
            PartialOutcome::Partial(p) => verify_partial(scheme, &share, e, p)
                .err()
                .map(|err| format!("invalid partial decryption for item {i}: {err}")),
            PartialOutcome::Error(_) => None,
        });
    match invalid {
        Some(reason) => Err(reason),
        None => Ok(outcomes),
    }
}

/// Combines the partials of every item and opens it, on all cores.
fn combine_all(
    algorithm: api::Algorithm,
    group_key: &[u8],
    items: &[Result<Ciphertext, String>],
    positions: &[Option<usize>],
    good: &BTreeMap<u16, Vec<PartialOutcome>>,
) -> Vec<ItemResult> {
    items
        .par_iter()
        .zip(positions.par_iter())
        .map(|(item, position)| {
            let ct = item.as_ref().map_err(Clone::clone)?;
            let Some(position) = *position else {
                return Err(match ct.ephemeral() {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("not a {algorithm} ciphertext"),
                });
            };
            let mut partials: BTreeMap<u16, PartialDecryption> = BTreeMap::new();
            for (p, outcomes) in good {
                match &outcomes[position] {
                    PartialOutcome::Partial(d) => {
                        partials.insert(*p, d.clone());
                    }
                    // Every honest node refuses the same invalid ephemeral point.
                    PartialOutcome::Error(e) => return Err(e.clone()),
                }
            }
            combine_and_open(group_key, &partials, ct).map_err(|e| e.to_string())
        })
        .collect()
}

/// Decrypts the batch of the client's signed `request`; `items` holds each of its
/// ciphertexts or the reason it could not be parsed.
pub async fn decrypt(
    node: &Arc<Node>,
    key: &str,
    items: Vec<Result<Ciphertext, String>>,
    request: &ClientRequest,
) -> Result<Decrypted, ApiError> {
    let active = node
        .key(key)
        .ok_or_else(|| crate::keyview::no_share(node, key))?;
    let Some(scheme) = scheme_of(active.record.algorithm) else {
        return Err(ApiError::bad_request(format!(
            "key {key} is a {} signing key; it cannot decrypt",
            active.record.algorithm
        )));
    };
    let started = Instant::now();
    let deadline = started + node.config.timeouts.operation();
    let counters = Counters::default();
    // Items that cannot even name a valid-looking ephemeral point fail alone, without a request.
    let (positions, ephemerals) = super::wire::ephemerals(scheme, &items);
    let ephemerals = Arc::new(ephemerals);
    let t = usize::from(active.record.threshold);
    let mut candidates: Vec<u16> = active.record.participants.clone();
    candidates.sort_by_key(|p| (*p != node.id(), *p));
    let mut candidates = candidates.into_iter();
    let mut good: BTreeMap<u16, Vec<PartialOutcome>> = BTreeMap::new();
    let mut excluded = Vec::new();
    let mut rounds = 0;
    let session = crate::random_id();
    let request = PeerRequest::DecryptPartial {
        key: key.to_string(),
        key_session: active.record.session.clone(),
        request: request.clone(),
    };
    while !ephemerals.is_empty() && good.len() < t {
        let ask: Vec<u16> = candidates.by_ref().take(t - good.len()).collect();
        if ask.len() < t - good.len() || Instant::now() >= deadline {
            let available = good.len() + ask.len();
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "quorum_unavailable",
                format!("only {available} of the {t} nodes needed gave valid partial decryptions"),
            )
            .with_culprits(excluded));
        }
        rounds += 1;
        let answers = futures::future::join_all(ask.iter().map(|p| {
            let (request, session, counters) = (&request, &session, &counters);
            async move {
                (
                    *p,
                    transport::call(node, *p, session, request, Some(counters)).await,
                )
            }
        }))
        .await;
        for (p, answer) in &answers {
            if let Ok(answer) = answer {
                crate::admin::catch_up_if_stale(node, *p, answer);
            }
        }
        let checked = {
            let (node, active, session, ephemerals) = (
                node.clone(),
                active.clone(),
                session.clone(),
                ephemerals.clone(),
            );
            web::block(move || {
                answers
                    .into_iter()
                    .map(|(p, answer)| {
                        (
                            p,
                            answer.map_err(|e| e.to_string()).and_then(|a| {
                                check_answer(&node, &active, &session, p, a, &ephemerals)
                            }),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| ApiError::internal(format!("checking partials: {e}")))?
        };
        for (p, result) in checked {
            match result {
                Ok(outcomes) => {
                    good.insert(p, outcomes);
                }
                Err(reason) => {
                    tracing::warn!(node = p, reason = %reason, "decryption participant excluded");
                    excluded.push(Excluded { node: p, reason });
                }
            }
        }
    }
    let contributors = good.keys().copied().collect();
    let algorithm = active.record.algorithm;
    let group_key = active.public.group_key();
    let results = web::block(move || combine_all(algorithm, &group_key, &items, &positions, &good))
        .await
        .map_err(|e| ApiError::internal(format!("combining partials: {e}")))?;
    let cost = Cost::measured(rounds, &counters, node.id(), started);
    Ok(Decrypted {
        results,
        contributors,
        excluded,
        cost,
    })
}
