//! Resharing: moves an existing key to a new committee and/or threshold under the same group
//! key, without the secret ever being reconstructed (Desmedt–Jajodia; DESIGN.md §3).
//!
//! Each dealer — an old participant; at least the old threshold of them take part — shares its
//! own share s_i again with a fresh Feldman VSS of the new threshold t' over the new
//! participants' ids (vsss-rs). The constant term of its commitment must be its old verifying
//! share Y_i = s_i·G, which pins what it deals. New participant j weights the sub-shares it
//! receives with the Lagrange coefficients λ_i of the dealer set at 0:
//! s'_j = Σ λ_i·f_i(j), a degree-(t'−1) sharing of Σ λ_i·s_i = s. Every member, leavers
//! included, derives the new verifying shares and the group key from the commitments alone.
//!
//! One [`Reshare`] per node and ceremony, moved through the same rounds as the DKG:
//!
//! 1. [`Reshare::start`]: a dealer deals and broadcasts its commitment; any other member
//!    broadcasts an empty payload.
//! 2. [`Reshare::receive_round1`]: every commitment is checked (size, points, constant term)
//!    and answered with an [`Echo`] of all of them.
//! 3. [`Reshare::check_echoes`]: every echo must agree with ours; a disagreement is answered as
//!    a structured [`crate::echo::EchoMismatch`] for the node to settle with signatures. Only
//!    then a dealer hands out its sub-shares, one per new participant, which the node seals to
//!    their recipients.
//! 4. [`Reshare::receive_round2`]: a new participant checks each sub-share against its
//!    dealer's commitment (vsss-rs) and combines them; every member builds the new public data.
//!
//! Every error names the participant to blame where the protocol can tell.

use std::collections::BTreeMap;

use frost_core::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_core::VerifyingKey;
use rand_core::{CryptoRng, RngCore};
use vsss_rs::elliptic_curve::{Field, Group};
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ParticipantIdGeneratorType, Share,
    ValueGroup,
};
use zeroize::Zeroizing;

use crate::arith::{lagrange_at_zero, scalar_of, Arith};
use crate::curve::{identifier, identifier_to_u16, Curve, Ed25519, Secp256k1};
use crate::dkg::Echo;
use crate::share::{KeyShare, PublicKeys};
use crate::{from_frost, ProtocolError};

/// Who deals, who receives, and the key being reshared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareParams {
    /// This node's id.
    pub me: u16,
    /// Old participants that deal a share of their share (at least the old threshold).
    pub dealers: Vec<u16>,
    /// The new committee.
    pub new_participants: Vec<u16>,
    /// Shares the new committee needs to sign or decrypt.
    pub new_threshold: u16,
}

fn has_duplicates(ids: &[u16]) -> bool {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() != ids.len()
}

impl ReshareParams {
    /// Every ceremony member (dealers ∪ new participants), sorted.
    pub fn members(&self) -> Vec<u16> {
        let mut all: Vec<u16> = self
            .dealers
            .iter()
            .chain(&self.new_participants)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn validate(&self, old: &PublicKeys) -> Result<(), ProtocolError> {
        if has_duplicates(&self.dealers) || has_duplicates(&self.new_participants) {
            return Err(ProtocolError::invalid(
                "dealers or new participants contain a duplicate id",
            ));
        }
        if self.new_participants.contains(&0) {
            return Err(ProtocolError::invalid("participant id 0 is reserved"));
        }
        let old_ids = old.verifying_shares();
        if let Some(d) = self.dealers.iter().find(|d| !old_ids.contains_key(d)) {
            return Err(ProtocolError::invalid(format!(
                "dealer {d} is not an old participant"
            )));
        }
        let old_threshold = old
            .threshold()
            .ok_or_else(|| ProtocolError::invalid("the old public data has no threshold"))?;
        if self.dealers.len() < usize::from(old_threshold) {
            return Err(ProtocolError::invalid(format!(
                "{} dealers cannot reshare a key of threshold {old_threshold}",
                self.dealers.len()
            )));
        }
        if !self.members().contains(&self.me) {
            return Err(ProtocolError::invalid(format!(
                "node {} is neither a dealer nor a new participant",
                self.me
            )));
        }
        let n = self.new_participants.len();
        if self.new_threshold < 2 || usize::from(self.new_threshold) > n {
            return Err(ProtocolError::invalid(format!(
                "new threshold must be between 2 and the number of new participants ({n}), got {}",
                self.new_threshold
            )));
        }
        Ok(())
    }

    fn is_dealer(&self, id: u16) -> bool {
        self.dealers.contains(&id)
    }

    fn is_new(&self, id: u16) -> bool {
        self.new_participants.contains(&id)
    }
}

/// vsss-rs's view of a sub-share: (new participant id, f_i(id)), both scalars.
type SubShare<C> = DefaultShare<
    IdentifierPrimeField<<C as Arith>::Scalar>,
    IdentifierPrimeField<<C as Arith>::Scalar>,
>;
/// vsss-rs's view of a commitment point.
type Verifier<C> = ValueGroup<<C as Arith>::Point>;

/// Σ_k C_k·x^k, the commitment to f(x) (Horner's rule).
fn evaluate_commitment<C: Arith>(commitment: &[C::Point], x: u16) -> C::Point {
    let x = scalar_of::<C>(x);
    commitment
        .iter()
        .rev()
        .fold(C::Point::identity(), |acc, c| acc * x + c)
}

pub(crate) fn parse_commitment<C: Arith>(bytes: &[u8], threshold: u16) -> Option<Vec<C::Point>> {
    let len = C::point_to_bytes(&C::Point::generator()).len();
    if bytes.len() != len * usize::from(threshold) {
        return None;
    }
    bytes.chunks(len).map(C::point_from_bytes).collect()
}

use crate::echo::round1_digest as commitment_digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Round1,
    Echo,
    Round2,
    Done,
}

/// One node's side of one resharing, on one curve.
struct Session<C: Arith> {
    params: ReshareParams,
    members: Vec<u16>,
    stage: Stage,
    verifying_key: VerifyingKey<C>,
    group_key: C::Point,
    /// Y_i, the old verifying share of each dealer.
    old_shares: BTreeMap<u16, C::Point>,
    /// [C_i0 .. C_i,t'−1] of every dealer, own included.
    commitments: BTreeMap<u16, Vec<C::Point>>,
    echo: Echo,
    /// A dealer's sub-shares f_me(j) by new participant j, until they are handed out; its own
    /// one (if it is a new participant too) until round 2. Zeroized on drop.
    subshares: BTreeMap<u16, Zeroizing<C::Scalar>>,
}

impl<C: Arith> Session<C> {
    fn start<R: RngCore + CryptoRng>(
        params: ReshareParams,
        old: &PublicKeys,
        share: Option<&KeyShare>,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        let old = C::public_package(old)
            .ok_or_else(|| ProtocolError::invalid("old public data of another curve"))?;
        let point_of = |bytes: Result<Vec<u8>, frost_core::Error<C>>| {
            bytes
                .ok()
                .and_then(|b| C::point_from_bytes(&b))
                .ok_or_else(|| ProtocolError::invalid("the old public data holds an invalid point"))
        };
        let group_key = point_of(old.verifying_key().serialize())?;
        let mut old_shares = BTreeMap::new();
        for &dealer in &params.dealers {
            let share = old
                .verifying_shares()
                .get(&identifier::<C>(dealer)?)
                .ok_or_else(|| {
                    ProtocolError::invalid(format!("dealer {dealer} is not an old participant"))
                })?;
            old_shares.insert(dealer, point_of(share.serialize())?);
        }
        let mut session = Session {
            members: params.members(),
            params,
            stage: Stage::Round1,
            verifying_key: *old.verifying_key(),
            group_key,
            old_shares,
            commitments: BTreeMap::new(),
            echo: Echo::new(),
            subshares: BTreeMap::new(),
        };
        if !session.params.is_dealer(session.params.me) {
            return Ok((session, Vec::new()));
        }
        let share = share
            .ok_or_else(|| ProtocolError::invalid("a dealer needs its old share"))
            .and_then(|s| {
                C::key_package(s)
                    .ok_or_else(|| ProtocolError::invalid("old share of another curve"))
            })?;
        let payload = session.deal(share, rng)?;
        Ok((session, payload))
    }

    /// This dealer's old signing share, checked against the old public data: a mismatch would
    /// get us blamed by every peer.
    fn own_secret(&self, share: &KeyPackage<C>) -> Result<Zeroizing<C::Scalar>, ProtocolError> {
        let me = self.params.me;
        if identifier_to_u16(share.identifier()) != Some(me) {
            return Err(ProtocolError::invalid(format!(
                "the old share given to node {me} belongs to another participant"
            )));
        }
        let bytes = Zeroizing::new(share.signing_share().serialize());
        let secret = C::scalar_from_bytes(&bytes)
            .map(Zeroizing::new)
            .ok_or_else(|| ProtocolError::invalid("the old share is malformed"))?;
        if C::Point::generator() * *secret != self.old_shares[&me] {
            return Err(ProtocolError::invalid(
                "the old share does not match its verifying share",
            ));
        }
        Ok(secret)
    }

    /// Feldman-shares our old share to the new participants (vsss-rs); returns the commitment
    /// to broadcast.
    fn deal<R: RngCore + CryptoRng>(
        &mut self,
        share: &KeyPackage<C>,
        rng: &mut R,
    ) -> Result<Vec<u8>, ProtocolError> {
        let secret = self.own_secret(share)?;
        let new = &self.params.new_participants;
        let ids: Vec<IdentifierPrimeField<C::Scalar>> = new
            .iter()
            .map(|j| IdentifierPrimeField(scalar_of::<C>(*j)))
            .collect();
        let (shares, verifiers) =
            vsss_rs::feldman::split_secret_with_participant_generator::<SubShare<C>, Verifier<C>>(
                usize::from(self.params.new_threshold),
                new.len(),
                &IdentifierPrimeField(*secret),
                None,
                &mut *rng,
                &[ParticipantIdGeneratorType::list(&ids)],
            )
            .map_err(|e| ProtocolError::invalid(format!("vsss-rs split: {e}")))?;
        let shares = Zeroizing::new(shares);
        for (j, sub) in new.iter().zip(shares.iter()) {
            if sub.identifier.0 != scalar_of::<C>(*j) {
                return Err(ProtocolError::invalid("vsss-rs dealt to an unexpected id"));
            }
            self.subshares.insert(*j, Zeroizing::new(sub.value.0));
        }
        // vsss-rs puts the generator first, then C_0 .. C_t'−1.
        let commitment: Vec<C::Point> = verifiers.iter().skip(1).map(|v| v.0).collect();
        let payload: Vec<u8> = commitment.iter().flat_map(C::point_to_bytes).collect();
        self.echo
            .insert(self.params.me, commitment_digest(&payload));
        self.commitments.insert(self.params.me, commitment);
        Ok(payload)
    }

    /// Moves to the next stage, or refuses a message that arrives out of order. A failure in
    /// the step that follows leaves the session `Done`.
    fn enter(&mut self, expected: Stage, what: &str) -> Result<(), ProtocolError> {
        if self.stage != expected {
            return Err(ProtocolError::invalid(format!(
                "{what} arrived out of order"
            )));
        }
        self.stage = Stage::Done;
        Ok(())
    }

    fn others(&self) -> impl Iterator<Item = u16> + '_ {
        let me = self.params.me;
        self.members.iter().copied().filter(move |m| *m != me)
    }

    fn receive_round1(&mut self, payloads: &BTreeMap<u16, Vec<u8>>) -> Result<Echo, ProtocolError> {
        self.enter(Stage::Round1, "round-1 payloads")?;
        if let Some(extra) = payloads.keys().find(|k| !self.members.contains(k)) {
            return Err(ProtocolError::invalid(format!(
                "round-1 payload from non-member {extra}"
            )));
        }
        for from in self.others().collect::<Vec<_>>() {
            let bytes = payloads
                .get(&from)
                .ok_or_else(|| ProtocolError::culprit(from, "sent no round-1 payload"))?;
            if !self.params.is_dealer(from) {
                if !bytes.is_empty() {
                    return Err(ProtocolError::culprit(
                        from,
                        "sent a commitment but is not a dealer",
                    ));
                }
                continue;
            }
            let commitment = self.check_commitment(from, bytes)?;
            self.echo.insert(from, commitment_digest(bytes));
            self.commitments.insert(from, commitment);
        }
        self.stage = Stage::Echo;
        Ok(self.echo.clone())
    }

    fn check_commitment(&self, dealer: u16, bytes: &[u8]) -> Result<Vec<C::Point>, ProtocolError> {
        if bytes.is_empty() {
            return Err(ProtocolError::culprit(
                dealer,
                "is a dealer but sent no commitment",
            ));
        }
        let t = self.params.new_threshold;
        let commitment = parse_commitment::<C>(bytes, t).ok_or_else(|| {
            ProtocolError::culprit(
                dealer,
                format!("malformed commitment: expected {t} valid points other than the identity"),
            )
        })?;
        // C_0 = Y_i: the dealer shares its own old share, nothing else.
        if commitment[0] != self.old_shares[&dealer] {
            return Err(ProtocolError::culprit(
                dealer,
                "commitment does not open to the dealer's old verifying share",
            ));
        }
        Ok(commitment)
    }

    fn check_echoes(
        &mut self,
        echoes: &BTreeMap<u16, Echo>,
    ) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
        self.enter(Stage::Echo, "echoes")?;
        for echoer in self.others() {
            let theirs = echoes
                .get(&echoer)
                .ok_or_else(|| ProtocolError::culprit(echoer, "sent no echo"))?;
            self.compare_echo(echoer, theirs)?;
        }
        // Our own sub-share, if we are also a new participant, stays here until round 2.
        let me = self.params.me;
        let outgoing = self
            .subshares
            .iter()
            .filter(|(j, _)| **j != me)
            .map(|(j, s)| (*j, C::scalar_to_bytes(s)))
            .collect();
        self.subshares.retain(|j, _| *j == me);
        self.stage = Stage::Round2;
        Ok(outgoing)
    }

    /// Who lies when echoes disagree is for signatures to tell (crate::echo).
    fn compare_echo(&self, echoer: u16, theirs: &Echo) -> Result<(), ProtocolError> {
        crate::echo::compare(&self.echo, echoer, theirs).map_err(ProtocolError::Echo)
    }

    fn receive_round2(
        &mut self,
        payloads: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<(Option<KeyShare>, PublicKeys), ProtocolError> {
        self.enter(Stage::Round2, "round-2 payloads")?;
        let shares = self.new_verifying_shares()?;
        let public = self.public_package(&shares)?;
        let me = self.params.me;
        if !self.params.is_new(me) {
            return Ok((None, C::wrap_public(public)));
        }
        let secret = self.combine(payloads)?;
        // Cannot fail once every sub-share verified; checked because it is the result.
        if C::Point::generator() * *secret != shares[&me] {
            return Err(ProtocolError::invalid(
                "the new share does not match its verifying share",
            ));
        }
        let key = KeyPackage::new(
            identifier::<C>(me)?,
            SigningShare::deserialize(&C::scalar_to_bytes(&secret)).map_err(from_frost)?,
            *public
                .verifying_shares()
                .get(&identifier::<C>(me)?)
                .ok_or_else(|| ProtocolError::invalid("own verifying share missing"))?,
            self.verifying_key,
            self.params.new_threshold,
        );
        let (share, public) = C::wrap(key, public);
        Ok((Some(share), public))
    }

    /// Y'_j = Σ_i λ_i·(Σ_k C_ik·j^k) for every new participant j, after checking that the
    /// dealt constant terms still add up to the group key. The dealers' commitments are first
    /// combined into one, D_k = Σ_i λ_i·C_ik, so each Y'_j costs t' point operations, not
    /// t'·dealers.
    fn new_verifying_shares(&self) -> Result<BTreeMap<u16, C::Point>, ProtocolError> {
        let width = usize::from(self.params.new_threshold);
        let mut combined = vec![C::Point::identity(); width];
        for (dealer, commitment) in &self.commitments {
            let lambda = lagrange_at_zero::<C>(*dealer, &self.params.dealers)?;
            for (d, c) in combined.iter_mut().zip(commitment) {
                *d += *c * lambda;
            }
        }
        if combined[0] != self.group_key {
            return Err(ProtocolError::invalid(
                "the dealers' shares do not add up to the group key: the old public data is inconsistent",
            ));
        }
        Ok(self
            .params
            .new_participants
            .iter()
            .map(|&j| (j, evaluate_commitment::<C>(&combined, j)))
            .collect())
    }

    fn public_package(
        &self,
        shares: &BTreeMap<u16, C::Point>,
    ) -> Result<PublicKeyPackage<C>, ProtocolError> {
        let mut verifying_shares = BTreeMap::new();
        for (j, y) in shares {
            let share = VerifyingShare::deserialize(&C::point_to_bytes(y)).map_err(from_frost)?;
            verifying_shares.insert(identifier::<C>(*j)?, share);
        }
        Ok(PublicKeyPackage::new(
            verifying_shares,
            self.verifying_key,
            Some(self.params.new_threshold),
        ))
    }

    /// s'_me = Σ_i λ_i·f_i(me), each sub-share verified against its dealer's commitment.
    fn combine(
        &mut self,
        payloads: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<Zeroizing<C::Scalar>, ProtocolError> {
        let me = self.params.me;
        let mut total = Zeroizing::new(C::Scalar::ZERO);
        for &dealer in &self.params.dealers {
            let value = if dealer == me {
                self.subshares
                    .remove(&me)
                    .ok_or_else(|| ProtocolError::invalid("own sub-share missing"))?
            } else {
                let bytes = payloads
                    .get(&dealer)
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| ProtocolError::culprit(dealer, "sent no sub-share"))?;
                C::scalar_from_bytes(bytes)
                    .map(Zeroizing::new)
                    .ok_or_else(|| ProtocolError::culprit(dealer, "sent a malformed sub-share"))?
            };
            self.verify_subshare(dealer, &value)?;
            *total += lagrange_at_zero::<C>(dealer, &self.params.dealers)? * *value;
        }
        Ok(total)
    }

    /// Feldman check through vsss-rs: f_i(me)·G = Σ_k C_ik·me^k.
    fn verify_subshare(&self, dealer: u16, value: &C::Scalar) -> Result<(), ProtocolError> {
        let commitment: Vec<Verifier<C>> = self.commitments[&dealer]
            .iter()
            .map(|c| ValueGroup(*c))
            .collect();
        let set = <Vec<Verifier<C>> as FeldmanVerifierSet<SubShare<C>, Verifier<C>>>::feldman_set_with_generator_and_verifiers(
            ValueGroup(C::Point::generator()),
            &commitment,
        );
        let share = Zeroizing::new(SubShare::<C>::with_identifier_and_value(
            IdentifierPrimeField(scalar_of::<C>(self.params.me)),
            IdentifierPrimeField(*value),
        ));
        set.verify_share(&*share).map_err(|_| {
            ProtocolError::culprit(dealer, "sub-share does not match the dealer's commitment")
        })
    }
}

enum Inner {
    Ed25519(Session<Ed25519>),
    Secp256k1(Session<Secp256k1>),
}

/// One node's side of one resharing, on either curve. Secret state (the sub-shares a dealer
/// owes) zeroizes on drop.
pub struct Reshare {
    inner: Inner,
}

impl std::fmt::Debug for Reshare {
    /// Nothing of the sub-shares a dealer owes (DESIGN.md §8).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reshare { <redacted> }")
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Inner::Ed25519($s) => $body,
            Inner::Secp256k1($s) => $body,
        }
    };
}

impl Reshare {
    /// Round 1. `share` is this node's old share: required iff `me` is a dealer (ignored
    /// otherwise). Returns the state and the payload to broadcast to every other member: the
    /// serialised commitment for a dealer, an empty Vec for a non-dealer.
    pub fn start<R: RngCore + CryptoRng>(
        params: ReshareParams,
        old: PublicKeys,
        share: Option<&KeyShare>,
        rng: &mut R,
    ) -> Result<(Reshare, Vec<u8>), ProtocolError> {
        params.validate(&old)?;
        let (inner, payload) = match old.curve() {
            Curve::Ed25519 => {
                let (s, p) = Session::start(params, &old, share, rng)?;
                (Inner::Ed25519(s), p)
            }
            Curve::Secp256k1 => {
                let (s, p) = Session::start(params, &old, share, rng)?;
                (Inner::Secp256k1(s), p)
            }
        };
        Ok((Reshare { inner }, payload))
    }

    pub fn params(&self) -> &ReshareParams {
        each!(&self.inner, s => &s.params)
    }

    /// Takes the round-1 payload of every other member (empty for non-dealers: a non-empty one
    /// from a non-dealer, or an empty one from a dealer, is that sender's fault) and returns the
    /// echo to send to all: the digest of every dealer's commitment, own included.
    pub fn receive_round1(
        &mut self,
        payloads: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<Echo, ProtocolError> {
        each!(&mut self.inner, s => s.receive_round1(payloads))
    }

    /// Every other member's echo must equal ours. Then returns the private payloads to send:
    /// for a dealer, one sub-share per new participant other than itself (a serialised
    /// scalar, for the node to seal); for a non-dealer, an empty map.
    pub fn check_echoes(
        &mut self,
        echoes: &BTreeMap<u16, Echo>,
    ) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
        each!(&mut self.inner, s => s.check_echoes(echoes))
    }

    /// Takes the unsealed private payloads from the other members (only the dealers' matter,
    /// and only to a new participant; the others are ignored). Returns this node's new share
    /// (`None` for a leaver) and the new public data, identical on every member.
    pub fn receive_round2(
        &mut self,
        payloads: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<(Option<KeyShare>, PublicKeys), ProtocolError> {
        each!(&mut self.inner, s => s.receive_round2(payloads))
    }
}

fn others_of<T: Clone>(all: &BTreeMap<u16, T>, me: u16) -> BTreeMap<u16, T> {
    all.iter()
        .filter(|(k, _)| **k != me)
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// Runs a whole resharing in memory, every message delivered at once (tests, benchmarks), from
/// the old shares of (at least) the dealers. Returns (member id, new share, public data) for
/// each member, sorted by id.
pub fn run_in_memory<R: RngCore + CryptoRng>(
    old: &[(KeyShare, PublicKeys)],
    dealers: &[u16],
    new_participants: &[u16],
    new_threshold: u16,
    rng: &mut R,
) -> Result<Vec<(u16, Option<KeyShare>, PublicKeys)>, ProtocolError> {
    let public = &old
        .first()
        .ok_or_else(|| ProtocolError::invalid("no old shares"))?
        .1;
    let old_shares: BTreeMap<u16, &KeyShare> =
        old.iter().map(|(s, _)| (s.identifier(), s)).collect();
    let params = |me| ReshareParams {
        me,
        dealers: dealers.to_vec(),
        new_participants: new_participants.to_vec(),
        new_threshold,
    };
    let mut parts = BTreeMap::new();
    let mut round1 = BTreeMap::new();
    for me in params(0).members() {
        let share = old_shares.get(&me).copied();
        let (part, payload) = Reshare::start(params(me), public.clone(), share, rng)?;
        parts.insert(me, part);
        round1.insert(me, payload);
    }
    run_rounds(parts, &round1)
}

/// Rounds 1 to 2 of a reshare whose members started with `round1` payloads, in memory.
pub(crate) fn run_rounds(
    mut parts: BTreeMap<u16, Reshare>,
    round1: &BTreeMap<u16, Vec<u8>>,
) -> Result<Vec<(u16, Option<KeyShare>, PublicKeys)>, ProtocolError> {
    let mut echoes = BTreeMap::new();
    for (me, part) in parts.iter_mut() {
        echoes.insert(*me, part.receive_round1(&others_of(round1, *me))?);
    }
    let mut round2: BTreeMap<u16, BTreeMap<u16, Zeroizing<Vec<u8>>>> = BTreeMap::new();
    for (me, part) in parts.iter_mut() {
        for (to, payload) in part.check_echoes(&others_of(&echoes, *me))? {
            round2.entry(to).or_default().insert(*me, payload);
        }
    }
    parts
        .iter_mut()
        .map(|(me, part)| {
            // As the node does: an empty payload from every member that sent nothing.
            let mut received = round2.remove(me).unwrap_or_default();
            for from in round1.keys().filter(|k| *k != me) {
                received.entry(*from).or_default();
            }
            let (share, public) = part.receive_round2(&received)?;
            Ok((*me, share, public))
        })
        .collect()
}

/// Deliberately wrong messages, for the node's test-only fault hooks.
pub mod faults {
    use super::*;

    /// A well-formed sub-share that does not match the dealer's commitment: a random scalar.
    pub fn tampered_subshare<R: RngCore + CryptoRng>(
        curve: Curve,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        Ok(crate::arith::random_scalar(curve, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{aggregate, commit, sign, signing_package, verify, PackageSummary};
    use rand::rngs::OsRng;

    const CURVES: [Curve; 2] = [Curve::Ed25519, Curve::Secp256k1];

    fn old_key(curve: Curve, threshold: u16, ids: &[u16]) -> Vec<(KeyShare, PublicKeys)> {
        crate::dkg::run_in_memory(curve, threshold, ids, &mut OsRng).unwrap()
    }

    /// Signs with the first `t` new shares and verifies under `group_key`.
    fn quorum_signs(shares: &[&KeyShare], public: &PublicKeys, group_key: &[u8]) {
        let curve = public.curve();
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for share in shares {
            let (n, c) = commit(share, &mut OsRng).unwrap();
            nonces.insert(share.identifier(), n);
            commitments.insert(share.identifier(), c);
        }
        let package = signing_package(curve, &commitments, b"reshared").unwrap();
        let mut sig_shares = BTreeMap::new();
        for share in shares {
            let n = nonces.remove(&share.identifier()).unwrap();
            let approve = |_: &PackageSummary| Ok::<(), ProtocolError>(());
            sig_shares.insert(
                share.identifier(),
                sign(share, n, &package, approve).unwrap(),
            );
        }
        let sig = aggregate(public, &package, &sig_shares).unwrap();
        assert!(verify(curve, group_key, b"reshared", &sig));
    }

    /// Does Σ λ_j·Y'_j over `ids` give the group key?
    fn interpolates<C: Arith>(public: &PublicKeys, ids: &[u16]) -> bool {
        let shares = public.verifying_shares();
        let sum = ids.iter().fold(C::Point::identity(), |acc, j| {
            let y = C::point_from_bytes(&shares[j]).unwrap();
            acc + y * lagrange_at_zero::<C>(*j, ids).unwrap()
        });
        C::point_to_bytes(&sum) == public.group_key()
    }

    fn interpolates_on(public: &PublicKeys, ids: &[u16]) -> bool {
        match public.curve() {
            Curve::Ed25519 => interpolates::<Ed25519>(public, ids),
            Curve::Secp256k1 => interpolates::<Secp256k1>(public, ids),
        }
    }

    /// Reshares `old` and checks everything a caller relies on.
    fn reshare_and_check(old: &[(KeyShare, PublicKeys)], dealers: &[u16], new_ids: &[u16], t: u16) {
        let old_public = &old[0].1;
        let out = run_in_memory(old, dealers, new_ids, t, &mut OsRng).unwrap();
        let mut members: Vec<u16> = dealers.iter().chain(new_ids).copied().collect();
        members.sort_unstable();
        members.dedup();
        assert_eq!(out.iter().map(|(m, _, _)| *m).collect::<Vec<_>>(), members);
        let public = &out[0].2;
        assert!(
            out.iter().all(|(_, _, p)| p == public),
            "public data differs"
        );
        assert_eq!(public.group_key(), old_public.group_key());
        assert_eq!(public.threshold(), Some(t));
        assert_eq!(
            public
                .verifying_shares()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            new_ids
        );
        let mut new_shares = Vec::new();
        for (member, share, _) in &out {
            match share {
                Some(share) => {
                    assert!(new_ids.contains(member));
                    assert_eq!(share.identifier(), *member);
                    assert_eq!(share.threshold(), t);
                    assert_eq!(public.verifying_shares()[member], share.verifying_share());
                    new_shares.push(share);
                }
                None => assert!(
                    !new_ids.contains(member),
                    "new participant {member} has no share"
                ),
            }
        }
        assert_eq!(new_shares.len(), new_ids.len());
        // The last t' of the new committee sign for the old group key.
        quorum_signs(
            &new_shares[new_shares.len() - usize::from(t)..],
            public,
            &old_public.group_key(),
        );
        assert!(interpolates_on(public, &new_ids[..usize::from(t)]));
        assert!(!interpolates_on(public, &new_ids[..usize::from(t) - 1]));
    }

    #[test]
    fn two_of_three_to_three_of_five() {
        for curve in CURVES {
            let old = old_key(curve, 2, &[1, 2, 3]);
            // Node 2 does not deal but stays; 4 and 5 join.
            reshare_and_check(&old, &[1, 3], &[1, 2, 3, 4, 5], 3);
        }
    }

    #[test]
    fn three_of_five_to_two_of_three() {
        for curve in CURVES {
            let old = old_key(curve, 3, &[1, 2, 3, 4, 5]);
            reshare_and_check(&old, &[1, 2, 3], &[1, 2, 3], 2);
            // 3 and 5 leave, 6 joins, 2 neither deals nor leaves.
            reshare_and_check(&old, &[3, 4, 5], &[2, 4, 6], 2);
        }
    }

    #[test]
    fn reshared_keys_can_be_reshared_again() {
        let old = old_key(Curve::Secp256k1, 2, &[1, 2, 3]);
        let once = run_in_memory(&old, &[2, 3], &[3, 4, 5, 6], 3, &mut OsRng).unwrap();
        let again: Vec<(KeyShare, PublicKeys)> = once
            .into_iter()
            .filter_map(|(_, s, p)| s.map(|s| (s, p)))
            .collect();
        reshare_and_check(&again, &[4, 5, 6], &[1, 2], 2);
    }

    /// Starts every member of a ceremony; returns their states and round-1 payloads.
    fn start_all(
        old: &[(KeyShare, PublicKeys)],
        dealers: &[u16],
        new_ids: &[u16],
        t: u16,
    ) -> (BTreeMap<u16, Reshare>, BTreeMap<u16, Vec<u8>>) {
        let params = |me| ReshareParams {
            me,
            dealers: dealers.to_vec(),
            new_participants: new_ids.to_vec(),
            new_threshold: t,
        };
        let mut parts = BTreeMap::new();
        let mut payloads = BTreeMap::new();
        for me in params(0).members() {
            let share = old.iter().map(|(s, _)| s).find(|s| s.identifier() == me);
            let (p, payload) =
                Reshare::start(params(me), old[0].1.clone(), share, &mut OsRng).unwrap();
            parts.insert(me, p);
            payloads.insert(me, payload);
        }
        (parts, payloads)
    }

    #[test]
    fn tampered_subshare_is_blamed_on_its_dealer() {
        for curve in CURVES {
            let old = old_key(curve, 2, &[1, 2, 3]);
            let (mut parts, r1) = start_all(&old, &[1, 2, 3], &[1, 2, 3, 4, 5], 3);
            let mut echoes = BTreeMap::new();
            for (me, p) in parts.iter_mut() {
                echoes.insert(*me, p.receive_round1(&others_of(&r1, *me)).unwrap());
            }
            let mut to4 = BTreeMap::new();
            for (me, p) in parts.iter_mut() {
                let mut out = p.check_echoes(&others_of(&echoes, *me)).unwrap();
                to4.insert(*me, out.remove(&4).unwrap_or_default());
            }
            to4.remove(&4);
            to4.insert(2, faults::tampered_subshare(curve, &mut OsRng).unwrap());
            let err = parts
                .get_mut(&4)
                .unwrap()
                .receive_round2(&to4)
                .err()
                .unwrap();
            assert_eq!(err.culprit_id(), Some(2), "{err}");
        }
    }

    #[test]
    fn commitment_to_another_share_is_blamed_on_its_dealer() {
        for curve in CURVES {
            let old = old_key(curve, 2, &[1, 2, 3]);
            let (mut parts, mut r1) = start_all(&old, &[1, 2, 3], &[1, 2, 3, 4], 2);
            // Dealer 1 deals node 2's share (a valid commitment, but C_0 = Y_2).
            r1.insert(1, r1[&2].clone());
            let err = parts
                .get_mut(&4)
                .unwrap()
                .receive_round1(&others_of(&r1, 4))
                .err()
                .unwrap();
            assert_eq!(err.culprit_id(), Some(1), "{err}");
        }
    }

    #[test]
    fn round1_payloads_must_fit_the_sender_role() {
        type Case = fn(&BTreeMap<u16, Vec<u8>>) -> (u16, Vec<u8>);
        let cases: [Case; 4] = [
            |r1| (4, r1[&1].clone()),           // a commitment from a non-dealer
            |_| (2, Vec::new()),                // nothing from a dealer
            |r1| (2, r1[&2][..32].to_vec()),    // too few points
            |r1| (2, vec![0xff; r1[&2].len()]), // not points
        ];
        let old = old_key(Curve::Ed25519, 2, &[1, 2, 3]);
        for case in cases {
            let (mut parts, mut r1) = start_all(&old, &[1, 2], &[2, 3, 4], 2);
            let (sender, payload) = case(&r1);
            r1.insert(sender, payload);
            let err = parts
                .get_mut(&3)
                .unwrap()
                .receive_round1(&others_of(&r1, 3))
                .err()
                .unwrap();
            assert_eq!(err.culprit_id(), Some(sender), "{err}");
        }
    }

    #[test]
    fn an_equivocating_dealer_shows_as_an_echo_mismatch_about_it() {
        for curve in CURVES {
            let old = old_key(curve, 2, &[1, 2, 3]);
            let (mut parts, r1) = start_all(&old, &[1, 3], &[1, 2, 3], 2);
            // Dealer 3 deals a second time and sends that commitment to node 2 only.
            let params3 = parts[&3].params().clone();
            let share3 = old.iter().map(|(s, _)| s).find(|s| s.identifier() == 3);
            let (_, second) =
                Reshare::start(params3, old[0].1.clone(), share3, &mut OsRng).unwrap();
            let mut to2 = others_of(&r1, 2);
            to2.insert(3, second);
            let e1 = parts
                .get_mut(&1)
                .unwrap()
                .receive_round1(&others_of(&r1, 1))
                .unwrap();
            let e2 = parts.get_mut(&2).unwrap().receive_round1(&to2).unwrap();
            let err = parts
                .get_mut(&1)
                .unwrap()
                .check_echoes(&BTreeMap::from([(2, e2), (3, e1.clone())]))
                .err()
                .unwrap();
            // Nobody is named by the crate: node 2 quotes dealer 3 differently, and only the
            // node, with dealer 3's signatures, can prove which of the two lies.
            let ProtocolError::Echo(m) = err else {
                panic!("expected an echo mismatch, got {err}")
            };
            assert_eq!((m.echoer, m.origin), (2, 3), "{m}");
            assert!(m.ours.is_some() && m.theirs.is_some() && m.ours != m.theirs);
        }
    }

    #[test]
    fn bad_params_are_refused() {
        let old = old_key(Curve::Ed25519, 3, &[1, 2, 3, 4, 5]);
        let public = &old[0].1;
        let ok = ReshareParams {
            me: 1,
            dealers: vec![1, 2, 3],
            new_participants: vec![1, 2, 3],
            new_threshold: 2,
        };
        assert_eq!(ok.validate(public), Ok(()));
        let bad = [
            // Too few dealers for the old threshold.
            ReshareParams {
                dealers: vec![1, 2],
                ..ok.clone()
            },
            // A dealer that never held a share.
            ReshareParams {
                dealers: vec![1, 2, 7],
                ..ok.clone()
            },
            ReshareParams {
                dealers: vec![1, 2, 2],
                ..ok.clone()
            },
            ReshareParams {
                new_participants: vec![1, 2, 2],
                ..ok.clone()
            },
            ReshareParams {
                new_participants: vec![0, 1, 2],
                ..ok.clone()
            },
            ReshareParams {
                new_threshold: 4,
                ..ok.clone()
            },
            ReshareParams {
                new_threshold: 1,
                ..ok.clone()
            },
            ReshareParams {
                me: 9,
                ..ok.clone()
            },
        ];
        for params in bad {
            assert!(params.validate(public).is_err(), "{params:?}");
            let share = old
                .iter()
                .map(|(s, _)| s)
                .find(|s| s.identifier() == params.me);
            assert!(Reshare::start(params, public.clone(), share, &mut OsRng).is_err());
        }
        // A dealer without its old share, or with another participant's.
        assert!(Reshare::start(ok.clone(), public.clone(), None, &mut OsRng).is_err());
        assert!(Reshare::start(ok, public.clone(), Some(&old[1].0), &mut OsRng).is_err());
    }
}
