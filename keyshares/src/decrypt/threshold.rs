//! The curve-independent threshold steps: a node's partial D_i = s_i·E with its proof, the
//! combiner's check of that proof, and the Lagrange combination Σ λ_i·D_i = s·E.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::dleq::{self, Statement};
use super::group::PrimeGroup;
use super::lagrange;
use super::{DecryptError, PartialDecryption};

/// D = s·E and a proof that it used the same s as Y = s·G. `e` must already be validated.
pub(crate) fn partial<G: PrimeGroup, R: RngCore + CryptoRng>(
    s: &G::Scalar,
    e: &G::Point,
    rng: &mut R,
) -> PartialDecryption {
    let d = G::mul(e, s);
    let y = G::mul_base(s);
    let proof = dleq::prove(s, &Statement::<G> { y: &y, e, d: &d }, rng);
    PartialDecryption {
        point: G::encode_point(&d),
        proof,
    }
}

/// Checks a partial against the node's verifying share. `e` must already be validated.
pub(crate) fn verify<G: PrimeGroup>(
    verifying_share: &[u8],
    e: &G::Point,
    partial: &PartialDecryption,
) -> Result<(), DecryptError> {
    let y = G::decode_point(verifying_share, "verifying share")?;
    let d = G::decode_point(&partial.point, "partial decryption point")?;
    dleq::verify(&Statement::<G> { y: &y, e, d: &d }, &partial.proof)
}

/// Σ λ_i·D_i over exactly the given identifiers. Constant-time multiplications: the sum is the
/// secret s·E, and t partials are as sensitive as the sum.
pub(crate) fn combine<G: PrimeGroup>(
    partials: &BTreeMap<u16, PartialDecryption>,
) -> Result<Zeroizing<G::Point>, DecryptError> {
    let ids: Vec<u16> = partials.keys().copied().collect();
    let lambdas = lagrange::coefficients_at_zero::<G>(&ids)?;
    let mut acc: Option<Zeroizing<G::Point>> = None;
    for (partial, lambda) in partials.values().zip(&lambdas) {
        let d = Zeroizing::new(G::decode_point(&partial.point, "partial decryption point")?);
        let term = Zeroizing::new(G::mul(&d, lambda));
        acc = Some(match acc {
            None => term,
            Some(sum) => Zeroizing::new(*sum + *term),
        });
    }
    acc.ok_or(DecryptError::NoPartials)
}
