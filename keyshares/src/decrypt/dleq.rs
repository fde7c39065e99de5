//! Chaum-Pedersen proof that log_G(Y) = log_E(D), made non-interactive with Fiat-Shamir
//! (DESIGN.md §6, "Verifiable partials").
//!
//! Prover, knowing s with Y = s·G and D = s·E:
//!   k  = H(nonce-DST ‖ group ‖ s ‖ 32 fresh random bytes ‖ Y ‖ E ‖ D)   (hedged nonce)
//!   A1 = k·G,  A2 = k·E
//!   c  = H(challenge-DST ‖ group ‖ Y ‖ E ‖ D ‖ A1 ‖ A2)
//!   z  = k + c·s;  proof = A1 ‖ A2 ‖ z
//! Verifier recomputes c and checks z·G = A1 + c·Y and z·E = A2 + c·D.
//!
//! The proof carries its commitments (A1, A2) rather than the challenge so that many proofs can
//! be checked at once: with random weights the 2n equations fold into one multiscalar
//! multiplication ([`verify_batch`], the standard small-exponent batch test). The equations are
//! checked after clearing the cofactor: Y, E and D are prime-order points (the callers decode
//! them so), and a small-order component of a commitment cannot help a prover, since it is
//! bound into c before z is chosen. That spares a subgroup check per commitment.
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

/// Length of an encoded proof in the group: A1 ‖ A2 ‖ z.
pub(crate) const fn proof_len<G: PrimeGroup>() -> usize {
    2 * G::POINT_LEN + 32
}

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

/// Y ‖ E ‖ D as the transcripts absorb them. Callers that already hold these encodings (a
/// point received as bytes, a verifying share used for many proofs) pass them to the
/// `*_encoded` functions instead: an Edwards encoding costs a field inversion.
pub(crate) fn encode_statement<G: PrimeGroup>(st: &Statement<'_, G>) -> Vec<u8> {
    let mut encoded = G::encode_point(st.y);
    encoded.extend_from_slice(&G::encode_point(st.e));
    encoded.extend_from_slice(&G::encode_point(st.d));
    encoded
}

/// The challenge over the encoded statement and the commitments as encoded in the proof.
fn challenge<G: PrimeGroup>(encoded: &[u8], a1: &[u8], a2: &[u8]) -> G::Scalar {
    let mut h = transcript::<G>(CHALLENGE_DST);
    h.update(encoded);
    h.update(a1);
    h.update(a2);
    let wide: [u8; 64] = h.finalize().into();
    G::scalar_from_wide(&wide)
}

/// Proves the statement with the witness `s`.
pub(crate) fn prove<G: PrimeGroup, R: RngCore + CryptoRng>(
    s: &G::Scalar,
    st: &Statement<'_, G>,
    rng: &mut R,
) -> Vec<u8> {
    prove_encoded(s, st, &encode_statement(st), rng)
}

/// [`prove`] with the statement's encoding (`encode_statement`) given.
pub(crate) fn prove_encoded<G: PrimeGroup, R: RngCore + CryptoRng>(
    s: &G::Scalar,
    st: &Statement<'_, G>,
    encoded: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    debug_assert_eq!(encoded, encode_statement(st).as_slice());
    let mut fresh = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(fresh.as_mut());
    let s_bytes = Zeroizing::new(G::scalar_to_bytes(s));

    let mut h = transcript::<G>(NONCE_DST);
    h.update(s_bytes.as_ref());
    h.update(fresh.as_ref());
    h.update(encoded);
    let mut wide = Zeroizing::new([0u8; 64]);
    // Straight into the zeroizing buffer, so no copy of the nonce seed is left on the stack.
    h.finalize_into(GenericArray::from_mut_slice(wide.as_mut()));
    let k = Zeroizing::new(G::scalar_from_wide(&wide));

    let a1 = G::encode_point(&G::mul_base(&k));
    let a2 = G::encode_point(&G::mul(st.e, &k));
    let c = challenge::<G>(encoded, &a1, &a2);
    let z = *k + c * *s;

    let mut proof = Vec::with_capacity(proof_len::<G>());
    proof.extend_from_slice(&a1);
    proof.extend_from_slice(&a2);
    proof.extend_from_slice(&G::scalar_to_bytes(&z));
    proof
}

/// A proof decoded and its challenge computed: what both verifiers need.
struct Parsed<G: PrimeGroup> {
    a1: G::Point,
    a2: G::Point,
    c: G::Scalar,
    z: G::Scalar,
}

fn parse<G: PrimeGroup>(encoded: &[u8], proof: &[u8]) -> Result<Parsed<G>, DecryptError> {
    if proof.len() != proof_len::<G>() {
        return Err(DecryptError::MalformedProof);
    }
    let (a1_bytes, rest) = proof.split_at(G::POINT_LEN);
    let (a2_bytes, z_bytes) = rest.split_at(G::POINT_LEN);
    Ok(Parsed {
        a1: G::decode_commitment(a1_bytes)?,
        a2: G::decode_commitment(a2_bytes)?,
        c: challenge::<G>(encoded, a1_bytes, a2_bytes),
        z: scalar::<G>(z_bytes)?,
    })
}

/// Verifies a proof for the statement.
pub(crate) fn verify<G: PrimeGroup>(
    st: &Statement<'_, G>,
    proof: &[u8],
) -> Result<(), DecryptError> {
    verify_encoded(st, &encode_statement(st), proof)
}

/// [`verify`] with the statement's encoding (`encode_statement`) given.
pub(crate) fn verify_encoded<G: PrimeGroup>(
    st: &Statement<'_, G>,
    encoded: &[u8],
    proof: &[u8],
) -> Result<(), DecryptError> {
    debug_assert_eq!(encoded, encode_statement(st).as_slice());
    let p = parse::<G>(encoded, proof)?;
    let minus_c = G::scalar_from_u16(0) - p.c;
    // z·G − c·Y − A1 and z·E − c·D − A2 must vanish (up to a small-order component).
    let r1 = G::vartime_mul_add_base(&minus_c, st.y, &p.z) - p.a1;
    let r2 = G::vartime_lincomb(&p.z, st.e, &minus_c, st.d) - p.a2;
    if G::is_identity(&G::clear_cofactor(&r1)) && G::is_identity(&G::clear_cofactor(&r2)) {
        Ok(())
    } else {
        Err(DecryptError::InvalidProof)
    }
}

/// Verifies many proofs at once: `Ok(())` if every proof verifies, otherwise the result of
/// [`verify`] for each (so the caller can name every bad prover).
///
/// The batch test: with independent random weights r_i, u_i,
///   Σ r_i·(z_i·G − c_i·Y_i − A1_i) + u_i·(z_i·E_i − c_i·D_i − A2_i) = 0
/// after clearing the cofactor. A batch that holds a bad proof passes with probability at most
/// 1/ℓ (ℓ the group order), since the weights are drawn after the proofs are fixed.
#[cfg(test)]
pub(crate) fn verify_batch<G: PrimeGroup, R: RngCore + CryptoRng>(
    items: &[(Statement<'_, G>, &[u8])],
    rng: &mut R,
) -> Result<(), Vec<Result<(), DecryptError>>> {
    let encoded: Vec<Vec<u8>> = items.iter().map(|(st, _)| encode_statement(st)).collect();
    let items: Vec<(Statement<'_, G>, &[u8], &[u8])> = items
        .iter()
        .zip(&encoded)
        .map(|((st, proof), enc)| {
            (
                Statement {
                    y: st.y,
                    e: st.e,
                    d: st.d,
                },
                enc.as_slice(),
                *proof,
            )
        })
        .collect();
    verify_batch_encoded(&items, rng)
}

/// [`verify_batch`] over (statement, its encoding, proof) items.
pub(crate) fn verify_batch_encoded<G: PrimeGroup, R: RngCore + CryptoRng>(
    items: &[(Statement<'_, G>, &[u8], &[u8])],
    rng: &mut R,
) -> Result<(), Vec<Result<(), DecryptError>>> {
    let per_item = || {
        items
            .iter()
            .map(|(st, encoded, proof)| verify_encoded(st, encoded, proof))
            .collect()
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (st, encoded, proof) in items {
        debug_assert_eq!(*encoded, encode_statement(st).as_slice());
        match parse::<G>(encoded, proof) {
            Ok(p) => parsed.push(p),
            Err(_) => return Err(per_item()),
        }
    }
    let zero = G::scalar_from_u16(0);
    let mut scalars = Vec::with_capacity(1 + 5 * items.len());
    let mut points = Vec::with_capacity(1 + 5 * items.len());
    let mut base = zero;
    for ((st, _, _), p) in items.iter().zip(&parsed) {
        let r = random_scalar::<G, R>(rng);
        let u = random_scalar::<G, R>(rng);
        base = base + r * p.z;
        scalars.extend([zero - r * p.c, zero - r, u * p.z, zero - u * p.c, zero - u]);
        points.extend([*st.y, p.a1, *st.e, *st.d, p.a2]);
    }
    scalars.push(base);
    points.push(G::mul_base(&G::scalar_from_u16(1)));
    let sum = G::vartime_multiscalar(&scalars, &points);
    if G::is_identity(&G::clear_cofactor(&sum)) {
        Ok(())
    } else {
        Err(per_item())
    }
}

fn random_scalar<G: PrimeGroup, R: RngCore + CryptoRng>(rng: &mut R) -> G::Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    G::scalar_from_wide(&wide)
}

/// Decodes one canonical scalar of a proof; non-canonical encodings would make proofs malleable.
fn scalar<G: PrimeGroup>(bytes: &[u8]) -> Result<G::Scalar, DecryptError> {
    let arr: &[u8; 32] = bytes.try_into().map_err(|_| DecryptError::MalformedProof)?;
    G::scalar_from_canonical(arr).ok_or(DecryptError::MalformedProof)
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;

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
        let last = proof.len() - 1;
        for i in [0, 31, G::POINT_LEN, 2 * G::POINT_LEN, last] {
            let mut bad = proof.clone();
            bad[i] ^= 1;
            assert!(verify(&st, &bad).is_err(), "flipped byte {i} accepted");
        }
        assert_eq!(
            verify(&st, &proof[..last]),
            Err(DecryptError::MalformedProof)
        );

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
            let sum = u16::from(proof[64 + i]) + u16::from(l[i]) + carry;
            proof[64 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "z + l < 2^254 always fits");
        assert_eq!(verify(&st, &proof), Err(DecryptError::MalformedProof));
    }

    fn hex_literal(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// DESIGN.md §6: a cheating node may send D + T (T of order 8). The cofactored DLEQ check
    /// cannot see T, so a proof made for D + T with the honest s passes it; the partial check,
    /// which decodes D in the prime-order subgroup only, must not.
    #[test]
    fn torsion_partial_passes_dleq_but_not_verify_partial() {
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
        let proof = prove(&s, &st, &mut OsRng);
        assert_eq!(
            verify(&st, &proof),
            Ok(()),
            "the torsion component is invisible here"
        );

        let partial = PartialDecryption {
            point: cheat.compress().to_bytes().to_vec(),
            proof,
        };
        assert_eq!(
            threshold::verify::<Ed25519>(&y.compress().to_bytes(), &e, &partial),
            Err(DecryptError::EdwardsNotPrimeOrder {
                what: "partial decryption point"
            })
        );
    }

    /// A commitment with a small-order component changes the challenge, so the proof no longer
    /// verifies: the component cannot be used to make one proof into another that passes.
    #[test]
    fn commitment_with_torsion_is_refused() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        let u8_order =
            hex_literal("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        let t = MontgomeryPoint(u8_order).to_edwards(0).unwrap();
        let (s, y, e, d) = instance::<Ed25519>();
        let st = Statement::<Ed25519> {
            y: &y,
            e: &e,
            d: &d,
        };
        let mut proof = prove(&s, &st, &mut OsRng);
        let a1 = Ed25519::decode_commitment(&proof[..32]).unwrap();
        proof[..32].copy_from_slice(&(a1 + t).compress().to_bytes());
        assert_eq!(verify(&st, &proof), Err(DecryptError::InvalidProof));
    }

    /// A statement (Y, E, D) with its proof.
    type Proven<G> = (
        <G as PrimeGroup>::Point,
        <G as PrimeGroup>::Point,
        <G as PrimeGroup>::Point,
        Vec<u8>,
    );

    fn batch_of<G: PrimeGroup>(n: usize) -> Vec<Proven<G>> {
        (0..n)
            .map(|_| {
                let (s, y, e, d) = instance::<G>();
                let st = Statement::<G> {
                    y: &y,
                    e: &e,
                    d: &d,
                };
                let proof = prove(&s, &st, &mut OsRng);
                (y, e, d, proof)
            })
            .collect()
    }

    fn check_batch<G: PrimeGroup>(
        batch: &[Proven<G>],
    ) -> Result<(), Vec<Result<(), DecryptError>>> {
        let items: Vec<(Statement<'_, G>, &[u8])> = batch
            .iter()
            .map(|(y, e, d, proof)| (Statement { y, e, d }, proof.as_slice()))
            .collect();
        verify_batch(&items, &mut OsRng)
    }

    fn batch_names_the_one_bad_proof<G: PrimeGroup>(n: usize, bad: usize) {
        let mut batch = batch_of::<G>(n);
        assert_eq!(check_batch::<G>(&batch), Ok(()));
        // A valid proof, but of another statement: each proof alone is well formed.
        let (_, _, _, other) = batch_of::<G>(1).remove(0);
        batch[bad].3 = other;
        let results = check_batch::<G>(&batch).expect_err("one bad proof fails the batch");
        let failed: Vec<usize> = (0..n).filter(|i| results[*i].is_err()).collect();
        assert_eq!(failed, vec![bad]);
        assert_eq!(results[bad], Err(DecryptError::InvalidProof));
    }

    #[test]
    fn batch_of_1000_names_its_one_bad_proof_ed25519() {
        batch_names_the_one_bad_proof::<Ed25519>(1000, 617);
    }

    #[test]
    fn batch_names_its_one_bad_proof_secp256k1() {
        batch_names_the_one_bad_proof::<Secp256k1>(50, 0);
    }

    /// A proof whose first equation is off by `offset`: A1 = k·G + offset, with c and z made
    /// honestly over that A1.
    fn prove_off_by(s: &Scalar, st: &Statement<'_, Ed25519>, offset: &EdwardsPoint) -> Vec<u8> {
        let k = Ed25519::scalar_from_wide(&[9u8; 64]);
        let a1 = (Ed25519::mul_base(&k) + offset).compress().to_bytes();
        let a2 = (st.e * k).compress().to_bytes();
        let c = challenge::<Ed25519>(&encode_statement(st), &a1, &a2);
        [&a1[..], &a2[..], &(k + c * s).to_bytes()[..]].concat()
    }

    /// Two bad proofs whose errors cancel in an unweighted sum (−Δ and +Δ): the random weights
    /// keep the batch honest.
    #[test]
    fn batch_refuses_errors_that_cancel_in_a_plain_sum() {
        let delta = Ed25519::mul_base(&Ed25519::scalar_from_u16(7));
        let mut batch = batch_of::<Ed25519>(2);
        for (i, offset) in [(0usize, delta), (1, -delta)] {
            let mut wide = [0u8; 64];
            OsRng.fill_bytes(&mut wide);
            let s = Ed25519::scalar_from_wide(&wide);
            let (y, e) = (Ed25519::mul_base(&s), batch[i].1);
            let d = e * s;
            let st = Statement::<Ed25519> {
                y: &y,
                e: &e,
                d: &d,
            };
            batch[i] = (y, e, d, prove_off_by(&s, &st, &offset));
        }
        // The residuals z·G − c·Y − A1 are −Δ and +Δ: a plain sum would be the identity.
        let residual = |(y, e, d, proof): &Proven<Ed25519>| {
            let p = parse::<Ed25519>(&encode_statement::<Ed25519>(&Statement { y, e, d }), proof)
                .unwrap();
            Ed25519::mul_base(&p.z) - y * p.c - p.a1
        };
        assert!(Ed25519::is_identity(
            &(residual(&batch[0]) + residual(&batch[1]))
        ));
        let results = check_batch::<Ed25519>(&batch).expect_err("both proofs are bad");
        assert_eq!(results, vec![Err(DecryptError::InvalidProof); 2]);
    }

    #[test]
    fn batch_with_a_malformed_proof_reports_each() {
        let mut batch = batch_of::<Ed25519>(3);
        batch[1].3.truncate(10);
        let results = check_batch::<Ed25519>(&batch).expect_err("malformed");
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[1], Err(DecryptError::MalformedProof));
        assert_eq!(results[2], Ok(()));
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
