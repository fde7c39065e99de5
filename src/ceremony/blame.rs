//! Settling the complaints of a key ceremony (DESIGN.md §4, §11) on the messages the
//! coordinator relayed, each signed by its origin.

use std::collections::BTreeMap;

use keyshares::evidence;

use crate::blame::{message_key, Accusation, Complaint, Relayed, Verdict};
use crate::ceremony::{kinds, round2_context};
use crate::node::Node;
use crate::peer::messages::CeremonyPurpose;
use crate::peer::{CeremonySpec, Receipt};
use crate::store::curve_of;

/// The echo payload: a receipt of every round-1 message the echoer received, by origin.
pub type EchoReceipts = BTreeMap<u16, Receipt>;

/// The members whose round-1 messages are echoed: all of them, or a reshare's dealers.
pub fn echoed_origins(spec: &CeremonySpec) -> Vec<u16> {
    match &spec.purpose {
        CeremonyPurpose::Reshare { dealers, .. } => dealers.clone(),
        _ => spec.participants.clone(),
    }
}

/// Settles one accusation of ceremony `session`.
pub fn settle(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
) -> Verdict {
    let Some(complaint) = &a.complaint else {
        return crate::blame::bare(a);
    };
    match complaint {
        Complaint::Round1 => round1(node, spec, session, relayed, a),
        Complaint::Echo => echo(node, spec, session, relayed, a),
        Complaint::Equivocation { echoer } => equivocation(node, session, relayed, a, *echoer),
        Complaint::Sealed { message_key } => sealed(node, spec, session, relayed, a, message_key),
    }
}

/// Whether `sender`'s round-1 payload is sound for the ceremony `spec` describes.
fn round1_sound(spec: &CeremonySpec, sender: u16, payload: &[u8]) -> Result<(), String> {
    let curve = curve_of(spec.algorithm);
    let t = spec.threshold;
    match &spec.purpose {
        CeremonyPurpose::Create => evidence::dkg_round1(curve, sender, t, false, payload),
        CeremonyPurpose::Refresh { .. } => evidence::dkg_round1(curve, sender, t, true, payload),
        CeremonyPurpose::Reshare {
            previous, dealers, ..
        } => {
            let old = hex::decode(&previous.public_keys)
                .ok()
                .and_then(|b| keyshares::PublicKeys::from_bytes(curve, &b).ok())
                .ok_or("the previous key's public data is unreadable")?;
            evidence::reshare_round1(&old, sender, dealers.contains(&sender), t, payload)
        }
    }
}

fn round1(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
) -> Verdict {
    let Some(payload) = relayed.signed(node, session, kinds::ROUND1, a.accused, a.accuser) else {
        return Verdict::unverifiable(a, "no signed round-1 message between them was relayed");
    };
    match round1_sound(spec, a.accused, &payload) {
        Err(why) => Verdict::proven(a, format!("its signed round-1 message: {why}")),
        Ok(()) => Verdict::false_complaint(a, "its signed round-1 message passes every check"),
    }
}

/// The echo `echoer` signed for `to`: every receipt signed by its origin, for the echoer,
/// one for each echoed origin but the echoer.
fn echo_sound(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
    echoer: u16,
    to: u16,
) -> Result<EchoReceipts, String> {
    let payload = relayed
        .signed(node, session, kinds::ECHO, echoer, to)
        .ok_or("no signed echo was relayed")?;
    let receipts: EchoReceipts =
        serde_json::from_slice(&payload).map_err(|_| "its signed echo is not readable")?;
    let expected: Vec<u16> = echoed_origins(spec)
        .into_iter()
        .filter(|o| *o != echoer)
        .collect();
    if !receipts.keys().copied().eq(expected.iter().copied()) {
        return Err(format!(
            "its signed echo quotes nodes {:?}, not {expected:?}",
            receipts.keys().collect::<Vec<_>>()
        ));
    }
    for (origin, receipt) in &receipts {
        node.verifier
            .check_receipt(receipt, *origin, echoer, session, kinds::ROUND1)
            .map_err(|e| {
                format!("its signed echo quotes a round-1 message node {origin} did not sign: {e}")
            })?;
    }
    Ok(receipts)
}

fn echo(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
) -> Verdict {
    if relayed
        .signed(node, session, kinds::ECHO, a.accused, a.accuser)
        .is_none()
    {
        return Verdict::unverifiable(a, "no signed echo between them was relayed");
    }
    match echo_sound(node, spec, session, relayed, a.accused, a.accuser) {
        Err(why) => Verdict::proven(a, why),
        Ok(_) => Verdict::false_complaint(
            a,
            "its signed echo is well formed and every quote is signed",
        ),
    }
}

fn equivocation(
    node: &Node,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
    echoer: u16,
) -> Verdict {
    let Some(echo) = relayed.signed(node, session, kinds::ECHO, echoer, a.accuser) else {
        return Verdict::unverifiable(a, format!("no signed echo of node {echoer} was relayed"));
    };
    let quoted = serde_json::from_slice::<EchoReceipts>(&echo)
        .ok()
        .and_then(|r| r.get(&a.accused).cloned())
        .and_then(|r| {
            node.verifier
                .check_receipt(&r, a.accused, echoer, session, kinds::ROUND1)
                .ok()
        });
    let Some(quoted) = quoted else {
        // The echo does not prove what it claims: its author is the one to name.
        return Verdict::Proven {
            culprit: echoer,
            reason: format!(
                "its signed echo to node {} misquotes node {}'s round-1 message (no valid signature of node {})",
                a.accuser, a.accused, a.accused
            ),
        };
    };
    let signed = relayed.digests(node, session, kinds::ROUND1, a.accused);
    match signed.iter().find(|(_, d)| **d != quoted) {
        Some((to, _)) => Verdict::proven(
            a,
            format!(
                "equivocation: it signed one round-1 message for node {echoer} and another for node {to}"
            ),
        ),
        None => Verdict::false_complaint(a, "every round-1 message it signed is the same"),
    }
}

fn sealed(
    node: &Node,
    spec: &CeremonySpec,
    session: &str,
    relayed: &Relayed,
    a: &Accusation,
    hex_key: &str,
) -> Verdict {
    let (from, to) = (a.accused, a.accuser);
    let (Some(blob), Some(commitment)) = (
        relayed.signed(node, session, kinds::ROUND2, from, to),
        relayed.signed(node, session, kinds::ROUND1, from, to),
    ) else {
        return Verdict::unverifiable(a, "the signed messages it is about were not relayed");
    };
    let Some(key) = message_key(hex_key) else {
        return Verdict::false_complaint(a, "its revealed message key is malformed");
    };
    let share =
        match keyshares::seal::open_revealed(&key, &round2_context(session, from, to), &blob) {
            Ok(s) => s,
            Err(_) => {
                return Verdict::unverifiable(
                    a,
                    "the key revealed does not open the sealed share: a sender's garbage or a \
                 recipient's wrong key look the same",
                )
            }
        };
    let curve = curve_of(spec.algorithm);
    let t = spec.threshold;
    let verdict = match &spec.purpose {
        CeremonyPurpose::Create => evidence::dkg_share(curve, to, t, false, &commitment, &share),
        CeremonyPurpose::Refresh { .. } => {
            evidence::dkg_share(curve, to, t, true, &commitment, &share)
        }
        CeremonyPurpose::Reshare { .. } => {
            evidence::reshare_subshare(curve, to, t, &commitment, &share)
        }
    };
    match verdict {
        Err(why) => Verdict::proven(
            a,
            format!("the share it signed and sealed, revealed: {why}"),
        ),
        Ok(()) => Verdict::false_complaint(
            a,
            "the share it sealed, revealed, matches its signed commitment",
        ),
    }
}
