//! Distributed key generation: Pedersen DKG as in frost `keys::dkg`, with the echo check that
//! production ceremonies need (DESIGN.md §4).
//!
//! One [`Participant`] per node and ceremony. The node moves it through the rounds:
//!
//! 1. [`Participant::start`]: round 1, a commitment to a random polynomial with a proof of
//!    knowledge of its constant term, broadcast to every other participant.
//! 2. [`Participant::receive_round1`]: store the others' packages and answer with an [`Echo`],
//!    the digest of every package received (own included), for every other participant.
//! 3. [`Participant::check_echoes`]: every echo must agree with ours; a disagreement is
//!    answered as a structured [`crate::echo::EchoMismatch`] for the node to settle with the
//!    signed messages (an equivocating sender, or an echoer that misquotes one). Only then frost's part 2 runs
//!    (it checks the proofs of knowledge) and yields one secret round-2 package per recipient,
//!    which the node seals to that recipient.
//! 4. [`Participant::receive_round2`]: frost's part 3 checks each received share against the
//!    sender's commitment and yields the [`KeyShare`] and [`PublicKeys`].
//!
//! Every error names the participant to blame where the protocol can tell.
//!
//! The same rounds refresh an existing key ([`Dkg::start_refresh`], frost `keys::refresh`):
//! every participant deals a sharing of zero, so the shares change and the group key does not,
//! and shares from before the refresh no longer combine with shares from after it.

use std::collections::BTreeMap;

use frost_core::keys::dkg::{self, round1, round2};
use frost_core::keys::{refresh, KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Field, Group, Identifier};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::curve::{identifier, Curve, Ed25519, Secp256k1};
use crate::share::{KeyShare, PublicKeys};
use crate::{from_frost, ProtocolError};

/// Who takes part in a ceremony, and with which threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgParams {
    /// This participant's node id.
    pub me: u16,
    /// Every participant's node id, this one included.
    pub participants: Vec<u16>,
    /// Shares needed to sign or decrypt.
    pub threshold: u16,
}

impl DkgParams {
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let mut sorted = self.participants.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.participants.len() {
            return Err(ProtocolError::invalid(
                "participants contain a duplicate id",
            ));
        }
        if !sorted.contains(&self.me) {
            return Err(ProtocolError::invalid(format!(
                "node {} is not among the participants",
                self.me
            )));
        }
        let n = sorted.len();
        if self.threshold < 2 || usize::from(self.threshold) > n {
            return Err(ProtocolError::invalid(format!(
                "threshold must be between 2 and the number of participants ({n}), got {}",
                self.threshold
            )));
        }
        Ok(())
    }

    fn others(&self) -> impl Iterator<Item = u16> + '_ {
        self.participants
            .iter()
            .copied()
            .filter(move |p| *p != self.me)
    }
}

use crate::echo::round1_digest as package_digest;
pub use crate::echo::Echo;

/// Wraps frost key material of one ciphersuite into the curve-tagged types.
pub trait Suite: Ciphersuite {
    fn wrap(
        share: frost_core::keys::KeyPackage<Self>,
        public: frost_core::keys::PublicKeyPackage<Self>,
    ) -> (KeyShare, PublicKeys);
}

impl Suite for Ed25519 {
    fn wrap(
        share: frost_core::keys::KeyPackage<Self>,
        public: frost_core::keys::PublicKeyPackage<Self>,
    ) -> (KeyShare, PublicKeys) {
        (KeyShare::Ed25519(share), PublicKeys::Ed25519(public))
    }
}

impl Suite for Secp256k1 {
    fn wrap(
        share: frost_core::keys::KeyPackage<Self>,
        public: frost_core::keys::PublicKeyPackage<Self>,
    ) -> (KeyShare, PublicKeys) {
        (KeyShare::Secp256k1(share), PublicKeys::Secp256k1(public))
    }
}

enum Stage<C: Ciphersuite> {
    Round1 { secret: round1::SecretPackage<C> },
    Echo { secret: round1::SecretPackage<C> },
    Round2 { secret: round2::SecretPackage<C> },
    Done,
}

/// One node's side of one ceremony. Secret state zeroizes on drop (frost's secret packages do).
pub struct Participant<C: Suite> {
    params: DkgParams,
    stage: Stage<C>,
    /// The share and public data being refreshed; `None` for a new key.
    refreshing: Option<Box<(KeyPackage<C>, PublicKeyPackage<C>)>>,
    own_round1: Vec<u8>,
    received: BTreeMap<Identifier<C>, round1::Package<C>>,
    echo: Echo,
}

impl<C: Suite> Participant<C> {
    /// Round 1: returns the participant and the round-1 package to send to every other one.
    pub fn start<R: RngCore + CryptoRng>(
        params: DkgParams,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        params.validate()?;
        let n = u16::try_from(params.participants.len())
            .map_err(|_| ProtocolError::invalid("too many participants"))?;
        let (secret, package) =
            dkg::part1::<C, _>(identifier(params.me)?, n, params.threshold, &mut *rng)
                .map_err(from_frost)?;
        Self::with_round1(params, secret, package, None)
    }

    /// Round 1 of a refresh of `share` (this participant's, with the key's `public` data):
    /// a commitment to a random polynomial with constant term zero. Every holder of the key
    /// must take part, with the key's threshold.
    pub fn start_refresh<R: RngCore + CryptoRng>(
        params: DkgParams,
        share: KeyPackage<C>,
        public: PublicKeyPackage<C>,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        params.validate()?;
        let mut holders: Vec<u16> = public
            .verifying_shares()
            .keys()
            .filter_map(crate::curve::identifier_to_u16)
            .collect();
        holders.sort_unstable();
        let mut participants = params.participants.clone();
        participants.sort_unstable();
        if holders != participants || Some(params.threshold) != public.min_signers() {
            return Err(ProtocolError::invalid(
                "a refresh needs every holder of the key, with the key's threshold",
            ));
        }
        if *share.identifier() != identifier(params.me)? {
            return Err(ProtocolError::invalid(
                "the share is not this participant's",
            ));
        }
        let n = u16::try_from(params.participants.len())
            .map_err(|_| ProtocolError::invalid("too many participants"))?;
        let (secret, package) = refresh::refresh_dkg_part1::<C, _>(
            identifier(params.me)?,
            n,
            params.threshold,
            &mut *rng,
        )
        .map_err(from_frost)?;
        Self::with_round1(params, secret, package, Some(Box::new((share, public))))
    }

    fn with_round1(
        params: DkgParams,
        secret: round1::SecretPackage<C>,
        package: round1::Package<C>,
        refreshing: Option<Box<(KeyPackage<C>, PublicKeyPackage<C>)>>,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        let own_round1 = package.serialize().map_err(from_frost)?;
        let mut echo = Echo::new();
        echo.insert(params.me, package_digest(&own_round1));
        let participant = Participant {
            params,
            stage: Stage::Round1 { secret },
            refreshing,
            own_round1: own_round1.clone(),
            received: BTreeMap::new(),
            echo,
        };
        Ok((participant, own_round1))
    }

    pub fn params(&self) -> &DkgParams {
        &self.params
    }

    /// Our own round-1 package, as sent.
    pub fn own_round1(&self) -> &[u8] {
        &self.own_round1
    }

    /// Takes the round-1 package of every other participant; returns the echo to send to all.
    pub fn receive_round1(
        &mut self,
        packages: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<Echo, ProtocolError> {
        let secret = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Round1 { secret } => secret,
            other => {
                self.stage = other;
                return Err(ProtocolError::invalid(
                    "round-1 packages arrived out of order",
                ));
            }
        };
        for from in self.params.others() {
            let bytes = packages
                .get(&from)
                .ok_or_else(|| ProtocolError::culprit(from, "sent no round-1 package"))?;
            let package = round1::Package::<C>::deserialize(bytes).map_err(|e| {
                ProtocolError::culprit(from, format!("malformed round-1 package: {e}"))
            })?;
            // A refresh commitment leaves out its constant term (zero, by construction).
            let expected =
                usize::from(self.params.threshold) - usize::from(self.refreshing.is_some());
            let degree_ok = package
                .commitment()
                .serialize()
                .map(|c| c.len() == expected)
                .unwrap_or(false);
            if !degree_ok {
                return Err(ProtocolError::culprit(
                    from,
                    "round-1 commitment does not match the threshold",
                ));
            }
            self.echo.insert(from, package_digest(bytes));
            self.received.insert(identifier(from)?, package);
        }
        if let Some(extra) = packages
            .keys()
            .find(|k| !self.params.participants.contains(k))
        {
            return Err(ProtocolError::invalid(format!(
                "round-1 package from non-participant {extra}"
            )));
        }
        self.stage = Stage::Echo { secret };
        Ok(self.echo.clone())
    }

    /// Compares every other participant's echo with ours; on agreement runs frost part 2 and
    /// returns the secret round-2 package for each recipient.
    pub fn check_echoes(
        &mut self,
        echoes: &BTreeMap<u16, Echo>,
    ) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
        let secret = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Echo { secret } => secret,
            other => {
                self.stage = other;
                return Err(ProtocolError::invalid("echoes arrived out of order"));
            }
        };
        for echoer in self.params.others() {
            let theirs = echoes
                .get(&echoer)
                .ok_or_else(|| ProtocolError::culprit(echoer, "sent no echo"))?;
            // Who lies when echoes disagree is for signatures to tell (crate::echo).
            crate::echo::compare(&self.echo, echoer, theirs).map_err(ProtocolError::Echo)?;
        }
        let (secret2, outgoing) = if self.refreshing.is_some() {
            refresh::refresh_dkg_part2(secret, &self.received)
        } else {
            dkg::part2(secret, &self.received)
        }
        .map_err(from_frost)?;
        let mut packages = BTreeMap::new();
        for (id, package) in outgoing {
            let to = crate::curve::identifier_to_u16(&id)
                .ok_or_else(|| ProtocolError::invalid("frost produced an unknown identifier"))?;
            packages.insert(to, Zeroizing::new(package.serialize().map_err(from_frost)?));
        }
        self.stage = Stage::Round2 { secret: secret2 };
        Ok(packages)
    }

    /// Takes the (already unsealed) round-2 package from every other participant and finishes.
    pub fn receive_round2(
        &mut self,
        packages: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<(KeyShare, PublicKeys), ProtocolError> {
        let secret = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Round2 { secret } => secret,
            other => {
                self.stage = other;
                return Err(ProtocolError::invalid(
                    "round-2 packages arrived out of order",
                ));
            }
        };
        let mut received = BTreeMap::new();
        for from in self.params.others() {
            let bytes = packages
                .get(&from)
                .ok_or_else(|| ProtocolError::culprit(from, "sent no round-2 package"))?;
            let package = round2::Package::<C>::deserialize(bytes).map_err(|e| {
                ProtocolError::culprit(from, format!("malformed round-2 package: {e}"))
            })?;
            received.insert(identifier(from)?, package);
        }
        if self.refreshing.is_some() {
            // frost's refresh checks the shares too, but names no culprit when one fails.
            for (from, package) in &received {
                let sender = self.received.get(from);
                if !sender.is_some_and(|r1| refresh_share_matches(self.params.me, package, r1)) {
                    let from = crate::curve::identifier_to_u16(from).unwrap_or(0);
                    return Err(ProtocolError::culprit(
                        from,
                        "refresh share does not match the sender's commitment",
                    ));
                }
            }
        }
        let (share, public) = match self.refreshing.take() {
            Some(old) => {
                let (old_share, old_public) = *old;
                refresh::refresh_dkg_shares(
                    &secret,
                    &self.received,
                    &received,
                    old_public,
                    old_share,
                )
            }
            None => dkg::part3(&secret, &self.received, &received),
        }
        .map_err(from_frost)?;
        Ok(C::wrap(share, public))
    }
}

/// Whether a refresh share sent to participant `me` lies on the sender's polynomial, whose
/// round-1 commitment leaves out the constant term (zero): `f(me)·G == Σ_k C_k·me^k`, k ≥ 1.
fn refresh_share_matches<C: Ciphersuite>(
    me: u16,
    package: &round2::Package<C>,
    round1: &round1::Package<C>,
) -> bool {
    type FieldOf<C> = <<C as Ciphersuite>::Group as Group>::Field;
    let scalar = |bytes: &[u8]| {
        let buf = <FieldOf<C> as Field>::Serialization::try_from(bytes).ok()?;
        <FieldOf<C> as Field>::deserialize(&buf).ok()
    };
    let check = || -> Option<bool> {
        let f = scalar(&package.signing_share().serialize())?;
        let x = scalar(&identifier::<C>(me).ok()?.serialize())?;
        let mut expected = <C::Group as Group>::identity();
        let mut power = x;
        for bytes in round1.commitment().serialize().ok()? {
            let buf = <C::Group as Group>::Serialization::try_from(bytes.as_slice()).ok()?;
            expected = expected + <C::Group as Group>::deserialize(&buf).ok()? * power;
            power = power * x;
        }
        Some(<C::Group as Group>::generator() * f == expected)
    };
    check().unwrap_or(false)
}

impl<C: Suite> std::fmt::Debug for Participant<C> {
    /// The parameters and the stage only: the secret polynomial and the shares received
    /// never print (DESIGN.md §8).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::Round1 { .. } => "round1",
            Stage::Echo { .. } => "echo",
            Stage::Round2 { .. } => "round2",
            Stage::Done => "done",
        };
        f.debug_struct("Participant")
            .field("params", &self.params)
            .field("stage", &stage)
            .field("refreshing", &self.refreshing.is_some())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A ceremony on either curve, for a node that runs both.
#[derive(Debug)]
pub enum Dkg {
    Ed25519(Participant<Ed25519>),
    Secp256k1(Participant<Secp256k1>),
}

macro_rules! each {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            Dkg::Ed25519($p) => $body,
            Dkg::Secp256k1($p) => $body,
        }
    };
}

impl Dkg {
    pub fn start<R: RngCore + CryptoRng>(
        curve: Curve,
        params: DkgParams,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        Ok(match curve {
            Curve::Ed25519 => {
                let (p, out) = Participant::start(params, rng)?;
                (Dkg::Ed25519(p), out)
            }
            Curve::Secp256k1 => {
                let (p, out) = Participant::start(params, rng)?;
                (Dkg::Secp256k1(p), out)
            }
        })
    }

    /// Round 1 of a refresh of this participant's `share` of the key with `public` data.
    pub fn start_refresh<R: RngCore + CryptoRng>(
        params: DkgParams,
        share: &KeyShare,
        public: &PublicKeys,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        Ok(match (share, public) {
            (KeyShare::Ed25519(s), PublicKeys::Ed25519(p)) => {
                let (p, out) = Participant::start_refresh(params, s.clone(), p.clone(), rng)?;
                (Dkg::Ed25519(p), out)
            }
            (KeyShare::Secp256k1(s), PublicKeys::Secp256k1(p)) => {
                let (p, out) = Participant::start_refresh(params, s.clone(), p.clone(), rng)?;
                (Dkg::Secp256k1(p), out)
            }
            _ => {
                return Err(ProtocolError::invalid(
                    "share and public data of different curves",
                ))
            }
        })
    }

    pub fn params(&self) -> &DkgParams {
        each!(self, p => p.params())
    }

    pub fn receive_round1(
        &mut self,
        packages: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<Echo, ProtocolError> {
        each!(self, p => p.receive_round1(packages))
    }

    pub fn check_echoes(
        &mut self,
        echoes: &BTreeMap<u16, Echo>,
    ) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
        each!(self, p => p.check_echoes(echoes))
    }

    pub fn receive_round2(
        &mut self,
        packages: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<(KeyShare, PublicKeys), ProtocolError> {
        each!(self, p => p.receive_round2(packages))
    }
}

/// Runs a whole ceremony among `participants` in memory, every message delivered at once: the
/// reference the node's networked ceremony is compared with (tests, benchmarks).
pub fn run_in_memory<R: RngCore + CryptoRng>(
    curve: Curve,
    threshold: u16,
    participants: &[u16],
    rng: &mut R,
) -> Result<Vec<(KeyShare, PublicKeys)>, ProtocolError> {
    let mut started = BTreeMap::new();
    for &me in participants {
        let params = DkgParams {
            me,
            participants: participants.to_vec(),
            threshold,
        };
        started.insert(me, Dkg::start(curve, params, rng)?);
    }
    run_rounds(started)
}

/// Refreshes every share of a key in memory (tests, benchmarks).
pub fn refresh_in_memory<R: RngCore + CryptoRng>(
    key: &[(KeyShare, PublicKeys)],
    rng: &mut R,
) -> Result<Vec<(KeyShare, PublicKeys)>, ProtocolError> {
    let participants: Vec<u16> = key.iter().map(|(s, _)| s.identifier()).collect();
    let mut started = BTreeMap::new();
    for (share, public) in key {
        let params = DkgParams {
            me: share.identifier(),
            participants: participants.clone(),
            threshold: share.threshold(),
        };
        started.insert(
            share.identifier(),
            Dkg::start_refresh(params, share, public, rng)?,
        );
    }
    run_rounds(started)
}

/// What every participant but `me` sent.
pub(crate) fn others_of<T: Clone>(me: u16, all: &BTreeMap<u16, T>) -> BTreeMap<u16, T> {
    all.iter()
        .filter(|(k, _)| **k != me)
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// Delivers every message of rounds 1, echo and 2 among participants that have started.
pub(crate) fn run_rounds(
    started: BTreeMap<u16, (Dkg, Vec<u8>)>,
) -> Result<Vec<(KeyShare, PublicKeys)>, ProtocolError> {
    let mut round1 = BTreeMap::new();
    let mut parts = BTreeMap::new();
    for (me, (p, package)) in started {
        parts.insert(me, p);
        round1.insert(me, package);
    }
    let mut echoes = BTreeMap::new();
    for (me, p) in parts.iter_mut() {
        echoes.insert(*me, p.receive_round1(&others_of(*me, &round1))?);
    }
    let mut round2: BTreeMap<u16, BTreeMap<u16, Zeroizing<Vec<u8>>>> = BTreeMap::new();
    for (me, p) in parts.iter_mut() {
        for (to, package) in p.check_echoes(&others_of(*me, &echoes))? {
            round2.entry(to).or_default().insert(*me, package);
        }
    }
    parts
        .iter_mut()
        .map(|(me, p)| p.receive_round2(&round2.remove(me).unwrap_or_default()))
        .collect()
}

/// Deliberately wrong messages, for the node's test-only fault hooks: they let integration
/// tests check that misbehaviour is detected and blamed on the right node.
pub mod faults {
    use super::*;
    use frost_core::keys::SigningShare;
    use frost_core::SigningKey;

    /// Starts a participant that broadcasts, consistently to everyone, a round-1 package whose
    /// proof of knowledge belongs to another polynomial.
    pub fn start_with_tampered_round1<R: RngCore + CryptoRng>(
        curve: Curve,
        params: DkgParams,
        rng: &mut R,
    ) -> Result<(Dkg, Vec<u8>), ProtocolError> {
        fn go<C: Suite, R: RngCore + CryptoRng>(
            params: DkgParams,
            rng: &mut R,
        ) -> Result<(Participant<C>, Vec<u8>), ProtocolError> {
            let (mut participant, honest) = Participant::<C>::start(params.clone(), rng)?;
            let honest = round1::Package::<C>::deserialize(&honest).map_err(from_frost)?;
            let (_, other) = Participant::<C>::start(params, rng)?;
            let other = round1::Package::<C>::deserialize(&other).map_err(from_frost)?;
            let bad =
                round1::Package::new(honest.commitment().clone(), *other.proof_of_knowledge())
                    .serialize()
                    .map_err(from_frost)?;
            participant
                .echo
                .insert(participant.params.me, package_digest(&bad));
            participant.own_round1 = bad.clone();
            Ok((participant, bad))
        }
        Ok(match curve {
            Curve::Ed25519 => go::<Ed25519, _>(params, rng).map(|(p, b)| (Dkg::Ed25519(p), b))?,
            Curve::Secp256k1 => {
                go::<Secp256k1, _>(params, rng).map(|(p, b)| (Dkg::Secp256k1(p), b))?
            }
        })
    }

    /// A second, valid round-1 package for the same participant: sending it to some peers and
    /// the honest one to others is equivocation.
    pub fn equivocating_round1<R: RngCore + CryptoRng>(
        curve: Curve,
        params: &DkgParams,
        rng: &mut R,
    ) -> Result<Vec<u8>, ProtocolError> {
        Dkg::start(curve, params.clone(), rng).map(|(_, package)| package)
    }

    /// A well-formed round-2 package carrying a random share instead of the polynomial's value.
    pub fn tampered_round2<R: RngCore + CryptoRng>(
        curve: Curve,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        fn go<C: Suite, R: RngCore + CryptoRng>(
            rng: &mut R,
        ) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
            let random = SigningKey::<C>::new(rng).serialize();
            let share = SigningShare::<C>::deserialize(&random).map_err(from_frost)?;
            round2::Package::new(share)
                .serialize()
                .map(Zeroizing::new)
                .map_err(from_frost)
        }
        match curve {
            Curve::Ed25519 => go::<Ed25519, _>(rng),
            Curve::Secp256k1 => go::<Secp256k1, _>(rng),
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn a_ceremony_in_progress_prints_no_secret() {
        let params = DkgParams {
            me: 1,
            participants: vec![1, 2],
            threshold: 2,
        };
        let (dkg, round1) = Dkg::start(Curve::Ed25519, params, &mut rand::rngs::OsRng).unwrap();
        let shown = format!("{dkg:?} {dkg:#?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        // No run of hex or of byte values: nothing of the polynomial or the package.
        let hex_run = shown
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(hex_run < 16, "{shown}");
        assert!(format!("{dkg:?}").len() < 200, "{shown}");
        assert!(!shown.contains(&hex::encode(&round1[..8])), "{shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn all_participants_agree_on_public_data() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let out = run_in_memory(curve, 2, &[1, 3, 4], &mut OsRng).unwrap();
            assert_eq!(out.len(), 3);
            assert!(out.windows(2).all(|w| w[0].1 == w[1].1));
            let shares: Vec<u16> = out.iter().map(|(s, _)| s.identifier()).collect();
            assert_eq!(shares, vec![1, 3, 4]);
            for (share, public) in &out {
                assert_eq!(
                    public.verifying_shares()[&share.identifier()],
                    share.verifying_share()
                );
            }
        }
    }

    #[test]
    fn a_refresh_keeps_the_group_key_and_old_shares_stop_combining() {
        use crate::sign::{sign_in_memory, verify};
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let old = run_in_memory(curve, 2, &[1, 2, 3], &mut OsRng).unwrap();
            let new = refresh_in_memory(&old, &mut OsRng).unwrap();
            let public = &new[0].1;
            assert!(new.windows(2).all(|w| w[0].1 == w[1].1));
            assert_eq!(public.group_key(), old[0].1.group_key());
            assert_ne!(public.verifying_shares(), old[0].1.verifying_shares());
            for ((n, _), (o, _)) in new.iter().zip(&old) {
                assert_ne!(n, o, "every share changed");
            }
            let sig = sign_in_memory(&[&new[0].0, &new[2].0], public, b"m", &mut OsRng).unwrap();
            assert!(verify(curve, &public.group_key(), b"m", &sig));
            // An old share with a new one: the old share is named invalid.
            let mixed = sign_in_memory(&[&old[0].0, &new[2].0], public, b"m", &mut OsRng);
            assert!(mixed.is_err());
        }
    }

    #[test]
    fn a_refresh_share_off_the_senders_polynomial_is_blamed_on_the_sender() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let old = run_in_memory(curve, 2, &[1, 2, 3], &mut OsRng).unwrap();
            let mut parts = BTreeMap::new();
            let mut r1 = BTreeMap::new();
            for (share, public) in &old {
                let params = DkgParams {
                    me: share.identifier(),
                    participants: vec![1, 2, 3],
                    threshold: 2,
                };
                let (p, pkg) = Dkg::start_refresh(params, share, public, &mut OsRng).unwrap();
                parts.insert(share.identifier(), p);
                r1.insert(share.identifier(), pkg);
            }
            let mut echoes = BTreeMap::new();
            for (me, p) in parts.iter_mut() {
                echoes.insert(*me, p.receive_round1(&others_of(*me, &r1)).unwrap());
            }
            let mut to1 = BTreeMap::new();
            for (me, p) in parts.iter_mut() {
                if let Some(pkg) = p.check_echoes(&others_of(*me, &echoes)).unwrap().remove(&1) {
                    to1.insert(*me, pkg);
                }
            }
            to1.insert(3, faults::tampered_round2(curve, &mut OsRng).unwrap());
            let p1 = parts.get_mut(&1).unwrap();
            let err = p1.receive_round2(&to1).err().unwrap();
            assert_eq!(err.culprit_id(), Some(3), "{err}");
        }
    }

    #[test]
    fn a_refresh_needs_every_holder() {
        let old = run_in_memory(Curve::Ed25519, 2, &[1, 2, 3], &mut OsRng).unwrap();
        let params = DkgParams {
            me: 1,
            participants: vec![1, 2],
            threshold: 2,
        };
        assert!(Dkg::start_refresh(params, &old[0].0, &old[0].1, &mut OsRng).is_err());
        let params = DkgParams {
            me: 1,
            participants: vec![1, 2, 3],
            threshold: 3,
        };
        assert!(Dkg::start_refresh(params, &old[0].0, &old[0].1, &mut OsRng).is_err());
    }

    #[test]
    fn bad_params_are_refused() {
        let bad = [
            DkgParams {
                me: 1,
                participants: vec![1, 2, 3],
                threshold: 1,
            },
            DkgParams {
                me: 1,
                participants: vec![1, 2, 3],
                threshold: 4,
            },
            DkgParams {
                me: 4,
                participants: vec![1, 2, 3],
                threshold: 2,
            },
            DkgParams {
                me: 1,
                participants: vec![1, 2, 2],
                threshold: 2,
            },
        ];
        for params in bad {
            assert!(Dkg::start(Curve::Ed25519, params, &mut OsRng).is_err());
        }
    }

    #[test]
    fn equivocation_shows_as_an_echo_mismatch_about_its_origin() {
        let ids = [1u16, 2, 3];
        let mut parts = BTreeMap::new();
        let mut r1 = BTreeMap::new();
        for &me in &ids {
            let params = DkgParams {
                me,
                participants: ids.to_vec(),
                threshold: 2,
            };
            let (p, pkg) = Dkg::start(Curve::Ed25519, params, &mut OsRng).unwrap();
            parts.insert(me, p);
            r1.insert(me, pkg);
        }
        let params3 = DkgParams {
            me: 3,
            participants: ids.to_vec(),
            threshold: 2,
        };
        let second = faults::equivocating_round1(Curve::Ed25519, &params3, &mut OsRng).unwrap();
        // Node 3 sends its honest package to node 1 and another one to node 2.
        let to1 = BTreeMap::from([(2, r1[&2].clone()), (3, r1[&3].clone())]);
        let to2 = BTreeMap::from([(1, r1[&1].clone()), (3, second)]);
        let e1 = parts.get_mut(&1).unwrap().receive_round1(&to1).unwrap();
        let e2 = parts.get_mut(&2).unwrap().receive_round1(&to2).unwrap();
        let err = parts
            .get_mut(&1)
            .unwrap()
            .check_echoes(&BTreeMap::from([(2, e2), (3, e1.clone())]))
            .err()
            .unwrap();
        // The crate names nobody on a mismatch (a lying echoer would look the same): it says
        // who claims what about whom, for the node to settle with signatures.
        let ProtocolError::Echo(m) = err else {
            panic!("expected an echo mismatch, got {err}")
        };
        assert_eq!((m.echoer, m.origin), (2, 3), "{m}");
        assert_eq!(m.ours, Some(crate::echo::round1_digest(&r1[&3])));
        assert!(m.theirs.is_some() && m.theirs != m.ours);
    }

    #[test]
    fn tampered_packages_are_blamed_on_their_sender() {
        let ids = [1u16, 2, 3];
        let mut parts = BTreeMap::new();
        let mut r1 = BTreeMap::new();
        for &me in &ids {
            let params = DkgParams {
                me,
                participants: ids.to_vec(),
                threshold: 2,
            };
            let (p, pkg) = Dkg::start(Curve::Secp256k1, params, &mut OsRng).unwrap();
            parts.insert(me, p);
            r1.insert(me, pkg);
        }
        let params2 = parts[&2].params().clone();
        let (_, bad) =
            faults::start_with_tampered_round1(Curve::Secp256k1, params2, &mut OsRng).unwrap();
        let p1 = parts.get_mut(&1).unwrap();
        let echo = p1
            .receive_round1(&BTreeMap::from([(2, bad), (3, r1[&3].clone())]))
            .unwrap();
        let err = p1
            .check_echoes(&BTreeMap::from([(2, echo.clone()), (3, echo)]))
            .err()
            .unwrap();
        assert_eq!(err.culprit_id(), Some(2), "{err}");

        let tampered = faults::tampered_round2(Curve::Ed25519, &mut OsRng).unwrap();
        // Round 2: replace node 3's share to node 1 with a random one.
        let mut parts = BTreeMap::new();
        let mut r1 = BTreeMap::new();
        for &me in &ids {
            let params = DkgParams {
                me,
                participants: ids.to_vec(),
                threshold: 2,
            };
            let (p, pkg) = Dkg::start(Curve::Ed25519, params, &mut OsRng).unwrap();
            parts.insert(me, p);
            r1.insert(me, pkg);
        }
        let mut echoes = BTreeMap::new();
        for (me, p) in parts.iter_mut() {
            let others = r1
                .iter()
                .filter(|(k, _)| *k != me)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            echoes.insert(*me, p.receive_round1(&others).unwrap());
        }
        let mut to1 = BTreeMap::new();
        for (me, p) in parts.iter_mut() {
            let others = echoes
                .iter()
                .filter(|(k, _)| *k != me)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            let out = p.check_echoes(&others).unwrap();
            if let Some(pkg) = out.get(&1) {
                to1.insert(*me, pkg.clone());
            }
        }
        to1.insert(3, tampered);
        let err = parts
            .get_mut(&1)
            .unwrap()
            .receive_round2(&to1)
            .err()
            .unwrap();
        assert_eq!(err.culprit_id(), Some(3), "{err}");
    }
}
