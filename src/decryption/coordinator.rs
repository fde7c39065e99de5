//! Coordinator-combine mode (DESIGN.md §6): ask t holders for partials of the whole batch at
//! once, verify every partial's DLEQ proof, replace any holder that fails, cheats or refuses a
//! valid item by another, then combine per ciphertext and open it. This node learns every
//! plaintext; end-to-end mode (`relay`) is the one where it learns none. A bad item never fails
//! the batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::web;
use api::Excluded;
use keyshares::decrypt::{
    check_ephemeral, combine_and_open, verify_partial, Ciphertext, PartialDecryption,
};
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::gather::{gather, holder_order, Check};
use super::{partials_context, scheme_of};
use crate::auth::ClientRequest;
use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::{ActiveKey, Node};
use crate::peer::messages::PartialOutcome;
use crate::peer::{PeerRequest, PeerResponse};

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
    let scheme = scheme_of(active.record.algorithm).ok_or("not a decryption key")?;
    if let Some(reason) = refused_valid_item(scheme, &outcomes, ephemerals) {
        return Err(reason);
    }
    if from == node.id() {
        return Ok(outcomes);
    }
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

/// An error answered for an ephemeral point this node accepts itself is censorship, not a
/// verdict on the ciphertext: every honest holder checks points the same way.
fn refused_valid_item(
    scheme: keyshares::decrypt::Scheme,
    outcomes: &[PartialOutcome],
    ephemerals: &[Vec<u8>],
) -> Option<String> {
    outcomes
        .iter()
        .zip(ephemerals)
        .enumerate()
        .find_map(|(i, (outcome, e))| match outcome {
            PartialOutcome::Error(message) if check_ephemeral(scheme, e).is_ok() => Some(format!(
                "refused partial {i}, whose ephemeral point is valid: {message}"
            )),
            _ => None,
        })
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

/// Decrypts the batch of the client's signed `request` (coordinator-combine mode); `items`
/// holds each of its ciphertexts or the reason it could not be parsed.
pub async fn decrypt(
    node: &Arc<Node>,
    key: &str,
    items: Vec<Result<Ciphertext, String>>,
    exclude: &[u16],
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
    // Items that cannot even name a valid-looking ephemeral point fail alone, without a request.
    let (positions, ephemerals) = super::wire::ephemerals(scheme, &items);
    let t = usize::from(active.record.threshold);
    let mut good = BTreeMap::new();
    let mut excluded = Vec::new();
    let mut cost = Cost::default();
    if !ephemerals.is_empty() {
        let session = crate::random_id();
        let check: Check<Vec<PartialOutcome>> = {
            let (node, active, session) = (node.clone(), active.clone(), session.clone());
            Arc::new(move |p, answer| {
                check_answer(&node, &active, &session, p, answer, &ephemerals)
            })
        };
        let request = PeerRequest::DecryptPartial {
            key: key.to_string(),
            key_session: active.record.session.clone(),
            request: request.clone(),
        };
        let order = holder_order(&active.record.participants, exclude);
        let gathered = gather(node, &session, request, order, t, t, check).await?;
        (good, excluded, cost) = (gathered.good, gathered.excluded, gathered.cost);
    }
    let contributors = good.keys().copied().collect();
    let algorithm = active.record.algorithm;
    let group_key = active.public.group_key();
    let results = web::block(move || combine_all(algorithm, &group_key, &items, &positions, &good))
        .await
        .map_err(|e| ApiError::internal(format!("combining partials: {e}")))?;
    Ok(Decrypted {
        results,
        contributors,
        excluded,
        cost,
    })
}
