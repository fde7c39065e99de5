//! Repairing a lost share (frost `keys::repairable`, the repairable threshold scheme of
//! eprint 2017/1155), made verifiable so that a helper who lies is named: t helpers rebuild a
//! participant's share without any of them learning it.
//!
//! 1. [`Repair::deal`]: helper i splits `λ_i·s_i` (its share weighted by its Lagrange
//!    coefficient at the participant r being repaired) into random summands δ_ij, one per
//!    helper j, its own included; the node seals each to its helper. It also publishes
//!    D_ij = δ_ij·G for every j. Since Σ_j δ_ij = λ_i·s_i, anyone can check
//!    Σ_j D_ij = λ_i·Y_i against i's verifying share on record.
//! 2. [`Repair::sigma`]: helper j checks that each summand it received matches its dealer's
//!    commitment to it, then adds them into σ_j = Σ_i δ_ij for r; sealed to r.
//! 3. [`Repair::recover`]: r checks that every dealer's commitments add up and that each
//!    σ_j·G = Σ_i D_ij, then adds the values: Σ_j σ_j = Σ_i λ_i·s_i = s_r, which must match
//!    r's verifying share.
//!
//! The commitments are points, so they reveal nothing a verifying share does not. The node
//! makes sure every helper and r judge by the same commitments (each dealer signs them, and r
//! compares the copies the other helpers forward).

use std::collections::BTreeMap;

use frost_core::keys::repairable::{self, Delta, Sigma};
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use rand_core::{CryptoRng, RngCore};
use vsss_rs::elliptic_curve::Group;
use zeroize::Zeroizing;

use crate::arith::{lagrange_at, Arith};
use crate::curve::{identifier, Ed25519, Secp256k1};
use crate::share::{KeyShare, PublicKeys};
use crate::{from_frost, Curve, ProtocolError};

/// Who repairs whom, for one key.
#[derive(Debug, Clone, Copy)]
pub struct Repair<'a> {
    /// The helpers, sorted, distinct, at least the key's threshold of them.
    pub helpers: &'a [u16],
    /// The participant whose share is rebuilt.
    pub target: u16,
    /// The key's public data, as every helper and the target hold it.
    pub public: &'a PublicKeys,
}

/// What one helper received in step 1: dealer → (its summand for this helper, its commitments).
pub type Inbox = BTreeMap<u16, (Zeroizing<Vec<u8>>, Vec<u8>)>;

/// What a helper deals in step 1.
pub struct Dealt {
    /// The summand for each helper, this helper's own included: secret, sealed to each.
    pub summands: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    /// D_ij = δ_ij·G for every helper j in id order, concatenated: public.
    pub commitments: Vec<u8>,
}

impl std::fmt::Debug for Dealt {
    /// The commitments (public) and who the summands are for; never a summand (DESIGN.md §8).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dealt")
            .field("summands_for", &self.summands.keys().collect::<Vec<_>>())
            .field(
                "commitments",
                &format_args!("<{} bytes>", self.commitments.len()),
            )
            .finish()
    }
}

impl Repair<'_> {
    /// Checks the parameters against the key; answers its verifying shares, which every step
    /// goes on to use.
    fn check(&self) -> Result<BTreeMap<u16, Vec<u8>>, ProtocolError> {
        if self.helpers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ProtocolError::invalid(
                "helpers must be sorted and contain no duplicate id",
            ));
        }
        if self.helpers.contains(&self.target) {
            return Err(ProtocolError::invalid(
                "the participant being repaired cannot help",
            ));
        }
        let threshold = self.public.threshold().unwrap_or(u16::MAX);
        if usize::from(threshold) > self.helpers.len() {
            return Err(ProtocolError::invalid(format!(
                "a repair needs at least {threshold} helpers, got {}",
                self.helpers.len()
            )));
        }
        let shares = self.public.verifying_shares();
        if !shares.contains_key(&self.target) {
            return Err(ProtocolError::invalid(format!(
                "node {} holds no share of this key",
                self.target
            )));
        }
        match self.helpers.iter().find(|h| !shares.contains_key(h)) {
            Some(h) => Err(ProtocolError::invalid(format!(
                "node {h} holds no share of this key and cannot help"
            ))),
            None => Ok(shares),
        }
    }

    /// Dealer i's commitments, checked: t points that add up to λ_i·Y_i.
    fn commitments_of<C: Arith>(
        &self,
        verifying_shares: &BTreeMap<u16, Vec<u8>>,
        dealer: u16,
        bytes: &[u8],
    ) -> Result<Vec<C::Point>, ProtocolError> {
        let blame = |reason: &str| ProtocolError::culprit(dealer, reason.to_string());
        let points = self
            .commitment_chunks::<C>(dealer, bytes)?
            .map(C::point_from_bytes)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| blame("a repair commitment is not a valid point"))?;
        let on_record = verifying_shares
            .get(&dealer)
            .and_then(|y| C::point_from_bytes(y))
            .ok_or_else(|| blame("not a participant of this key"))?;
        let lambda = lagrange_at::<C>(self.target, dealer, self.helpers)?;
        let sum = points.iter().fold(C::Point::identity(), |acc, d| acc + d);
        if sum != on_record * lambda {
            return Err(blame(
                "repair commitments do not add up to its weighted verifying share",
            ));
        }
        Ok(points)
    }

    /// Dealer i's commitments split into one encoded point per helper, if there are as many.
    fn commitment_chunks<'b, C: Arith>(
        &self,
        dealer: u16,
        bytes: &'b [u8],
    ) -> Result<std::slice::Chunks<'b, u8>, ProtocolError> {
        let len = C::point_to_bytes(&C::Point::generator()).len();
        if bytes.len() == len * self.helpers.len() {
            Ok(bytes.chunks(len))
        } else {
            Err(ProtocolError::culprit(
                dealer,
                "repair commitments of the wrong size",
            ))
        }
    }

    fn position(&self, helper: u16) -> Result<usize, ProtocolError> {
        self.helpers
            .iter()
            .position(|h| *h == helper)
            .ok_or_else(|| ProtocolError::invalid(format!("node {helper} is not a helper")))
    }

    fn deal_as<C: Arith + crate::dkg::Suite, R: RngCore + CryptoRng>(
        &self,
        share: &KeyPackage<C>,
        rng: &mut R,
    ) -> Result<Dealt, ProtocolError> {
        let ids = self
            .helpers
            .iter()
            .map(|h| identifier::<C>(*h))
            .collect::<Result<Vec<_>, _>>()?;
        let deltas = repairable::repair_share_part1(&ids, share, rng, identifier(self.target)?)
            .map_err(from_frost)?;
        let mut summands = BTreeMap::new();
        for (id, delta) in deltas {
            let to = crate::curve::identifier_to_u16(&id)
                .ok_or_else(|| ProtocolError::invalid("frost produced an unknown identifier"))?;
            summands.insert(to, Zeroizing::new(delta.serialize()));
        }
        let mut commitments = Vec::new();
        for helper in self.helpers {
            let delta = summands
                .get(helper)
                .and_then(|d| C::scalar_from_bytes(d))
                .ok_or_else(|| ProtocolError::invalid("frost dealt no summand for a helper"))?;
            let delta = Zeroizing::new(delta);
            commitments.extend(C::point_to_bytes(&(C::Point::generator() * *delta)));
        }
        Ok(Dealt {
            summands,
            commitments,
        })
    }

    /// Dealer `dealer`'s summand for helper `to`, checked against the dealer's commitment to
    /// it (only that one: whether they add up is the repaired node's check).
    fn summand_as<C: Arith>(
        &self,
        to: u16,
        dealer: u16,
        summand: &[u8],
        commitments: &[u8],
    ) -> Result<Delta<C>, ProtocolError> {
        let committed = self
            .commitment_chunks::<C>(dealer, commitments)?
            .nth(self.position(to)?);
        let delta = Delta::<C>::deserialize(summand).map_err(|e| {
            ProtocolError::culprit(dealer, format!("malformed repair summand: {e}"))
        })?;
        let scalar = Zeroizing::new(
            C::scalar_from_bytes(summand)
                .ok_or_else(|| ProtocolError::culprit(dealer, "malformed repair summand"))?,
        );
        let point = C::point_to_bytes(&(C::Point::generator() * *scalar));
        if committed != Some(&point[..]) {
            return Err(ProtocolError::culprit(
                dealer,
                "its repair summand does not match its commitment",
            ));
        }
        Ok(delta)
    }

    fn sigma_as<C: Arith>(
        &self,
        me: u16,
        received: &Inbox,
    ) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        let mut summands = Vec::with_capacity(received.len());
        for (dealer, (summand, commitments)) in received {
            summands.push(self.summand_as::<C>(me, *dealer, summand, commitments)?);
        }
        Ok(Zeroizing::new(
            repairable::repair_share_part2(&summands).serialize(),
        ))
    }

    /// A third party's check of a revealed summand (DESIGN.md §11): whether `dealer`'s
    /// summand for helper `to` matches the commitment the dealer signed.
    pub fn check_summand(
        &self,
        dealer: u16,
        to: u16,
        summand: &[u8],
        commitments: &[u8],
    ) -> Result<(), ProtocolError> {
        self.check()?;
        match self.public.curve() {
            Curve::Ed25519 => self
                .summand_as::<Ed25519>(to, dealer, summand, commitments)
                .map(|_| ()),
            Curve::Secp256k1 => self
                .summand_as::<Secp256k1>(to, dealer, summand, commitments)
                .map(|_| ()),
        }
    }

    /// A third party's check of a revealed value: whether `helper`'s value is the sum of the
    /// summands every dealer committed to for it, with every dealer's commitments checked.
    pub fn check_value(
        &self,
        helper: u16,
        value: &[u8],
        commitments: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<(), ProtocolError> {
        let shares = self.check()?;
        self.all_helpers(commitments.keys())?;
        match self.public.curve() {
            Curve::Ed25519 => self.value_as::<Ed25519>(&shares, helper, value, commitments),
            Curve::Secp256k1 => self.value_as::<Secp256k1>(&shares, helper, value, commitments),
        }
    }

    fn value_as<C: Arith>(
        &self,
        verifying_shares: &BTreeMap<u16, Vec<u8>>,
        helper: u16,
        value: &[u8],
        commitments: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<(), ProtocolError> {
        let mine = self.position(helper)?;
        let mut expected = C::Point::identity();
        for (dealer, bytes) in commitments {
            expected += self.commitments_of::<C>(verifying_shares, *dealer, bytes)?[mine];
        }
        let scalar = C::scalar_from_bytes(value)
            .ok_or_else(|| ProtocolError::culprit(helper, "malformed repair value"))?;
        if C::Point::generator() * scalar != expected {
            return Err(ProtocolError::culprit(
                helper,
                "its repair value is not the sum of the summands committed to it",
            ));
        }
        Ok(())
    }

    fn recover_as<C: Arith + crate::dkg::Suite>(
        &self,
        public: &PublicKeyPackage<C>,
        verifying_shares: &BTreeMap<u16, Vec<u8>>,
        values: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
        commitments: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<KeyShare, ProtocolError> {
        let mut expected = vec![C::Point::identity(); self.helpers.len()];
        for (dealer, bytes) in commitments {
            for (sum, d) in expected.iter_mut().zip(self.commitments_of::<C>(
                verifying_shares,
                *dealer,
                bytes,
            )?) {
                *sum += d;
            }
        }
        let mut sigmas = Vec::with_capacity(values.len());
        for (helper, bytes) in values {
            let sigma = Sigma::<C>::deserialize(bytes).map_err(|e| {
                ProtocolError::culprit(*helper, format!("malformed repair value: {e}"))
            })?;
            let scalar = Zeroizing::new(
                C::scalar_from_bytes(bytes)
                    .ok_or_else(|| ProtocolError::culprit(*helper, "malformed repair value"))?,
            );
            if C::Point::generator() * *scalar != expected[self.position(*helper)?] {
                return Err(ProtocolError::culprit(
                    *helper,
                    "its repair value is not the sum of the summands committed to it",
                ));
            }
            sigmas.push(sigma);
        }
        let id = identifier::<C>(self.target)?;
        let share = repairable::repair_share_part3(&sigmas, id, public).map_err(from_frost)?;
        // Cannot fail once every value matched its commitments; kept as the last word.
        if public.verifying_shares().get(&id) != Some(share.verifying_share()) {
            return Err(ProtocolError::invalid(format!(
                "the repaired share does not match node {}'s verifying share on record",
                self.target
            )));
        }
        Ok(C::wrap(share, public.clone()).0)
    }

    /// Step 1, on a helper: a summand for each helper and the commitments to them.
    pub fn deal<R: RngCore + CryptoRng>(
        &self,
        share: &KeyShare,
        rng: &mut R,
    ) -> Result<Dealt, ProtocolError> {
        self.check()?;
        self.position(share.identifier())?;
        match share {
            KeyShare::Ed25519(k) => self.deal_as(k, rng),
            KeyShare::Secp256k1(k) => self.deal_as(k, rng),
        }
    }

    /// Step 2, on helper `me`: from every helper (itself included) its summand for `me` and
    /// its commitments; answers the value for the target. A summand that does not match its
    /// dealer's commitments names the dealer.
    pub fn sigma(&self, me: u16, received: &Inbox) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        self.check()?;
        self.all_helpers(received.keys())?;
        match self.public.curve() {
            Curve::Ed25519 => self.sigma_as::<Ed25519>(me, received),
            Curve::Secp256k1 => self.sigma_as::<Secp256k1>(me, received),
        }
    }

    /// Step 3, on the target: every helper's value and every helper's commitments; its share,
    /// checked against its verifying share on record. A value that is not the sum of what was
    /// committed to its helper names that helper.
    pub fn recover(
        &self,
        values: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
        commitments: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<KeyShare, ProtocolError> {
        let shares = self.check()?;
        self.all_helpers(values.keys())?;
        self.all_helpers(commitments.keys())?;
        match self.public {
            PublicKeys::Ed25519(p) => self.recover_as(p, &shares, values, commitments),
            PublicKeys::Secp256k1(p) => self.recover_as(p, &shares, values, commitments),
        }
    }

    fn all_helpers<'k>(&self, ids: impl Iterator<Item = &'k u16>) -> Result<(), ProtocolError> {
        let ids: Vec<u16> = ids.copied().collect();
        if ids == self.helpers {
            Ok(())
        } else {
            Err(ProtocolError::invalid(format!(
                "expected one message from each helper {:?}, got {ids:?}",
                self.helpers
            )))
        }
    }
}

/// What each helper receives, and every dealer's commitments.
type Dealing = (BTreeMap<u16, Inbox>, BTreeMap<u16, Vec<u8>>);

/// Step 1 for every helper, every message delivered.
fn deal_all<R: RngCore + CryptoRng>(
    repair: &Repair,
    helpers: &[&KeyShare],
    rng: &mut R,
) -> Result<Dealing, ProtocolError> {
    let mut received: BTreeMap<u16, Inbox> = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for share in helpers {
        let dealt = repair.deal(share, rng)?;
        for (to, summand) in dealt.summands {
            received
                .entry(to)
                .or_default()
                .insert(share.identifier(), (summand, dealt.commitments.clone()));
        }
        commitments.insert(share.identifier(), dealt.commitments);
    }
    Ok((received, commitments))
}

/// Runs a whole repair in memory (tests, benchmarks): `helpers` are shares of the key.
pub fn repair_in_memory<R: RngCore + CryptoRng>(
    helpers: &[&KeyShare],
    target: u16,
    public: &PublicKeys,
    rng: &mut R,
) -> Result<KeyShare, ProtocolError> {
    let mut ids: Vec<u16> = helpers.iter().map(|s| s.identifier()).collect();
    ids.sort_unstable();
    let repair = Repair {
        helpers: &ids,
        target,
        public,
    };
    let (received, commitments) = deal_all(&repair, helpers, rng)?;
    let mut values = BTreeMap::new();
    for (helper, summands) in &received {
        values.insert(*helper, repair.sigma(*helper, summands)?);
    }
    repair.recover(&values, &commitments)
}

/// Deliberately wrong messages, for the node's test-only fault hooks.
pub mod faults {
    use super::*;

    /// A well-formed summand or value that matches no commitment: a random scalar.
    pub fn random_scalar<R: RngCore + CryptoRng>(curve: Curve, rng: &mut R) -> Zeroizing<Vec<u8>> {
        crate::arith::random_scalar(curve, rng)
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_dealing_prints_no_summand() {
        let dealt = Dealt {
            summands: [(2u16, Zeroizing::new(vec![0xABu8; 32]))].into(),
            commitments: vec![0x01; 32],
        };
        let shown = format!("{dealt:?} {dealt:#?}");
        for needle in ["171", "abab"] {
            assert!(!shown.contains(needle), "{shown}");
        }
        assert!(shown.contains("summands_for: [2]"), "{shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::run_in_memory;
    use crate::sign::{sign_in_memory, verify};
    use rand::rngs::OsRng;

    fn deal_all(repair: &Repair, shares: &[&KeyShare]) -> Dealing {
        super::deal_all(repair, shares, &mut OsRng).unwrap()
    }

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
    fn a_helper_with_a_wrong_value_is_named() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let key = run_in_memory(curve, 2, &[1, 2, 3], &mut OsRng).unwrap();
            let repair = Repair {
                helpers: &[1, 3],
                target: 2,
                public: &key[0].1,
            };
            let (received, commitments) = deal_all(&repair, &[&key[0].0, &key[2].0]);
            let mut values: BTreeMap<u16, Zeroizing<Vec<u8>>> = received
                .iter()
                .map(|(h, r)| (*h, repair.sigma(*h, r).unwrap()))
                .collect();
            assert_eq!(repair.recover(&values, &commitments).unwrap(), key[1].0);
            values.insert(3, faults::random_scalar(curve, &mut OsRng));
            let err = repair.recover(&values, &commitments).unwrap_err();
            assert_eq!(err.culprit_id(), Some(3), "{err}");
        }
    }

    #[test]
    fn a_summand_that_does_not_match_its_commitment_names_its_dealer() {
        let key = run_in_memory(Curve::Ed25519, 3, &[1, 2, 3, 4], &mut OsRng).unwrap();
        let repair = Repair {
            helpers: &[1, 2, 4],
            target: 3,
            public: &key[0].1,
        };
        let (mut received, _) = deal_all(&repair, &[&key[0].0, &key[1].0, &key[3].0]);
        let at_4 = received.get_mut(&4).unwrap();
        at_4.get_mut(&2).unwrap().0 = faults::random_scalar(Curve::Ed25519, &mut OsRng);
        let err = repair.sigma(4, at_4).unwrap_err();
        assert_eq!(err.culprit_id(), Some(2), "{err}");
    }

    #[test]
    fn commitments_that_do_not_add_up_name_their_dealer() {
        let key = run_in_memory(Curve::Secp256k1, 2, &[1, 2, 3], &mut OsRng).unwrap();
        let repair = Repair {
            helpers: &[2, 3],
            target: 1,
            public: &key[0].1,
        };
        let (received, mut commitments) = deal_all(&repair, &[&key[1].0, &key[2].0]);
        let values: BTreeMap<u16, Zeroizing<Vec<u8>>> = received
            .iter()
            .map(|(h, r)| (*h, repair.sigma(*h, r).unwrap()))
            .collect();
        // Helper 2 swaps in the commitments of another dealing: each is a valid point, but they
        // add up to λ·Y of nobody.
        let other = Repair {
            helpers: &[2, 3],
            target: 1,
            public: &key[0].1,
        }
        .deal(&key[2].0, &mut OsRng)
        .unwrap();
        commitments.insert(2, other.commitments);
        let err = repair.recover(&values, &commitments).unwrap_err();
        assert_eq!(err.culprit_id(), Some(2), "{err}");
        let err = repair
            .recover(&values, &BTreeMap::from([(3, commitments[&3].clone())]))
            .unwrap_err();
        assert_eq!(err.culprit_id(), None, "a missing dealer is refused: {err}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let key = run_in_memory(Curve::Ed25519, 2, &[1, 2, 3], &mut OsRng).unwrap();
        let public = &key[0].1;
        let with = |helpers: &'static [u16], target| Repair {
            helpers,
            target,
            public,
        };
        let cases: [(&'static [u16], u16, &str); 6] = [
            (&[1], 2, "too few helpers"),
            (&[1, 2], 2, "the target helps"),
            (&[3, 1], 2, "unsorted helpers"),
            (&[1, 7], 2, "an outsider helps"),
            (&[1, 3], 9, "no such target"),
            (&[2, 3], 1, "the dealer does not help"),
        ];
        for (helpers, target, case) in cases {
            assert!(
                with(helpers, target).deal(&key[0].0, &mut OsRng).is_err(),
                "{case}"
            );
        }
    }
}
