//! Coordinating a repair: start every helper and the repaired node, relay the helpers'
//! summands among them, then their values to the repaired node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use api::{KeyPolicy, RepairRequest};

use crate::auth::ClientRequest;
use crate::blame::{Accusation, Relayed};
use crate::ceremony::coordinator::{blame, phase, Cost, Failure};
use crate::error::ApiError;
use crate::node::{Counters, Node};
use crate::peer::messages::RepairSpec;
use crate::peer::{Envelope, PeerErrorCode, PeerRequest, PeerResponse};
use crate::store::KeyRecord;
use crate::transport;

use super::kinds;

/// Peer round trips of a repair: start, summands, values.
const REPAIR_ROUNDS: u32 = 3;

/// The helpers of a repair of `target`: the ones asked for, or the first `threshold` other
/// participants.
fn helpers_for(
    record: &KeyRecord,
    target: u16,
    asked: Option<Vec<u16>>,
) -> Result<Vec<u16>, ApiError> {
    if !record.participants.contains(&target) {
        return Err(ApiError::bad_request(format!(
            "node {target} is not a participant of key {} (participants: {:?})",
            record.name, record.participants
        )));
    }
    let mut helpers = asked.unwrap_or_else(|| {
        record
            .participants
            .iter()
            .copied()
            .filter(|p| *p != target)
            .take(usize::from(record.threshold))
            .collect()
    });
    helpers.sort_unstable();
    if helpers.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::bad_request("helpers contain a duplicate id"));
    }
    if let Some(h) = helpers
        .iter()
        .find(|h| **h == target || !record.participants.contains(h))
    {
        return Err(ApiError::bad_request(format!(
            "node {h} cannot help: helpers are other participants of key {}",
            record.name
        )));
    }
    if helpers.len() < usize::from(record.threshold) {
        return Err(ApiError::bad_request(format!(
            "a repair needs at least {} helpers, got {}",
            record.threshold,
            helpers.len()
        )));
    }
    Ok(helpers)
}

/// Rebuilds the share of `request.node` for key `name`.
pub async fn repair(
    node: &Arc<Node>,
    name: &str,
    request: RepairRequest,
    client_request: &ClientRequest,
) -> Result<(KeyRecord, KeyPolicy, Cost), ApiError> {
    let (record, policy) = crate::ceremony::renewal::current(node, name)?;
    let helpers = helpers_for(&record, request.node, request.helpers)?;
    let spec = RepairSpec {
        record,
        policy,
        target: request.node,
        helpers,
        coordinator: node.id(),
    };
    let session = crate::random_id();
    let counters = Counters::default();
    let started = Instant::now();
    tracing::info!(key = name, target = spec.target, helpers = ?spec.helpers, session, "repair started");
    let outcome = tokio::time::timeout(
        node.config.timeouts.ceremony(),
        run_steps(node, &session, &spec, client_request, &counters),
    )
    .await
    .unwrap_or_else(|_| {
        Err(Failure::TimedOut(format!(
            "the repair did not finish within {} ms",
            node.config.timeouts.ceremony_ms
        ))
        .into_api(name))
    });
    outcome.inspect_err(|e| {
        tracing::warn!(key = name, session, culprits = ?e.body.culprits, "repair failed: {}", e.body.message);
    })?;
    let cost = Cost::measured(REPAIR_ROUNDS, &counters, node.id(), started);
    tracing::info!(
        key = name,
        target = spec.target,
        elapsed_ms = cost.elapsed_ms,
        "repair succeeded"
    );
    Ok((spec.record, spec.policy, cost))
}

async fn run_steps(
    node: &Arc<Node>,
    session: &str,
    spec: &RepairSpec,
    client_request: &ClientRequest,
    counters: &Counters,
) -> Result<(), ApiError> {
    let name = &spec.record.name;
    let failed = |f: Failure| f.into_api(name);
    let mut members = spec.helpers.clone();
    members.push(spec.target);
    // Every message relayed, signed by its origin: the evidence complaints are settled on.
    let relayed = parking_lot::Mutex::new(Relayed::default());
    let settle = |a: &Accusation| {
        let relayed = relayed.lock();
        super::blame::settle(node, spec, session, &relayed, a)
    };
    let answers = phase(
        node,
        session,
        &members,
        counters,
        |_| PeerRequest::RepairStart {
            spec: spec.clone(),
            request: client_request.clone(),
        },
        settle,
    )
    .await
    .map_err(failed)?;
    let mut summands: BTreeMap<u16, Vec<Envelope>> = BTreeMap::new();
    for (p, answer) in answers {
        match answer {
            PeerResponse::Ack if p == spec.target => {}
            PeerResponse::Outgoing { envelopes } if p != spec.target => {
                for env in envelopes {
                    if env.from != p || !spec.helpers.contains(&env.to) || env.to == p {
                        return Err(failed(blame(
                            p,
                            "sent summands to nodes that do not help".into(),
                            false,
                        )));
                    }
                    summands.entry(env.to).or_default().push(env);
                }
            }
            _ => {
                return Err(failed(blame(
                    p,
                    "answered with an unexpected message".into(),
                    false,
                )))
            }
        }
    }
    relayed.lock().record(kinds::DELTA, &summands);
    let answers = phase(
        node,
        session,
        &spec.helpers,
        counters,
        |p| PeerRequest::RepairDeltas {
            incoming: summands.remove(&p).unwrap_or_default(),
        },
        settle,
    )
    .await
    .map_err(failed)?;
    let mut values = Vec::new();
    for (p, answer) in answers {
        match answer {
            PeerResponse::Outgoing { envelopes }
                if envelopes.len() == 1
                    && envelopes[0].from == p
                    && envelopes[0].to == spec.target =>
            {
                values.extend(envelopes)
            }
            _ => {
                return Err(failed(blame(
                    p,
                    "did not send one value for the repaired node".into(),
                    false,
                )))
            }
        }
    }
    // The last step is not `phase`: a failure the repaired node reports without naming a
    // helper is its own (it could not store the share), never a client's mistake.
    relayed.lock().record(
        kinds::VALUE,
        &BTreeMap::from([(spec.target, values.clone())]),
    );
    let last = PeerRequest::RepairValues { incoming: values };
    let target = spec.target;
    let accusation = |accused, message, complaint| Accusation {
        accuser: target,
        accused,
        message,
        complaint,
    };
    let settled = |a: Accusation| {
        Err(failed(Failure::Blame {
            culprits: settle(&a).into_excluded(),
            unavailable: false,
        }))
    };
    match transport::call(node, target, session, &last, Some(counters)).await {
        Ok(PeerResponse::Ack) => Ok(()),
        Ok(PeerResponse::Error {
            code: PeerErrorCode::Conflict,
            message,
            ..
        }) => {
            let culprits = vec![api::Excluded {
                node: target,
                reason: message.clone(),
            }];
            Err(failed(Failure::Conflict(message, culprits)))
        }
        Ok(PeerResponse::Error {
            message, culprit, ..
        }) => settled(accusation(culprit.unwrap_or(target), message, None)),
        Ok(PeerResponse::Complaint {
            accused,
            message,
            complaint,
        }) => settled(accusation(accused, message, Some(complaint))),
        Ok(_) => Err(failed(blame(
            target,
            "answered with an unexpected message".into(),
            false,
        ))),
        Err(e) => Err(failed(blame(
            target,
            e.to_string(),
            matches!(
                e,
                crate::transport::CallError::Unreachable(_) | crate::transport::CallError::Timeout
            ),
        ))),
    }
}
