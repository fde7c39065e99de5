//! What a ceremony's public round-1 messages determine (DESIGN.md §4.4, §11): the group key and
//! every member's verifying share, computed from public data alone. Whoever relayed the signed
//! round-1 messages (the coordinator) can then tell, on evidence, which member's signed
//! confirmation reports another key, instead of counting who agrees with whom.
//!
//! - key generation (Pedersen DKG): the commitments add up, `Y_i = Σ_j f_j(i)·G`;
//! - refresh (frost `keys::refresh`): commitments to polynomials with a zero constant term
//!   are added to the old verifying shares, the group key stays;
//! - reshare (Feldman VSS of each old share): `Y'_j = Σ_i λ_i·f_i(j)·G` over the dealers, the
//!   group key stays.

use std::collections::BTreeMap;

use frost_core::keys::dkg::round1;
use frost_core::Ciphersuite;
use vsss_rs::elliptic_curve::Group as _;

use crate::arith::{lagrange_at_zero, scalar_of, Arith};
use crate::curve::{Curve, Ed25519, Secp256k1};
use crate::share::PublicKeys;

/// Which ceremony the round-1 messages belong to, with the public data it builds on.
pub enum Ceremony<'a> {
    Dkg {
        threshold: u16,
    },
    Refresh {
        old: &'a PublicKeys,
    },
    Reshare {
        old: &'a PublicKeys,
        dealers: &'a [u16],
        new_threshold: u16,
    },
}

/// A ceremony's result as its public data shows it: encodings as [`PublicKeys`] gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub group_key: Vec<u8>,
    pub verifying_shares: BTreeMap<u16, Vec<u8>>,
}

impl Outcome {
    /// The same view of a member's reported result.
    pub fn of(public: &PublicKeys) -> Outcome {
        Outcome {
            group_key: public.group_key(),
            verifying_shares: public.verifying_shares(),
        }
    }
}

/// The outcome `round1` (each sender's round-1 payload) determines for `participants` (the
/// members that end with a share).
pub fn expected(
    curve: Curve,
    ceremony: &Ceremony<'_>,
    participants: &[u16],
    round1: &BTreeMap<u16, Vec<u8>>,
) -> Result<Outcome, String> {
    match curve {
        Curve::Ed25519 => expected_as::<Ed25519>(ceremony, participants, round1),
        Curve::Secp256k1 => expected_as::<Secp256k1>(ceremony, participants, round1),
    }
}

/// `Σ_k C_k·x^k`, by Horner's rule.
fn evaluate<C: Arith>(coefficients: &[C::Point], x: u16) -> C::Point {
    let x = scalar_of::<C>(x);
    coefficients
        .iter()
        .rev()
        .fold(C::Point::identity(), |acc, c| acc * x + c)
}

/// A frost round-1 package's commitment as points.
fn dkg_points<C: Arith + Ciphersuite>(sender: u16, bytes: &[u8]) -> Result<Vec<C::Point>, String> {
    let package = round1::Package::<C>::deserialize(bytes)
        .map_err(|e| format!("node {sender}'s round-1 package is malformed: {e}"))?;
    package
        .commitment()
        .serialize()
        .map_err(|e| format!("node {sender}'s commitment is unreadable: {e}"))?
        .iter()
        .map(|c| C::point_from_bytes(c))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("node {sender}'s commitment holds an invalid point"))
}

/// Coefficient-wise sum of commitments of one length.
fn sum<C: Arith>(commitments: &[Vec<C::Point>]) -> Result<Vec<C::Point>, String> {
    let width = commitments.first().map_or(0, Vec::len);
    if commitments.iter().any(|c| c.len() != width) {
        return Err("the round-1 commitments differ in length".into());
    }
    let mut total = vec![C::Point::identity(); width];
    for commitment in commitments {
        for (t, c) in total.iter_mut().zip(commitment) {
            *t += c;
        }
    }
    Ok(total)
}

fn old_share<C: Arith>(old: &PublicKeys, id: u16) -> Result<C::Point, String> {
    old.verifying_shares()
        .get(&id)
        .and_then(|y| C::point_from_bytes(y))
        .ok_or_else(|| format!("node {id} has no verifying share on record"))
}

fn expected_as<C: Arith + Ciphersuite>(
    ceremony: &Ceremony<'_>,
    participants: &[u16],
    round1: &BTreeMap<u16, Vec<u8>>,
) -> Result<Outcome, String> {
    let shares: BTreeMap<u16, C::Point> = match ceremony {
        Ceremony::Dkg { threshold } => {
            let commitments = round1
                .iter()
                .map(|(sender, bytes)| dkg_points::<C>(*sender, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            let total = sum::<C>(&commitments)?;
            if total.len() != usize::from(*threshold) {
                return Err("the round-1 commitments do not match the threshold".into());
            }
            let group = C::point_to_bytes(&total[0]);
            let shares = participants
                .iter()
                .map(|i| (*i, evaluate::<C>(&total, *i)))
                .collect();
            return Ok(outcome::<C>(group, shares));
        }
        Ceremony::Refresh { old } => {
            let commitments = round1
                .iter()
                .map(|(sender, bytes)| dkg_points::<C>(*sender, bytes))
                .collect::<Result<Vec<_>, _>>()?;
            // Refresh commitments leave out the zero constant term (frost `keys::refresh`).
            let mut total = vec![C::Point::identity()];
            total.extend(sum::<C>(&commitments)?);
            participants
                .iter()
                .map(|i| Ok((*i, old_share::<C>(old, *i)? + evaluate::<C>(&total, *i))))
                .collect::<Result<_, String>>()?
        }
        Ceremony::Reshare {
            dealers,
            new_threshold,
            ..
        } => {
            let mut combined = vec![C::Point::identity(); usize::from(*new_threshold)];
            for dealer in *dealers {
                let bytes = round1
                    .get(dealer)
                    .ok_or_else(|| format!("no round-1 message from dealer {dealer}"))?;
                let commitment = crate::reshare::parse_commitment::<C>(bytes, *new_threshold)
                    .ok_or_else(|| format!("dealer {dealer}'s commitment is malformed"))?;
                let lambda = lagrange_at_zero::<C>(*dealer, dealers).map_err(|e| e.to_string())?;
                for (d, c) in combined.iter_mut().zip(&commitment) {
                    *d += *c * lambda;
                }
            }
            participants
                .iter()
                .map(|j| (*j, evaluate::<C>(&combined, *j)))
                .collect()
        }
    };
    let old = match ceremony {
        Ceremony::Refresh { old } | Ceremony::Reshare { old, .. } => old,
        Ceremony::Dkg { .. } => unreachable!("returned above"),
    };
    Ok(outcome::<C>(old.group_key(), shares))
}

fn outcome<C: Arith>(group_key: Vec<u8>, shares: BTreeMap<u16, C::Point>) -> Outcome {
    Outcome {
        group_key,
        verifying_shares: shares
            .into_iter()
            .map(|(i, y)| (i, C::point_to_bytes(&y)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::{Dkg, DkgParams};
    use crate::reshare::{Reshare, ReshareParams};
    use crate::KeyShare;

    fn ids(n: u16) -> Vec<u16> {
        (1..=n).collect()
    }

    /// Every member's share and public data, and each member's round-1 payload.
    type Generated = (Vec<(KeyShare, PublicKeys)>, BTreeMap<u16, Vec<u8>>);

    fn dkg(curve: Curve) -> Generated {
        let rng = &mut rand::rngs::OsRng;
        let mut started = BTreeMap::new();
        let mut round1 = BTreeMap::new();
        for me in ids(3) {
            let params = DkgParams {
                me,
                participants: ids(3),
                threshold: 2,
            };
            let (part, payload) = Dkg::start(curve, params, rng).unwrap();
            round1.insert(me, payload.clone());
            started.insert(me, (part, payload));
        }
        (crate::dkg::run_rounds(started).unwrap(), round1)
    }

    #[test]
    fn a_dkg_outcome_is_what_its_round1_commitments_make_on_both_curves() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let (key, round1) = dkg(curve);
            let want = expected(curve, &Ceremony::Dkg { threshold: 2 }, &ids(3), &round1);
            assert_eq!(want.unwrap(), Outcome::of(&key[0].1));
            // Another member's commitment in place of node 3's makes another key.
            let (_, other) = dkg(curve);
            let mut mixed = round1.clone();
            mixed.insert(3, other[&3].clone());
            let wrong = expected(curve, &Ceremony::Dkg { threshold: 2 }, &ids(3), &mixed);
            assert_ne!(wrong.unwrap(), Outcome::of(&key[0].1));
            let bad = expected(curve, &Ceremony::Dkg { threshold: 3 }, &ids(3), &round1);
            assert!(bad.is_err());
        }
    }

    #[test]
    fn a_refresh_outcome_adds_the_zero_sharings_to_the_old_shares() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let (key, _) = dkg(curve);
            let old = key[0].1.clone();
            let rng = &mut rand::rngs::OsRng;
            let mut started = BTreeMap::new();
            let mut round1 = BTreeMap::new();
            for (share, public) in &key {
                let params = DkgParams {
                    me: share.identifier(),
                    participants: ids(3),
                    threshold: 2,
                };
                let (part, payload) = Dkg::start_refresh(params, share, public, rng).unwrap();
                round1.insert(share.identifier(), payload.clone());
                started.insert(share.identifier(), (part, payload));
            }
            let refreshed = crate::dkg::run_rounds(started).unwrap();
            let want = expected(curve, &Ceremony::Refresh { old: &old }, &ids(3), &round1);
            let got = Outcome::of(&refreshed[1].1);
            assert_eq!(want.unwrap(), got);
            assert_ne!(got, Outcome::of(&old), "the verifying shares changed");
        }
    }

    #[test]
    fn a_reshare_outcome_is_the_dealers_commitments_interpolated() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let (key, _) = dkg(curve);
            let old = key[0].1.clone();
            let (dealers, new_participants) = (vec![1, 3], vec![2, 3, 4, 5]);
            let rng = &mut rand::rngs::OsRng;
            let params = |me| ReshareParams {
                me,
                dealers: dealers.clone(),
                new_participants: new_participants.clone(),
                new_threshold: 3,
            };
            let mut parts = BTreeMap::new();
            let mut round1 = BTreeMap::new();
            for me in params(0).members() {
                let share = key.iter().map(|(s, _)| s).find(|s| s.identifier() == me);
                let (part, payload) = Reshare::start(params(me), old.clone(), share, rng).unwrap();
                parts.insert(me, part);
                round1.insert(me, payload);
            }
            let reshared = crate::reshare::run_rounds(parts, &round1).unwrap();
            let ceremony = Ceremony::Reshare {
                old: &old,
                dealers: &dealers,
                new_threshold: 3,
            };
            let want = expected(curve, &ceremony, &new_participants, &round1).unwrap();
            assert_eq!(want, Outcome::of(&reshared[0].2));
            assert_eq!(want.group_key, old.group_key());
        }
    }
}
