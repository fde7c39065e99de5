//! Chaum-Pedersen proof that log_G(Y) = log_E(D), made non-interactive with Fiat-Shamir
//! (DESIGN.md §6, "Verifiable partials").
//!
//! Prover, knowing s with Y = s·G and D = s·E:
//!   k  = H(nonce-DST ‖ group ‖ s ‖ 32 fresh random bytes ‖ Y ‖ E ‖ D)   (hedged nonce)
//!   c  = H(challenge-DST ‖ group ‖ Y ‖ E ‖ D ‖ k·G ‖ k·E)
//!   z  = k + c·s;  proof = c ‖ z
//! Verifier recomputes A1 = z·G − c·Y and A2 = z·E − c·D and checks c = H(… ‖ A1 ‖ A2).
//!
//! H is SHA-512 reduced mod the group order. Every point has a fixed-length encoding per group,
//! and the group label has a length prefix, so the transcript parses one way only. The nonce
//! is derived from the share *and* fresh randomness: a broken RNG cannot repeat k for two
//! different statements (which would reveal s), and a fault cannot be steered by the
//! randomness alone.

use rand_core::{CryptoRng, RngCore};
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::group::PrimeGroup;
use super::DecryptError;

/// Length of an encoded proof: challenge ‖ response, 32 bytes each.
pub(crate) const PROOF_LEN: usize = 64;

/// Domain separation of the Fiat-Shamir challenge.
const CHALLENGE_DST: &[u8] = b"keyquorum/dleq/v1";
/// Domain separation of the nonce derivation, distinct from the challenge's.
const NONCE_DST: &[u8] = b"keyquorum/dleq/v1/nonce";

/// The public statement: Y = s·G and D = s·E.
pub(crate) struct Statement<'a, G: PrimeGroup> {
    pub(crate) y: &'a G::Point,
    pub(crate) e: &'a G::Point,
    pub(crate) d: &'a G::Point,
}

/// Starts a SHA-512 transcript with a DST and the group label.
fn transcript<G: PrimeGroup>(dst: &[u8]) -> Sha512 {
    let mut h = Sha512::new();
    h.update(dst);
    // Labels are short constants; the length byte keeps "label ‖ data" unambiguous.
    h.update([G::LABEL.len() as u8]);
    h.update(G::LABEL);
    h
}

fn absorb_statement<G: PrimeGroup>(h: &mut Sha512, st: &Statement<'_, G>) {
    h.update(G::encode_point(st.y));
    h.update(G::encode_point(st.e));
    h.update(G::encode_point(st.d));
}

fn challenge<G: PrimeGroup>(st: &Statement<'_, G>, a1: &G::Point, a2: &G::Point) -> G::Scalar {
    let mut h = transcript::<G>(CHALLENGE_DST);
    absorb_statement(&mut h, st);
    h.update(G::encode_point(a1));
    h.update(G::encode_point(a2));
    let wide: [u8; 64] = h.finalize().into();
    G::scalar_from_wide(&wide)
}

/// Proves the statement with the witness `s`.
pub(crate) fn prove<G: PrimeGroup, R: RngCore + CryptoRng>(
    s: &G::Scalar,
    st: &Statement<'_, G>,
    rng: &mut R,
) -> [u8; PROOF_LEN] {
    let mut fresh = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(fresh.as_mut());
    let s_bytes = Zeroizing::new(G::scalar_to_bytes(s));

    let mut h = transcript::<G>(NONCE_DST);
    h.update(s_bytes.as_ref());
    h.update(fresh.as_ref());
    absorb_statement(&mut h, st);
    let mut wide = Zeroizing::new([0u8; 64]);
    // Straight into the zeroizing buffer, so no copy of the nonce seed is left on the stack.
    h.finalize_into(GenericArray::from_mut_slice(wide.as_mut()));
    let k = Zeroizing::new(G::scalar_from_wide(&wide));

    let a1 = G::mul_base(&k);
    let a2 = G::mul(st.e, &k);
    let c = challenge(st, &a1, &a2);
    let z = *k + c * *s;

    let mut proof = [0u8; PROOF_LEN];
    proof[..32].copy_from_slice(&G::scalar_to_bytes(&c));
    proof[32..].copy_from_slice(&G::scalar_to_bytes(&z));
    proof
}

/// Verifies a proof for the statement.
pub(crate) fn verify<G: PrimeGroup>(
    st: &Statement<'_, G>,
    proof: &[u8],
) -> Result<(), DecryptError> {
    let proof: &[u8; PROOF_LEN] = proof.try_into().map_err(|_| DecryptError::MalformedProof)?;
    let (c_bytes, z_bytes) = proof.split_at(32);
    let c = scalar::<G>(c_bytes)?;
    let z = scalar::<G>(z_bytes)?;
    let minus_c = G::scalar_from_u16(0) - c;

    let a1 = G::vartime_mul_add_base(&minus_c, st.y, &z);
    let a2 = G::vartime_lincomb(&z, st.e, &minus_c, st.d);
    if G::scalar_eq(&challenge(st, &a1, &a2), &c) {
        Ok(())
    } else {
        Err(DecryptError::InvalidProof)
    }
}

/// Decodes one canonical scalar of a proof; non-canonical encodings would make proofs malleable.
fn scalar<G: PrimeGroup>(bytes: &[u8]) -> Result<G::Scalar, DecryptError> {
    let arr: &[u8; 32] = bytes.try_into().map_err(|_| DecryptError::MalformedProof)?;
    G::scalar_from_canonical(arr).ok_or(DecryptError::MalformedProof)
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::super::secp256k1::Secp256k1;
    use super::super::x25519::Ed25519;
    use super::*;

    /// A random instance: (s, Y = s·G, E, D = s·E).
    fn instance<G: PrimeGroup>() -> (G::Scalar, G::Point, G::Point, G::Point) {
        let mut wide = [0u8; 64];
        OsRng.fill_bytes(&mut wide);
        let s = G::scalar_from_wide(&wide);
        OsRng.fill_bytes(&mut wide);
        let e = G::mul_base(&G::scalar_from_wide(&wide));
        (s, G::mul_base(&s), e, G::mul(&e, &s))
    }

    fn roundtrip_and_tamper<G: PrimeGroup>() {
        let (s, y, e, d) = instance::<G>();
        let st = Statement::<G> {
            y: &y,
            e: &e,
            d: &d,
        };
        let proof = prove(&s, &st, &mut OsRng);
        assert_eq!(verify(&st, &proof), Ok(()));

        // Every bit of the proof matters.
        for i in [0, 31, 32, 63] {
            let mut bad = proof;
            bad[i] ^= 1;
            assert!(verify(&st, &bad).is_err(), "flipped byte {i} accepted");
        }
        assert_eq!(verify(&st, &proof[..63]), Err(DecryptError::MalformedProof));

        // Another point, another verifying share, another base.
        let (_, other, _, _) = instance::<G>();
        let wrong_d = Statement::<G> {
            y: &y,
            e: &e,
            d: &(d + other),
        };
        assert_eq!(verify(&wrong_d, &proof), Err(DecryptError::InvalidProof));
        let wrong_y = Statement::<G> {
            y: &other,
            e: &e,
            d: &d,
        };
        assert_eq!(verify(&wrong_y, &proof), Err(DecryptError::InvalidProof));
        let wrong_e = Statement::<G> {
            y: &y,
            e: &other,
            d: &d,
        };
        assert_eq!(verify(&wrong_e, &proof), Err(DecryptError::InvalidProof));

        // A false statement (D = s'·E for s' ≠ s) cannot be proven with s.
        let false_d = G::mul(&e, &(s + G::scalar_from_u16(1)));
        let lie = Statement::<G> {
            y: &y,
            e: &e,
            d: &false_d,
        };
        let forged = prove(&s, &lie, &mut OsRng);
        assert_eq!(verify(&lie, &forged), Err(DecryptError::InvalidProof));
    }

    #[test]
    fn dleq_ed25519_verifies_and_rejects_tampering() {
        roundtrip_and_tamper::<Ed25519>();
    }

    #[test]
    fn dleq_secp256k1_verifies_and_rejects_tampering() {
        roundtrip_and_tamper::<Secp256k1>();
    }

    #[test]
    fn dleq_rejects_non_canonical_scalars() {
        let (s, y, e, d) = instance::<Ed25519>();
        let st = Statement::<Ed25519> {
            y: &y,
            e: &e,
            d: &d,
        };
        let mut proof = prove(&s, &st, &mut OsRng);
        // z + l encodes the same residue; a strict verifier must refuse it.
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l: [u8; 32] =
            hex_literal("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(proof[32 + i]) + u16::from(l[i]) + carry;
            proof[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "z + l < 2^254 always fits");
        assert_eq!(verify(&st, &proof), Err(DecryptError::MalformedProof));
    }

    fn hex_literal(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// DESIGN.md §6: a cheating node can grind a proof for D + T (T of order 8) by retrying its
    /// nonce until the torsion term drops out of the verification equation (1 try in 8). The
    /// bare DLEQ check accepts such a proof; the partial check must not.
    #[test]
    fn ground_proof_for_torsion_partial_passes_dleq_but_not_verify_partial() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        use curve25519_dalek::traits::IsIdentity;

        use super::super::threshold;
        use super::super::PartialDecryption;

        // A point of order 8 (RFC 7748's low-order u 325606…504).
        let u8_order =
            hex_literal("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        let t = MontgomeryPoint(u8_order).to_edwards(0).unwrap();
        assert!(t.is_small_order() && !t.is_identity());

        let (s, y, e, d) = instance::<Ed25519>();
        let cheat = d + t;
        let st = Statement::<Ed25519> {
            y: &y,
            e: &e,
            d: &cheat,
        };
        let mut forged = None;
        for _ in 0..500 {
            let mut wide = [0u8; 64];
            OsRng.fill_bytes(&mut wide);
            let k = Ed25519::scalar_from_wide(&wide);
            let (a1, a2) = (Ed25519::mul_base(&k), e * k);
            let c = challenge(&st, &a1, &a2);
            // The verifier multiplies D + T by the integer l − c, and l ≡ 5 mod 8, so the
            // torsion term vanishes when (l − c)·T = 0, i.e. for c ≡ 5 mod 8.
            if (t * -c).is_identity() {
                let z = k + c * s;
                let mut proof = [0u8; PROOF_LEN];
                proof[..32].copy_from_slice(&c.to_bytes());
                proof[32..].copy_from_slice(&z.to_bytes());
                forged = Some(proof);
                break;
            }
        }
        let proof = forged.expect("each try succeeds with probability 1/8");
        assert_eq!(verify(&st, &proof), Ok(()), "the grinding attack is real");

        let partial = PartialDecryption {
            point: cheat.compress().to_bytes().to_vec(),
            proof: proof.to_vec(),
        };
        assert_eq!(
            threshold::verify::<Ed25519>(&y.compress().to_bytes(), &e, &partial),
            Err(DecryptError::EdwardsNotPrimeOrder {
                what: "partial decryption point"
            })
        );
    }

    #[test]
    fn dleq_nonces_are_fresh() {
        // Same statement twice: the hedged nonce must still differ (fresh randomness).
        let (s, y, e, d) = instance::<Secp256k1>();
        let st = Statement::<Secp256k1> {
            y: &y,
            e: &e,
            d: &d,
        };
        assert_ne!(prove(&s, &st, &mut OsRng), prove(&s, &st, &mut OsRng));
    }
}
