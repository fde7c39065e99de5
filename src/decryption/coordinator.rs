//! Coordinator-combine mode (DESIGN.md §6): ask t holders for partials of the whole batch at
//! once, verify every partial's DLEQ proof, replace any holder that fails, cheats or refuses a
//! valid item by another, then combine per ciphertext and open it. This node learns every
//! plaintext; end-to-end mode (`relay`) is the one where it learns none. A bad item never fails
//! the batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::web;
use api::Excluded;
use keyshares::decrypt::prepared::{
    CheckedPartial, Coefficients, Combiner, Ephemeral, VerifyingShare,
};
use keyshares::decrypt::{Ciphertext, Scheme};
use rayon::prelude::*;
use std::sync::OnceLock;
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

/// Fewest proofs checked in one batch: below that, splitting over cores costs more than the
/// multiscalar multiplication saves.
const MIN_BATCH: usize = 16;

/// One holder's answer for one item, once checked.
pub enum Checked {
    /// Its partial, proof verified (or computed by this node), decoded for combining.
    Partial(CheckedPartial),
    /// It refused the item, whose ephemeral point every honest holder refuses too.
    Refused(String),
}

/// What every holder's answer is checked against, prepared once per request: each ephemeral
/// point validated once (not once per holder) and the key's verifying shares decoded once.
pub struct Prepared {
    scheme: Scheme,
    /// Each item's ephemeral point as sent to the holders, or why every honest holder refuses it.
    ephemerals: super::lifted::Points,
    shares: BTreeMap<u16, Result<VerifyingShare, String>>,
}

impl Prepared {
    /// Takes the points this node's own holder validated for `session`, or validates them on
    /// all cores.
    pub fn new(
        node: &Node,
        session: &str,
        scheme: Scheme,
        active: &ActiveKey,
        ephemerals: &[Vec<u8>],
    ) -> Prepared {
        let ephemerals = match super::lifted::take(node, session) {
            Some(points) if points.len() == ephemerals.len() => points,
            _ => Arc::new(
                ephemerals
                    .par_iter()
                    .map(|e| Ephemeral::parse(scheme, e).map_err(|err| err.to_string()))
                    .collect(),
            ),
        };
        let shares = active
            .public
            .verifying_shares()
            .into_iter()
            .map(|(p, bytes)| {
                let share = VerifyingShare::decode(scheme, &bytes).map_err(|e| e.to_string());
                (p, share)
            })
            .collect();
        Prepared {
            scheme,
            ephemerals,
            shares,
        }
    }
}

/// Opens and checks one node's answer: every partial must carry a valid proof against the
/// node's verifying share, or the node is to blame. Proofs are checked on all cores. This
/// node's own partials are not: it computed them itself, and a proof only convinces others.
fn check_answer(
    node: &Node,
    prepared: &Prepared,
    session: &str,
    from: u16,
    answer: PeerResponse,
) -> Result<Vec<Checked>, String> {
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
    if outcomes.len() != prepared.ephemerals.len() {
        return Err(format!(
            "sent {} partials for {} ciphertexts",
            outcomes.len(),
            prepared.ephemerals.len()
        ));
    }
    if let Some(reason) = refused_valid_item(&outcomes, &prepared.ephemerals) {
        return Err(reason);
    }
    let own = from == node.id();
    let share = match prepared.shares.get(&from) {
        _ if own => None,
        Some(Ok(share)) => Some(share),
        Some(Err(e)) => return Err(format!("its verifying share is invalid: {e}")),
        None => return Err("has no verifying share for this key".into()),
    };
    let scheme = prepared.scheme;
    let Some(share) = share else {
        return outcomes
            .into_par_iter()
            .enumerate()
            .map(|(i, outcome)| match outcome {
                PartialOutcome::Error(message) => Ok(Checked::Refused(message)),
                PartialOutcome::Partial(p) => CheckedPartial::own(scheme, &p)
                    .map(Checked::Partial)
                    .map_err(|err| format!("invalid partial decryption for item {i}: {err}")),
            })
            .collect();
    };
    // Every proof checked, a batch at a time (one multiscalar multiplication each, DESIGN.md
    // §6), the batches on all cores.
    let mut to_check = Vec::new();
    for (i, (outcome, e)) in outcomes.iter().zip(prepared.ephemerals.iter()).enumerate() {
        match (outcome, e) {
            (PartialOutcome::Partial(p), Ok(e)) => to_check.push((i, (e, p))),
            // A partial of a point every honest holder refuses.
            (PartialOutcome::Partial(_), Err(why)) => {
                return Err(format!("invalid partial decryption for item {i}: {why}"))
            }
            (PartialOutcome::Error(_), _) => {}
        }
    }
    let per_batch = to_check
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(MIN_BATCH);
    let verified: Vec<(usize, Result<CheckedPartial, String>)> = to_check
        .par_chunks(per_batch)
        .flat_map_iter(|chunk| {
            let items: Vec<_> = chunk.iter().map(|(_, item)| *item).collect();
            let results = CheckedPartial::verify_many(share, &items, &mut rand::rngs::OsRng);
            chunk
                .iter()
                .map(|(i, _)| *i)
                .zip(results.into_iter().map(|r| r.map_err(|e| e.to_string())))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut checked: Vec<Option<Checked>> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            PartialOutcome::Error(message) => Some(Checked::Refused(message)),
            PartialOutcome::Partial(_) => None,
        })
        .collect();
    for (i, result) in verified {
        match result {
            Ok(partial) => checked[i] = Some(Checked::Partial(partial)),
            Err(err) => return Err(format!("invalid partial decryption for item {i}: {err}")),
        }
    }
    checked
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or_else(|| format!("item {i} was not checked")))
        .collect()
}

/// An error answered for an ephemeral point this node accepts itself is censorship, not a
/// verdict on the ciphertext: every honest holder checks points the same way.
fn refused_valid_item(
    outcomes: &[PartialOutcome],
    ephemerals: &[Result<Ephemeral, String>],
) -> Option<String> {
    outcomes
        .iter()
        .zip(ephemerals)
        .enumerate()
        .find_map(|(i, (outcome, e))| match outcome {
            PartialOutcome::Error(message) if e.is_ok() => Some(format!(
                "refused partial {i}, whose ephemeral point is valid: {message}"
            )),
            _ => None,
        })
}

/// Combines the partials of every item and opens it, on all cores: the group key decoded and
/// the holders' Lagrange coefficients computed once for the batch.
fn combine_all(
    scheme: Scheme,
    group_key: &[u8],
    items: &[Result<Ciphertext, String>],
    positions: &[Option<usize>],
    good: &BTreeMap<u16, Vec<Checked>>,
) -> Vec<ItemResult> {
    let ids: Vec<u16> = good.keys().copied().collect();
    let prepared = Combiner::new(scheme, group_key)
        .and_then(|c| Ok((c, Coefficients::new(scheme, &ids)?)))
        .map_err(|e| e.to_string());
    items
        .par_iter()
        .zip(positions.par_iter())
        .map(|(item, position)| {
            let ct = item.as_ref().map_err(Clone::clone)?;
            let Some(position) = *position else {
                return Err(match ct.ephemeral() {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("not a {} ciphertext", scheme.as_str()),
                });
            };
            let (combiner, coefficients) = prepared.as_ref().map_err(Clone::clone)?;
            let mut partials = Vec::with_capacity(good.len());
            for checked in good.values() {
                match &checked[position] {
                    Checked::Partial(d) => partials.push(d),
                    // Every honest node refuses the same invalid ephemeral point.
                    Checked::Refused(e) => return Err(e.clone()),
                }
            }
            combiner
                .open(coefficients, &partials, ct)
                .map_err(|e| e.to_string())
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
        // Prepared by the first answer's check (on the blocking pool), not before the requests
        // go out.
        let prepared: Arc<OnceLock<Prepared>> = Arc::default();
        let check: Check<Vec<Checked>> = {
            let (node, active, session) = (node.clone(), active.clone(), session.clone());
            Arc::new(move |p, answer| {
                let prepared = prepared
                    .get_or_init(|| Prepared::new(&node, &session, scheme, &active, &ephemerals));
                check_answer(&node, prepared, &session, p, answer)
            })
        };
        let request = PeerRequest::DecryptPartial {
            key: key.to_string(),
            key_session: active.record.session.clone(),
            request: request.clone(),
        };
        // This node first when it holds a share: its partials need no proof and no network.
        let mut order = holder_order(&active.record.participants, exclude);
        if let Some(me) = order.iter().position(|p| *p == node.id()) {
            let me = order.remove(me);
            order.insert(0, me);
        }
        let gathered = gather(node, &session, request, order, t, t, check).await?;
        (good, excluded, cost) = (gathered.good, gathered.excluded, gathered.cost);
    }
    let contributors = good.keys().copied().collect();
    let group_key = active.public.group_key();
    let results = web::block(move || combine_all(scheme, &group_key, &items, &positions, &good))
        .await
        .map_err(|e| ApiError::internal(format!("combining partials: {e}")))?;
    Ok(Decrypted {
        results,
        contributors,
        excluded,
        cost,
    })
}
