//! Checking many partial decryptions of one key at once (DESIGN.md §6, "Verifiable partials"):
//! each verifying share and each ephemeral point is decoded once however many partials use it,
//! and every proof is still checked, all of them in one multiscalar multiplication
//! ([`super::dleq::verify_batch`]). When the batch fails, every proof is checked alone, so each
//! bad partial is named.

use std::collections::HashMap;

use rand_core::{CryptoRng, RngCore};

use super::dleq::{self, Statement};
use super::group::PrimeGroup;
use super::secp256k1::Secp256k1;
use super::x25519::{self, Ed25519};
use super::{DecryptError, PartialDecryption, Scheme};

/// Partials to check together; results come back in the order they were pushed.
pub struct PartialBatch<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Ed25519(GroupBatch<'a, Ed25519>),
    Secp256k1(GroupBatch<'a, Secp256k1>),
}

impl<'a> PartialBatch<'a> {
    /// An empty batch for partials of a key of `scheme`.
    pub fn new(scheme: Scheme) -> Self {
        let inner = match scheme {
            Scheme::HpkeX25519 => Inner::Ed25519(GroupBatch::new(x25519::lift_enc)),
            Scheme::EciesSecp256k1 => Inner::Secp256k1(GroupBatch::new(|bytes| {
                Secp256k1::decode_point(bytes, "ephemeral public key")
            })),
        };
        Self { inner }
    }

    /// Adds the partial of the holder with `verifying_share` (FROST `VerifyingShare` bytes) for
    /// the ciphertext whose ephemeral point is `ephemeral`. A bad encoding is reported in that
    /// item's result.
    pub fn push(
        &mut self,
        verifying_share: &[u8],
        ephemeral: &[u8],
        partial: &'a PartialDecryption,
    ) {
        match &mut self.inner {
            Inner::Ed25519(b) => b.push(verifying_share, ephemeral, partial),
            Inner::Secp256k1(b) => b.push(verifying_share, ephemeral, partial),
        }
    }

    /// How many partials were pushed.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Ed25519(b) => b.items.len(),
            Inner::Secp256k1(b) => b.items.len(),
        }
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One result per pushed partial, as [`super::verify_partial`] would give it. The random
    /// weights of the batch test come from `rng`.
    pub fn verify<R: RngCore + CryptoRng>(self, rng: &mut R) -> Vec<Result<(), DecryptError>> {
        match self.inner {
            Inner::Ed25519(b) => b.verify(rng),
            Inner::Secp256k1(b) => b.verify(rng),
        }
    }
}

type Decoded<G> = Result<<G as PrimeGroup>::Point, DecryptError>;

/// A decoded statement (Y, E, D) and its proof's bytes.
type Item<'a, G> = Result<
    (
        <G as PrimeGroup>::Point,
        <G as PrimeGroup>::Point,
        <G as PrimeGroup>::Point,
        &'a [u8],
    ),
    DecryptError,
>;

struct GroupBatch<'a, G: PrimeGroup> {
    decode_ephemeral: fn(&[u8]) -> Decoded<G>,
    shares: HashMap<Vec<u8>, Decoded<G>>,
    ephemerals: HashMap<Vec<u8>, Decoded<G>>,
    items: Vec<Item<'a, G>>,
}

impl<'a, G: PrimeGroup> GroupBatch<'a, G> {
    fn new(decode_ephemeral: fn(&[u8]) -> Decoded<G>) -> Self {
        Self {
            decode_ephemeral,
            shares: HashMap::new(),
            ephemerals: HashMap::new(),
            items: Vec::new(),
        }
    }

    fn push(&mut self, verifying_share: &[u8], ephemeral: &[u8], partial: &'a PartialDecryption) {
        let y = cached::<G>(&mut self.shares, verifying_share, |b| {
            G::decode_point(b, "verifying share")
        });
        let decode_ephemeral = self.decode_ephemeral;
        let e = cached::<G>(&mut self.ephemerals, ephemeral, decode_ephemeral);
        let item = y.and_then(|y| {
            let e = e?;
            let d = G::decode_point(&partial.point, "partial decryption point")?;
            Ok((y, e, d, partial.proof.as_slice()))
        });
        self.items.push(item);
    }

    fn verify<R: RngCore + CryptoRng>(self, rng: &mut R) -> Vec<Result<(), DecryptError>> {
        let decoded: Vec<usize> = (0..self.items.len())
            .filter(|i| self.items[*i].is_ok())
            .collect();
        let statements: Vec<(Statement<'_, G>, &[u8])> = self
            .items
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .map(|(y, e, d, proof)| (Statement { y, e, d }, *proof))
            .collect();
        let mut checked = match dleq::verify_batch(&statements, rng) {
            Ok(()) => vec![Ok(()); statements.len()],
            Err(each) => each,
        }
        .into_iter();
        let mut results: Vec<Result<(), DecryptError>> = self
            .items
            .iter()
            .map(|item| item.as_ref().map(|_| ()).map_err(Clone::clone))
            .collect();
        for i in decoded {
            results[i] = checked.next().unwrap_or(Err(DecryptError::Internal(
                "batch verification lost a result",
            )));
        }
        results
    }
}

fn cached<G: PrimeGroup>(
    cache: &mut HashMap<Vec<u8>, Decoded<G>>,
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Decoded<G>,
) -> Decoded<G> {
    if let Some(hit) = cache.get(bytes) {
        return hit.clone();
    }
    let decoded = decode(bytes);
    cache.insert(bytes.to_vec(), decoded.clone());
    decoded
}
