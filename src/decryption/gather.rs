//! Asking holders for their partials until enough answered well (DESIGN.md §6: "invalid
//! partials are dropped, the node is named, and another node is asked"). The holder order
//! starts at a random offset per request, so no single slow or hostile holder is asked first
//! every time; holders the requester excluded are never asked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::web;
use api::Excluded;

use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::{Counters, Node};
use crate::peer::{PeerRequest, PeerResponse};
use crate::transport;

/// Judges one holder's answer: its usable content, or why the holder is to blame.
pub type Check<T> = Arc<dyn Fn(u16, PeerResponse) -> Result<T, String> + Send + Sync>;

pub struct Gathered<T> {
    pub good: BTreeMap<u16, T>,
    pub excluded: Vec<Excluded>,
    pub cost: Cost,
}

/// The key's holders minus `exclude`, in order from a random starting point.
pub fn holder_order(participants: &[u16], exclude: &[u16]) -> Vec<u16> {
    let mut holders: Vec<u16> = participants
        .iter()
        .copied()
        .filter(|p| !exclude.contains(p))
        .collect();
    holders.sort_unstable();
    if !holders.is_empty() {
        let offset = rand::random::<usize>() % holders.len();
        holders.rotate_left(offset);
    }
    holders
}

/// Asks holders in `order` for `request` until `wanted` answered well or none are left;
/// fails when fewer than `needed` did.
pub async fn gather<T: Send + 'static>(
    node: &Arc<Node>,
    session: &str,
    request: PeerRequest,
    order: Vec<u16>,
    needed: usize,
    wanted: usize,
    check: Check<T>,
) -> Result<Gathered<T>, ApiError> {
    let started = Instant::now();
    let deadline = started + node.config.timeouts.operation();
    let counters = Counters::default();
    let wanted = wanted.max(needed);
    let mut candidates = order.into_iter();
    let mut good: BTreeMap<u16, T> = BTreeMap::new();
    let mut excluded = Vec::new();
    let mut rounds = 0;
    while good.len() < wanted {
        let ask: Vec<u16> = candidates.by_ref().take(wanted - good.len()).collect();
        if ask.is_empty() || Instant::now() >= deadline {
            break;
        }
        rounds += 1;
        let answers = futures::future::join_all(ask.iter().map(|p| {
            let (request, counters) = (&request, &counters);
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
                crate::ceremony::reconcile::settle_if_other_generation(node, answer);
            }
        }
        let check = check.clone();
        let checked = web::block(move || {
            answers
                .into_iter()
                .map(|(p, answer)| {
                    (
                        p,
                        answer.map_err(|e| e.to_string()).and_then(|a| check(p, a)),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ApiError::internal(format!("checking partials: {e}")))?;
        for (p, result) in checked {
            match result {
                Ok(content) => {
                    good.insert(p, content);
                }
                Err(reason) => {
                    tracing::warn!(node = p, reason = %reason, "decryption participant excluded");
                    excluded.push(Excluded { node: p, reason });
                }
            }
        }
    }
    if good.len() < needed {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "quorum_unavailable",
            format!(
                "only {} of the {needed} nodes needed gave valid partial decryptions",
                good.len()
            ),
        )
        .with_culprits(excluded));
    }
    let cost = Cost::measured(rounds, &counters, node.id(), started);
    Ok(Gathered {
        good,
        excluded,
        cost,
    })
}
