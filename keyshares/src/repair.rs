//! Repairing a lost share (frost `keys::repairable`, the repairable threshold scheme of
//! eprint 2017/1155): t helpers rebuild a participant's share without any of them learning it.
//!
//! 1. [`deltas`]: each helper splits `λ_i·s_i` (its Lagrange-weighted share, evaluated at the
//!    participant being repaired) into random summands, one per helper, its own included; the
//!    node seals each to its helper.
//! 2. [`sigma`]: each helper adds the summands it received into one value for the participant
//!    being repaired; sealed to it.
//! 3. [`recover`]: the participant adds the values; the sum is its share, which must match its
//!    verifying share on record — the only check there is, since the summands are not
//!    verifiable: a helper that lies is caught, but cannot be told from the others.

use std::collections::BTreeMap;

use frost_core::keys::repairable::{self, Delta, Sigma};
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::Ciphersuite;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::curve::{identifier, Ed25519, Secp256k1};
use crate::share::{KeyShare, PublicKeys};
use crate::{from_frost, ProtocolError};

fn check_helpers(helpers: &[u16], target: u16) -> Result<(), ProtocolError> {
    let mut sorted = helpers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != helpers.len() {
        return Err(ProtocolError::invalid("helpers contain a duplicate id"));
    }
    if helpers.contains(&target) {
        return Err(ProtocolError::invalid(
            "the participant being repaired cannot help",
        ));
    }
    Ok(())
}

fn deltas_of<C: Ciphersuite, R: RngCore + CryptoRng>(
    helpers: &[u16],
    target: u16,
    share: &KeyPackage<C>,
    rng: &mut R,
) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
    let ids = helpers
        .iter()
        .map(|h| identifier::<C>(*h))
        .collect::<Result<Vec<_>, _>>()?;
    let deltas = repairable::repair_share_part1(&ids, share, rng, identifier(target)?)
        .map_err(from_frost)?;
    deltas
        .into_iter()
        .map(|(id, delta)| {
            let to = crate::curve::identifier_to_u16(&id)
                .ok_or_else(|| ProtocolError::invalid("frost produced an unknown identifier"))?;
            Ok((to, Zeroizing::new(delta.serialize())))
        })
        .collect()
}

/// Step 1, on helper `share.identifier()`: one summand for each helper (itself included) of
/// its contribution to the share of `target`.
pub fn deltas<R: RngCore + CryptoRng>(
    helpers: &[u16],
    target: u16,
    share: &KeyShare,
    rng: &mut R,
) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
    check_helpers(helpers, target)?;
    if usize::from(share.threshold()) > helpers.len() {
        return Err(ProtocolError::invalid(format!(
            "a repair needs at least {} helpers, got {}",
            share.threshold(),
            helpers.len()
        )));
    }
    match share {
        KeyShare::Ed25519(k) => deltas_of(helpers, target, k, rng),
        KeyShare::Secp256k1(k) => deltas_of(helpers, target, k, rng),
    }
}

fn sigma_of<C: Ciphersuite>(
    deltas: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let parsed = deltas
        .iter()
        .map(|(from, bytes)| {
            Delta::<C>::deserialize(bytes).map_err(|e| {
                ProtocolError::culprit(*from, format!("malformed repair summand: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Zeroizing::new(
        repairable::repair_share_part2(&parsed).serialize(),
    ))
}

/// Step 2, on a helper: the summands every helper sent it (its own included), added up.
pub fn sigma(
    curve: crate::Curve,
    deltas: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    match curve {
        crate::Curve::Ed25519 => sigma_of::<Ed25519>(deltas),
        crate::Curve::Secp256k1 => sigma_of::<Secp256k1>(deltas),
    }
}

fn recover_of<C: crate::dkg::Suite>(
    target: u16,
    sigmas: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    public: &PublicKeyPackage<C>,
) -> Result<KeyShare, ProtocolError> {
    let parsed = sigmas
        .iter()
        .map(|(from, bytes)| {
            Sigma::<C>::deserialize(bytes)
                .map_err(|e| ProtocolError::culprit(*from, format!("malformed repair value: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let id = identifier::<C>(target)?;
    let share = repairable::repair_share_part3(&parsed, id, public).map_err(from_frost)?;
    match public.verifying_shares().get(&id) {
        Some(on_record) if on_record == share.verifying_share() => {}
        Some(_) => {
            return Err(ProtocolError::invalid(format!(
                "the repaired share does not match node {target}'s verifying share on record: \
                 a helper sent a wrong value"
            )))
        }
        None => {
            return Err(ProtocolError::invalid(format!(
                "node {target} holds no share of this key"
            )))
        }
    }
    Ok(C::wrap(share, public.clone()).0)
}

/// Step 3, on the participant being repaired: its share, from every helper's value, checked
/// against its verifying share in the key's public data.
pub fn recover(
    target: u16,
    sigmas: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    public: &PublicKeys,
) -> Result<KeyShare, ProtocolError> {
    let threshold = public.threshold().unwrap_or(0);
    if usize::from(threshold) > sigmas.len() {
        return Err(ProtocolError::invalid(format!(
            "a repair needs values from at least {threshold} helpers, got {}",
            sigmas.len()
        )));
    }
    match public {
        PublicKeys::Ed25519(p) => recover_of(target, sigmas, p),
        PublicKeys::Secp256k1(p) => recover_of(target, sigmas, p),
    }
}

/// Runs a whole repair in memory (tests, benchmarks): `helpers` are shares of the key.
pub fn repair_in_memory<R: RngCore + CryptoRng>(
    helpers: &[&KeyShare],
    target: u16,
    public: &PublicKeys,
    rng: &mut R,
) -> Result<KeyShare, ProtocolError> {
    let ids: Vec<u16> = helpers.iter().map(|s| s.identifier()).collect();
    let mut received: BTreeMap<u16, BTreeMap<u16, Zeroizing<Vec<u8>>>> = BTreeMap::new();
    for share in helpers {
        for (to, delta) in deltas(&ids, target, share, rng)? {
            received
                .entry(to)
                .or_default()
                .insert(share.identifier(), delta);
        }
    }
    let mut sigmas = BTreeMap::new();
    for (helper, deltas) in &received {
        sigmas.insert(*helper, sigma(public.curve(), deltas)?);
    }
    recover(target, &sigmas, public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::run_in_memory;
    use crate::sign::{sign_in_memory, verify};
    use crate::Curve;
    use rand::rngs::OsRng;

    #[test]
    fn a_lost_share_is_rebuilt_and_signs() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let key = run_in_memory(curve, 3, &[1, 2, 3, 4, 5], &mut OsRng).unwrap();
            let public = &key[0].1;
            let helpers = [&key[0].0, &key[2].0, &key[4].0];
            let repaired = repair_in_memory(&helpers, 2, public, &mut OsRng).unwrap();
            assert_eq!(repaired, key[1].0, "the repaired share is node 2's share");
            let sig = sign_in_memory(&[&repaired, &key[3].0, &key[4].0], public, b"m", &mut OsRng)
                .unwrap();
            assert!(verify(curve, &public.group_key(), b"m", &sig));
        }
    }

    #[test]
    fn a_lying_helper_is_caught_and_too_few_helpers_refused() {
        let key = run_in_memory(Curve::Ed25519, 2, &[1, 2, 3], &mut OsRng).unwrap();
        let public = &key[0].1;
        let ids = [1u16, 3];
        let mut received: BTreeMap<u16, BTreeMap<u16, Zeroizing<Vec<u8>>>> = BTreeMap::new();
        for share in [&key[0].0, &key[2].0] {
            for (to, delta) in deltas(&ids, 2, share, &mut OsRng).unwrap() {
                received
                    .entry(to)
                    .or_default()
                    .insert(share.identifier(), delta);
            }
        }
        let mut sigmas: BTreeMap<u16, Zeroizing<Vec<u8>>> = received
            .iter()
            .map(|(h, d)| (*h, sigma(Curve::Ed25519, d).unwrap()))
            .collect();
        // Helper 3 sends a value of its own making.
        let other = deltas(&ids, 2, &key[2].0, &mut OsRng).unwrap();
        sigmas.insert(3, sigma(Curve::Ed25519, &other).unwrap());
        assert!(recover(2, &sigmas, public).is_err());
        sigmas.remove(&3);
        assert!(recover(2, &sigmas, public).is_err());
        assert!(deltas(&[1], 2, &key[0].0, &mut OsRng).is_err());
        assert!(deltas(&[1, 2], 2, &key[0].0, &mut OsRng).is_err());
    }
}
