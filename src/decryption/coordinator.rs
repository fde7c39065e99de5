//! Coordinating a threshold decryption: ask t participants (this node first) for partials of
//! the whole batch at once, verify every partial's DLEQ proof, replace any node that fails or
//! cheats by another, then combine per ciphertext and open it. A bad item never fails the batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use api::Excluded;
use keyshares::decrypt::{combine_and_open, verify_partial, Ciphertext, PartialDecryption};
use zeroize::Zeroizing;

use super::{partials_context, scheme_of};
use crate::ceremony::coordinator::Cost;
use crate::http::error::ApiError;
use crate::node::{ActiveKey, Counters, Node};
use crate::peer::messages::PartialOutcome;
use crate::peer::{transport, PeerRequest, PeerResponse};

pub type ItemResult = Result<Zeroizing<Vec<u8>>, String>;

pub struct Decrypted {
    pub results: Vec<ItemResult>,
    pub contributors: Vec<u16>,
    pub excluded: Vec<Excluded>,
    pub cost: Cost,
}

/// Opens and checks one node's answer: every partial must carry a valid proof against the
/// node's verifying share, or the node is to blame.
fn check_answer(
    node: &Node,
    active: &ActiveKey,
    session: &str,
    from: u16,
    answer: PeerResponse,
    ephemerals: &[Option<Vec<u8>>],
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
    let requested = ephemerals.iter().flatten().count();
    if outcomes.len() != requested {
        return Err(format!(
            "sent {} partials for {requested} ciphertexts",
            outcomes.len()
        ));
    }
    let scheme = scheme_of(active.record.algorithm).ok_or("not a decryption key")?;
    let share = active
        .public
        .verifying_shares()
        .remove(&from)
        .ok_or("has no verifying share for this key")?;
    for (i, (outcome, e)) in outcomes.iter().zip(ephemerals.iter().flatten()).enumerate() {
        if let PartialOutcome::Partial(p) = outcome {
            verify_partial(scheme, &share, e, p)
                .map_err(|err| format!("invalid partial decryption for item {i}: {err}"))?;
        }
    }
    Ok(outcomes)
}

/// Decrypts a batch; `items` holds each ciphertext or the reason it could not be parsed.
pub async fn decrypt(
    node: &Arc<Node>,
    key: &str,
    items: Vec<Result<Ciphertext, String>>,
) -> Result<Decrypted, ApiError> {
    let active = node
        .key(key)
        .ok_or_else(|| ApiError::not_found(format!("no key named {key}")))?;
    let Some(scheme) = scheme_of(active.record.algorithm) else {
        return Err(ApiError::bad_request(format!(
            "key {key} is a {} signing key; it cannot decrypt",
            active.record.algorithm
        )));
    };
    let started = Instant::now();
    let deadline = started + node.config.timeouts.operation();
    let counters = Counters::default();
    // Items that cannot even name a valid-looking ephemeral point fail here, alone.
    let ephemerals: Vec<Option<Vec<u8>>> = items
        .iter()
        .map(|item| match item {
            Ok(ct) if ct.scheme() == scheme => ct.ephemeral().ok().map(|e| e.to_vec()),
            _ => None,
        })
        .collect();
    let request_items: Vec<Vec<u8>> = ephemerals.iter().flatten().cloned().collect();
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
        ephemerals: request_items.clone(),
    };
    while !request_items.is_empty() && good.len() < t {
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
            let request = &request;
            let session = &session;
            let counters = &counters;
            async move {
                (
                    *p,
                    transport::call(node, *p, session, request, Some(counters)).await,
                )
            }
        }))
        .await;
        for (p, answer) in answers {
            let checked = answer
                .map_err(|e| e.to_string())
                .and_then(|a| check_answer(node, &active, &session, p, a, &ephemerals));
            match checked {
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
    let group_key = active.public.group_key();
    let mut position = 0;
    let mut results = Vec::with_capacity(items.len());
    for (item, ephemeral) in items.iter().zip(&ephemerals) {
        let result = match (item, ephemeral) {
            (Err(e), _) => Err(e.clone()),
            (Ok(ct), None) if ct.scheme() != scheme => {
                Err(format!("not a {} ciphertext", active.record.algorithm))
            }
            (Ok(ct), None) => Err(ct
                .ephemeral()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "invalid ciphertext".into())),
            (Ok(ct), Some(_)) => {
                let mut partials: BTreeMap<u16, PartialDecryption> = BTreeMap::new();
                let mut refusal = None;
                for (p, outcomes) in &good {
                    match &outcomes[position] {
                        PartialOutcome::Partial(d) => {
                            partials.insert(*p, d.clone());
                        }
                        PartialOutcome::Error(e) => refusal = Some(e.clone()),
                    }
                }
                position += 1;
                match refusal {
                    Some(e) => Err(e),
                    None => combine_and_open(&group_key, &partials, ct).map_err(|e| e.to_string()),
                }
            }
        };
        results.push(result);
    }
    let cost = Cost::measured(rounds, &counters, started);
    Ok(Decrypted {
        results,
        contributors: good.keys().copied().collect(),
        excluded,
        cost,
    })
}
