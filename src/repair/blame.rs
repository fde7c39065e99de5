//! Settling the complaints of a repair (DESIGN.md §11) on the messages the coordinator relayed:
//! the summands helpers sealed to each other, and the values they sealed to the repaired node
//! with the commitments they judged by.

use std::collections::BTreeMap;

use keyshares::repair::Repair;

use crate::blame::{message_key, Accusation, Complaint, Relayed, Verdict};
use crate::node::Node;
use crate::peer::messages::RepairSpec;
use crate::repair::{kinds, seal_context, HelperSummand, HelperValue};

/// Settles one accusation of repair `session`.
pub fn settle(
    node: &Node,
    spec: &RepairSpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
) -> Verdict {
    let Ok(public) = crate::repair::public_of(spec) else {
        return Verdict::unverifiable(a, "the key's public data is unreadable");
    };
    let repair = Repair {
        helpers: &spec.helpers,
        target: spec.target,
        public: &public,
    };
    match &a.complaint {
        None => crate::blame::bare(a),
        Some(Complaint::Sealed { message_key }) if a.accuser == spec.target => {
            value(node, spec, &repair, session, relayed, a, message_key)
        }
        Some(Complaint::Sealed { message_key }) => {
            summand(node, &repair, session, relayed, a, message_key)
        }
        Some(Complaint::Equivocation { echoer }) => {
            commitments(node, spec, session, relayed, a, *echoer)
        }
        Some(_) => Verdict::unverifiable(a, "a repair has no such step"),
    }
}

/// The summand `a.accused` sealed to helper `a.accuser`, opened with the revealed key.
fn summand(
    node: &Node,
    repair: &Repair,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
    hex_key: &str,
) -> Verdict {
    let (from, to) = (a.accused, a.accuser);
    let Some(message) = relayed
        .signed(node, session, kinds::DELTA, from, to)
        .and_then(|p| serde_json::from_slice::<HelperSummand>(&p).ok())
    else {
        return Verdict::unverifiable(a, "no signed summand between them was relayed");
    };
    let opened = opened(
        &message.sealed,
        hex_key,
        &seal_context("delta", session, from, to),
    );
    let Some(summand) = opened else {
        return Verdict::unverifiable(a, "the key revealed does not open the sealed summand");
    };
    let commitments = hex::decode(&message.commitments).unwrap_or_default();
    match repair.check_summand(from, to, &summand, &commitments) {
        Err(e) => Verdict::proven(
            a,
            format!("the summand it signed and sealed, revealed: {e}"),
        ),
        Ok(()) => Verdict::false_complaint(a, "the summand it sealed matches its commitment"),
    }
}

fn opened(sealed_b64: &str, hex_key: &str, context: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let blob = api::client::unb64(sealed_b64).ok()?;
    keyshares::seal::open_revealed(&message_key(hex_key)?, context, &blob).ok()
}

/// Every helper's signed value message to the repaired node.
fn values(
    node: &Node,
    spec: &RepairSpec,
    session: &str,
    relayed: &Relayed,
) -> Option<BTreeMap<u16, HelperValue>> {
    spec.helpers
        .iter()
        .map(|h| {
            let payload = relayed.signed(node, session, kinds::VALUE, *h, spec.target)?;
            Some((*h, serde_json::from_slice::<HelperValue>(&payload).ok()?))
        })
        .collect()
}

/// The value `a.accused` sealed to the repaired node, checked against the commitments every
/// helper signed for it.
fn value(
    node: &Node,
    spec: &RepairSpec,
    repair: &Repair,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
    hex_key: &str,
) -> Verdict {
    let Some(all) = values(node, spec, session, relayed) else {
        return Verdict::unverifiable(a, "not every helper's signed value was relayed");
    };
    let Some(mine) = all.get(&a.accused) else {
        return Verdict::unverifiable(a, "the accused is not a helper");
    };
    let context = seal_context("value", session, a.accused, a.accuser);
    let Some(value) = opened(&mine.sealed, hex_key, &context) else {
        return Verdict::unverifiable(a, "the key revealed does not open the sealed value");
    };
    let commitments: BTreeMap<u16, Vec<u8>> = all
        .iter()
        .map(|(h, v)| (*h, hex::decode(&v.commitments).unwrap_or_default()))
        .collect();
    match repair.check_value(a.accused, &value, &commitments) {
        Err(e) if e.culprit_id() == Some(a.accused) => {
            Verdict::proven(a, format!("the value it signed and sealed, revealed: {e}"))
        }
        Err(e) => Verdict::unverifiable(a, format!("the commitments do not check out: {e}")),
        Ok(()) => Verdict::false_complaint(a, "the value it sealed is the sum committed to it"),
    }
}

/// Dealer `a.accused` signed different commitments for helper `echoer` (forwarded in that
/// helper's value message) and for the repaired node (in its own value message).
fn commitments(
    node: &Node,
    spec: &RepairSpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
    echoer: u16,
) -> Verdict {
    let Some(all) = values(node, spec, session, relayed) else {
        return Verdict::unverifiable(a, "not every helper's signed value was relayed");
    };
    let (Some(own), Some(forwarder)) = (all.get(&a.accused), all.get(&echoer)) else {
        return Verdict::unverifiable(a, "the accused or the forwarder is not a helper");
    };
    let shown = forwarder
        .forwarded
        .iter()
        .find(|e| e.from == a.accused)
        .and_then(|env| {
            let payload = node
                .verifier
                .check_forwarded(env, a.accused, echoer, session, kinds::DELTA)
                .ok()?;
            serde_json::from_slice::<HelperSummand>(&payload).ok()
        });
    let Some(shown) = shown else {
        return Verdict::Proven {
            culprit: echoer,
            reason: format!(
                "its signed value message passes on no summand node {} signed for it",
                a.accused
            ),
        };
    };
    if shown.commitments != own.commitments {
        Verdict::proven(
            a,
            format!(
                "it signed different repair commitments for node {echoer} and for node {}",
                spec.target
            ),
        )
    } else {
        Verdict::false_complaint(a, "the commitments it signed are the same for both")
    }
}
