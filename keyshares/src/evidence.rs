//! Checks anyone can run on a participant's messages, to settle a complaint about them
//! (DESIGN.md §11 "Evidence-based blame").
//!
//! A complaint names a node only if the message it is about can be checked by a third party
//! — the coordinator, which relayed it and holds its sender's signature over it:
//!
//! - a round-1 message is public: its commitment's size, and for a new key the proof of
//!   knowledge of its constant term (a Schnorr proof, RFC 9591's DKG as in frost `keys::dkg`;
//!   Komlo–Goldberg, FROST, round 1 step 5), or for a reshare the constant term that must be the
//!   dealer's old verifying share;
//! - a round-2 share is private, and is checked once revealed against the sender's round-1
//!   commitment, as in the complaint phase of Gennaro–Jarecki–Krawczyk–Rabin (GJKR, "Secure
//!   Distributed Key Generation for Discrete-Log Based Cryptosystems", J. Cryptology 2007,
//!   step 1(c)): `f(j)·G = Σ_k C_k·j^k`. Who reveals it, and why that needs no new trust, is
//!   [`crate::seal::reveal`]'s part.
//!
//! Each function answers `Ok(())` when the message is sound — the complaint was false, and its
//! author is the one to name — or the reason it is not.

use frost_core::keys::dkg::{round1, round2};
use frost_core::{Ciphersuite, Field, Group};
use vsss_rs::elliptic_curve::Group as _;

use crate::arith::{scalar_of, Arith};
use crate::curve::{identifier, Curve, Ed25519, Secp256k1};
use crate::share::PublicKeys;

type FieldOf<C> = <<C as Ciphersuite>::Group as Group>::Field;
type Element<C> = <<C as Ciphersuite>::Group as Group>::Element;
type Scalar<C> = <FieldOf<C> as Field>::Scalar;

fn element<C: Ciphersuite>(bytes: &[u8]) -> Option<Element<C>> {
    let buf = <C::Group as Group>::Serialization::try_from(bytes).ok()?;
    <C::Group as Group>::deserialize(&buf).ok()
}

fn scalar<C: Ciphersuite>(bytes: &[u8]) -> Option<Scalar<C>> {
    let buf = <FieldOf<C> as Field>::Serialization::try_from(bytes).ok()?;
    <FieldOf<C> as Field>::deserialize(&buf).ok()
}

/// The commitment of a DKG round-1 package as points, lowest degree first, after its size was
/// checked: `threshold` coefficients, one fewer for a refresh (its constant term is zero and
/// left out, frost `keys::refresh`).
fn dkg_commitment<C: Ciphersuite>(
    package: &round1::Package<C>,
    threshold: u16,
    refresh: bool,
) -> Result<Vec<Element<C>>, String> {
    let coefficients = package
        .commitment()
        .serialize()
        .map_err(|e| format!("unreadable commitment: {e}"))?;
    let expected = usize::from(threshold) - usize::from(refresh);
    if coefficients.len() != expected {
        return Err(format!(
            "round-1 commitment has {} coefficients, the threshold needs {expected}",
            coefficients.len()
        ));
    }
    coefficients
        .iter()
        .map(|c| element::<C>(c))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "round-1 commitment holds an invalid point".to_string())
}

/// frost's proof of knowledge of the constant term: `R = z·G − c·φ_0` with
/// `c = H_DKG(id ‖ φ_0 ‖ R)` (frost-core `keys::dkg`, round 1 step 5).
fn proof_of_knowledge_holds<C: Ciphersuite>(sender: u16, package: &round1::Package<C>) -> bool {
    let check = || -> Option<bool> {
        let coefficients = package.commitment().serialize().ok()?;
        let phi0_bytes = coefficients.first()?;
        let phi0 = element::<C>(phi0_bytes)?;
        let proof = package.proof_of_knowledge().serialize().ok()?;
        let generator = <C::Group as Group>::generator();
        let point_len = <C::Group as Group>::serialize(&generator)
            .ok()?
            .as_ref()
            .len();
        let (r_bytes, z_bytes) = (proof.get(..point_len)?, proof.get(point_len..)?);
        let (r, z) = (element::<C>(r_bytes)?, scalar::<C>(z_bytes)?);
        let mut preimage = identifier::<C>(sender).ok()?.serialize();
        preimage.extend_from_slice(phi0_bytes);
        preimage.extend_from_slice(r_bytes);
        let c = C::HDKG(&preimage)?;
        Some(r == generator * z - phi0 * c)
    };
    check().unwrap_or(false)
}

fn dkg_round1_as<C: Ciphersuite>(
    sender: u16,
    threshold: u16,
    refresh: bool,
    bytes: &[u8],
) -> Result<(), String> {
    let package = round1::Package::<C>::deserialize(bytes)
        .map_err(|e| format!("malformed round-1 package: {e}"))?;
    dkg_commitment(&package, threshold, refresh)?;
    // A refresh commitment has no constant term to prove knowledge of (frost `keys::refresh`).
    if !refresh && !proof_of_knowledge_holds(sender, &package) {
        return Err("invalid proof of knowledge in its round-1 package".into());
    }
    Ok(())
}

/// Whether `sender`'s DKG (or refresh) round-1 package is sound.
pub fn dkg_round1(
    curve: Curve,
    sender: u16,
    threshold: u16,
    refresh: bool,
    bytes: &[u8],
) -> Result<(), String> {
    match curve {
        Curve::Ed25519 => dkg_round1_as::<Ed25519>(sender, threshold, refresh, bytes),
        Curve::Secp256k1 => dkg_round1_as::<Secp256k1>(sender, threshold, refresh, bytes),
    }
}

fn dkg_share_as<C: Ciphersuite>(
    recipient: u16,
    threshold: u16,
    refresh: bool,
    round1_bytes: &[u8],
    share_bytes: &[u8],
) -> Result<(), String> {
    let package = round1::Package::<C>::deserialize(round1_bytes)
        .map_err(|e| format!("malformed round-1 package: {e}"))?;
    let commitment = dkg_commitment(&package, threshold, refresh)?;
    let share = round2::Package::<C>::deserialize(share_bytes)
        .map_err(|e| format!("malformed round-2 package: {e}"))?;
    let f = scalar::<C>(&share.signing_share().serialize())
        .ok_or_else(|| "malformed round-2 share".to_string())?;
    let x = identifier::<C>(recipient)
        .ok()
        .and_then(|id| scalar::<C>(&id.serialize()))
        .ok_or_else(|| format!("{recipient} is not a participant id"))?;
    // Σ_k C_k·x^k, k from 1 for a refresh (its constant term is zero).
    let mut expected = <C::Group as Group>::identity();
    let mut power = if refresh {
        x
    } else {
        <FieldOf<C> as Field>::one()
    };
    for c in commitment {
        expected = expected + c * power;
        power = power * x;
    }
    if <C::Group as Group>::generator() * f == expected {
        Ok(())
    } else {
        Err("round-2 share does not match the sender's round-1 commitment".into())
    }
}

/// Whether the DKG (or refresh) share `share` for `recipient` lies on the polynomial that
/// the sender committed to in `round1`.
pub fn dkg_share(
    curve: Curve,
    recipient: u16,
    threshold: u16,
    refresh: bool,
    round1: &[u8],
    share: &[u8],
) -> Result<(), String> {
    match curve {
        Curve::Ed25519 => dkg_share_as::<Ed25519>(recipient, threshold, refresh, round1, share),
        Curve::Secp256k1 => dkg_share_as::<Secp256k1>(recipient, threshold, refresh, round1, share),
    }
}

fn reshare_points<C: Arith>(bytes: &[u8], threshold: u16) -> Result<Vec<C::Point>, String> {
    crate::reshare::parse_commitment::<C>(bytes, threshold)
        .ok_or_else(|| format!("malformed commitment: expected {threshold} valid points"))
}

fn reshare_round1_as<C: Arith>(
    old: &PublicKeys,
    sender: u16,
    is_dealer: bool,
    new_threshold: u16,
    bytes: &[u8],
) -> Result<(), String> {
    if !is_dealer {
        return match bytes.is_empty() {
            true => Ok(()),
            false => Err("sent a commitment but is not a dealer".into()),
        };
    }
    let commitment = reshare_points::<C>(bytes, new_threshold)?;
    let on_record = old
        .verifying_shares()
        .get(&sender)
        .and_then(|y| C::point_from_bytes(y))
        .ok_or_else(|| format!("dealer {sender} holds no share of the old key"))?;
    if commitment[0] != on_record {
        return Err("commitment does not open to the dealer's old verifying share".into());
    }
    Ok(())
}

/// Whether `sender`'s reshare round-1 payload is sound: empty for a non-dealer; for a
/// dealer, `new_threshold` points whose constant term is its verifying share in `old`.
pub fn reshare_round1(
    old: &PublicKeys,
    sender: u16,
    is_dealer: bool,
    new_threshold: u16,
    bytes: &[u8],
) -> Result<(), String> {
    match old.curve() {
        Curve::Ed25519 => {
            reshare_round1_as::<Ed25519>(old, sender, is_dealer, new_threshold, bytes)
        }
        Curve::Secp256k1 => {
            reshare_round1_as::<Secp256k1>(old, sender, is_dealer, new_threshold, bytes)
        }
    }
}

fn reshare_subshare_as<C: Arith>(
    recipient: u16,
    new_threshold: u16,
    commitment: &[u8],
    subshare: &[u8],
) -> Result<(), String> {
    let points = reshare_points::<C>(commitment, new_threshold)?;
    let value = C::scalar_from_bytes(subshare).ok_or_else(|| "malformed sub-share".to_string())?;
    let x = scalar_of::<C>(recipient);
    let expected = points
        .iter()
        .rev()
        .fold(C::Point::identity(), |acc, c| acc * x + c);
    if C::Point::generator() * value == expected {
        Ok(())
    } else {
        Err("sub-share does not match the dealer's commitment".into())
    }
}

/// Whether a reshare sub-share for `recipient` lies on the dealer's committed polynomial.
pub fn reshare_subshare(
    curve: Curve,
    recipient: u16,
    new_threshold: u16,
    commitment: &[u8],
    subshare: &[u8],
) -> Result<(), String> {
    match curve {
        Curve::Ed25519 => {
            reshare_subshare_as::<Ed25519>(recipient, new_threshold, commitment, subshare)
        }
        Curve::Secp256k1 => {
            reshare_subshare_as::<Secp256k1>(recipient, new_threshold, commitment, subshare)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::{faults, Dkg, DkgParams};
    use rand::rngs::OsRng;
    use std::collections::BTreeMap;

    fn params(me: u16) -> DkgParams {
        DkgParams {
            me,
            participants: vec![1, 2, 3],
            threshold: 2,
        }
    }

    /// Round-1 packages by sender, and every round-2 share by (from, to).
    type Dealt = (BTreeMap<u16, Vec<u8>>, BTreeMap<(u16, u16), Vec<u8>>);

    /// Rounds 1 and 2 of a 2-of-3 DKG.
    fn dealt(curve: Curve) -> Dealt {
        let mut parts = BTreeMap::new();
        let mut r1 = BTreeMap::new();
        for me in 1..=3 {
            let (p, pkg) = Dkg::start(curve, params(me), &mut OsRng).unwrap();
            parts.insert(me, p);
            r1.insert(me, pkg);
        }
        let mut echoes = BTreeMap::new();
        for (me, p) in parts.iter_mut() {
            let others = crate::dkg::others_of(*me, &r1);
            echoes.insert(*me, p.receive_round1(&others).unwrap());
        }
        let mut shares = BTreeMap::new();
        for (me, p) in parts.iter_mut() {
            let others = crate::dkg::others_of(*me, &echoes);
            for (to, share) in p.check_echoes(&others).unwrap() {
                shares.insert((*me, to), share.to_vec());
            }
        }
        (r1, shares)
    }

    #[test]
    fn a_revealed_share_is_judged_by_the_senders_commitment_on_both_curves() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let (r1, shares) = dealt(curve);
            for ((from, to), share) in &shares {
                assert_eq!(dkg_round1(curve, *from, 2, false, &r1[from]), Ok(()));
                assert_eq!(dkg_share(curve, *to, 2, false, &r1[from], share), Ok(()));
                // Judged against another sender's commitment, or for another recipient, the
                // same share fails: the check is bound to both.
                let other = if *from == 1 { 2 } else { 1 };
                assert!(dkg_share(curve, *to, 2, false, &r1[&other], share).is_err());
                let elsewhere = if *to == 3 { 1 } else { 3 };
                assert!(dkg_share(curve, elsewhere, 2, false, &r1[from], share).is_err());
            }
            let random = faults::tampered_round2(curve, &mut OsRng).unwrap();
            assert!(dkg_share(curve, 2, 2, false, &r1[&1], &random).is_err());
            assert!(dkg_share(curve, 2, 2, false, &r1[&1], b"junk").is_err());
        }
    }

    #[test]
    fn a_bad_proof_of_knowledge_or_size_fails_the_public_round1_check() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let (_, bad) =
                faults::start_with_tampered_round1(curve, params(2), &mut OsRng).unwrap();
            assert!(dkg_round1(curve, 2, 2, false, &bad).is_err());
            let (_, good) = Dkg::start(curve, params(2), &mut OsRng).unwrap();
            assert_eq!(dkg_round1(curve, 2, 2, false, &good), Ok(()));
            // The proof binds the sender's id: the same package is not node 3's.
            assert!(dkg_round1(curve, 3, 2, false, &good).is_err());
            assert!(dkg_round1(curve, 2, 3, false, &good).is_err());
            assert!(dkg_round1(curve, 2, 2, false, b"junk").is_err());
        }
    }

    #[test]
    fn refresh_shares_and_reshare_subshares_are_checked_publicly() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let old = crate::dkg::run_in_memory(curve, 2, &[1, 2, 3], &mut OsRng).unwrap();
            // Refresh: the share of node 1 to node 2, against node 1's zero-constant commitment.
            let mut parts = BTreeMap::new();
            let mut r1 = BTreeMap::new();
            for (share, public) in &old {
                let me = share.identifier();
                let (p, pkg) = Dkg::start_refresh(params(me), share, public, &mut OsRng).unwrap();
                parts.insert(me, p);
                r1.insert(me, pkg);
            }
            let mut echoes = BTreeMap::new();
            for (me, p) in parts.iter_mut() {
                let others = crate::dkg::others_of(*me, &r1);
                echoes.insert(*me, p.receive_round1(&others).unwrap());
            }
            let p1 = parts.get_mut(&1).unwrap();
            let out = p1.check_echoes(&crate::dkg::others_of(1, &echoes)).unwrap();
            assert_eq!(dkg_round1(curve, 1, 2, true, &r1[&1]), Ok(()));
            assert_eq!(dkg_share(curve, 2, 2, true, &r1[&1], &out[&2]), Ok(()));
            assert!(dkg_share(curve, 3, 2, true, &r1[&1], &out[&2]).is_err());

            // Reshare: dealer 1's commitment and its sub-share for node 4.
            let public = old[0].1.clone();
            let rp = crate::reshare::ReshareParams {
                me: 1,
                dealers: vec![1, 2],
                new_participants: vec![1, 2, 3, 4],
                new_threshold: 3,
            };
            let (mut dealer, commitment) =
                crate::reshare::Reshare::start(rp, public.clone(), Some(&old[0].0), &mut OsRng)
                    .unwrap();
            assert_eq!(reshare_round1(&public, 1, true, 3, &commitment), Ok(()));
            assert!(reshare_round1(&public, 2, true, 3, &commitment).is_err());
            assert!(reshare_round1(&public, 3, false, 3, &commitment).is_err());
            assert_eq!(reshare_round1(&public, 3, false, 3, &[]), Ok(()));
            let mut payloads = BTreeMap::new();
            for m in [2u16, 3, 4] {
                let params = crate::reshare::ReshareParams {
                    me: m,
                    dealers: vec![1, 2],
                    new_participants: vec![1, 2, 3, 4],
                    new_threshold: 3,
                };
                let share = old
                    .iter()
                    .find(|(s, _)| s.identifier() == m)
                    .map(|(s, _)| s);
                let (_, p) =
                    crate::reshare::Reshare::start(params, public.clone(), share, &mut OsRng)
                        .unwrap();
                payloads.insert(m, p);
            }
            let echo = dealer.receive_round1(&payloads).unwrap();
            let echoes = [2u16, 3, 4]
                .map(|m| (m, echo.clone()))
                .into_iter()
                .collect();
            let subshares = dealer.check_echoes(&echoes).unwrap();
            assert_eq!(
                reshare_subshare(curve, 4, 3, &commitment, &subshares[&4]),
                Ok(())
            );
            assert!(reshare_subshare(curve, 3, 3, &commitment, &subshares[&4]).is_err());
            let random = crate::arith::random_scalar(curve, &mut OsRng);
            assert!(reshare_subshare(curve, 4, 3, &commitment, &random).is_err());
        }
    }
}
