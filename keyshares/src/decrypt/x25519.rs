//! Edwards25519 as the group behind threshold X25519 (DESIGN.md §6).
//!
//! The group secret s is an Ed25519 scalar from a FROST DKG and the group key is s·B. The X25519
//! public key is the Montgomery u-coordinate of s·B. An X25519 `enc` (a u-coordinate) is lifted
//! to Edwards form with sign 0, the partial points are Edwards points, and the combined point's
//! u-coordinate is the X25519 shared secret; u is the same for both lifts ±E, so the sign only
//! has to be the same at every node.
//!
//! The Montgomery ladder cannot be used: partials must be added, and that needs full points.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, MultiscalarMul, VartimeMultiscalarMul};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::group::PrimeGroup;
use super::DecryptError;

/// Length of X25519 public keys, `enc` and shared secrets (RFC 7748 §5).
pub(crate) const X25519_LEN: usize = 32;

/// The prime-order subgroup of Edwards25519.
pub(crate) struct Ed25519;

impl PrimeGroup for Ed25519 {
    type Scalar = Scalar;
    type Point = EdwardsPoint;

    const LABEL: &'static [u8] = b"hpke-x25519";
    const POINT_LEN: usize = 32;

    fn mul_base(s: &Scalar) -> EdwardsPoint {
        EdwardsPoint::mul_base(s)
    }

    fn mul(p: &EdwardsPoint, s: &Scalar) -> EdwardsPoint {
        p * s
    }

    fn vartime_mul_add_base(a: &Scalar, p: &EdwardsPoint, b: &Scalar) -> EdwardsPoint {
        EdwardsPoint::vartime_double_scalar_mul_basepoint(a, p, b)
    }

    fn vartime_lincomb(a: &Scalar, p: &EdwardsPoint, b: &Scalar, q: &EdwardsPoint) -> EdwardsPoint {
        EdwardsPoint::vartime_multiscalar_mul([a, b], [p, q])
    }

    fn multiscalar(scalars: &[Scalar], points: &[EdwardsPoint]) -> EdwardsPoint {
        // dalek's constant-time Straus: the terms share their doublings.
        EdwardsPoint::multiscalar_mul(scalars, points)
    }

    fn vartime_multiscalar(scalars: &[Scalar], points: &[EdwardsPoint]) -> EdwardsPoint {
        EdwardsPoint::vartime_multiscalar_mul(scalars, points)
    }

    fn clear_cofactor(p: &EdwardsPoint) -> EdwardsPoint {
        p.mul_by_cofactor()
    }

    fn is_identity(p: &EdwardsPoint) -> bool {
        p.is_identity()
    }

    fn encode_point(p: &EdwardsPoint) -> Vec<u8> {
        p.compress().to_bytes().to_vec()
    }

    fn decode_commitment(bytes: &[u8]) -> Result<EdwardsPoint, DecryptError> {
        let what = "proof commitment";
        let arr: [u8; 32] = bytes.try_into().map_err(|_| DecryptError::MalformedProof)?;
        // One byte string per commitment, as for every other point (no malleable proofs).
        if !is_canonical_encoding(&arr) {
            return Err(DecryptError::EdwardsEncoding { what });
        }
        CompressedEdwardsY(arr)
            .decompress()
            .ok_or(DecryptError::EdwardsEncoding { what })
    }

    fn decode_point(bytes: &[u8], what: &'static str) -> Result<EdwardsPoint, DecryptError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| DecryptError::WrongLength {
            what,
            expected: 32,
            got: bytes.len(),
        })?;
        // decompress() accepts y ≥ p and a sign bit set on x = 0; insisting on the canonical
        // encoding keeps one byte string per point (no malleable partials or keys).
        if !is_canonical_encoding(&arr) {
            return Err(DecryptError::EdwardsEncoding { what });
        }
        let point = CompressedEdwardsY(arr)
            .decompress()
            .ok_or(DecryptError::EdwardsEncoding { what })?;
        // Small order covers the identity; a torsion component would let a cheating node pass a
        // proof for D + T (DESIGN.md §6).
        if point.is_small_order() || !is_torsion_free_vartime(&point) {
            return Err(DecryptError::EdwardsNotPrimeOrder { what });
        }
        Ok(point)
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Scalar {
        Scalar::from_bytes_mod_order_wide(bytes)
    }

    fn scalar_to_bytes(s: &Scalar) -> [u8; 32] {
        s.to_bytes()
    }

    fn scalar_from_canonical(bytes: &[u8; 32]) -> Option<Scalar> {
        Scalar::from_canonical_bytes(*bytes).into()
    }

    fn scalar_from_u16(x: u16) -> Scalar {
        Scalar::from(x)
    }

    fn invert(s: &Scalar) -> Option<Scalar> {
        // dalek maps 0 to 0 instead of failing; callers must learn about it.
        if bool::from(s.ct_eq(&Scalar::ZERO)) {
            None
        } else {
            Some(s.invert())
        }
    }
}

/// Lifts an X25519 `enc` to the Edwards point a node multiplies by its share, rejecting every
/// `enc` that could make the product leak share bits (DESIGN.md §6, "Low-order attack").
pub(crate) fn lift_enc(enc: &[u8]) -> Result<EdwardsPoint, DecryptError> {
    let arr: [u8; X25519_LEN] = enc.try_into().map_err(|_| DecryptError::WrongLength {
        what: "enc",
        expected: X25519_LEN,
        got: enc.len(),
    })?;
    // None for u on the twist and for u = −1 (the pole of the birational map).
    let point = MontgomeryPoint(arr)
        .to_edwards(0)
        .ok_or(DecryptError::EncNotOnCurve)?;
    if point.is_small_order() {
        return Err(DecryptError::EncSmallOrder);
    }
    // to_edwards ignores bit 255 and reduces u mod p; an honest encryptor never sets the one or
    // exceeds the other, and a unique encoding keeps kem_context unambiguous.
    if point.to_montgomery().to_bytes() != arr {
        return Err(DecryptError::EncNotCanonical);
    }
    if !is_torsion_free_vartime(&point) {
        return Err(DecryptError::EncNotTorsionFree);
    }
    Ok(point)
}

/// Whether `bytes` is the encoding `compress()` gives for the point they decode to, without
/// the field inversion that re-encoding costs (RFC 8032 §5.1.3 decoding, made strict): y < p,
/// and no sign bit on x = 0, i.e. on y = ±1.
fn is_canonical_encoding(bytes: &[u8; 32]) -> bool {
    // p − 1 = 2^255 − 20 and 1, little-endian, without the sign bit.
    const P_MINUS_1: [u8; 32] = {
        let mut b = [0xff; 32];
        b[0] = 0xec;
        b[31] = 0x7f;
        b
    };
    const ONE: [u8; 32] = {
        let mut b = [0; 32];
        b[0] = 1;
        b
    };
    let mut y = *bytes;
    let sign = y[31] >> 7;
    y[31] &= 0x7f;
    // y < p ⟺ y ≤ p − 1, compared from the most significant byte.
    let below_p = y.iter().rev().cmp(P_MINUS_1.iter().rev()) != core::cmp::Ordering::Greater;
    below_p && !(sign == 1 && (y == ONE || y == P_MINUS_1))
}

/// [ℓ]P = 0, computed as [ℓ − 1]P + P in variable time: only for public points (an ephemeral
/// key, a peer's partial), where it saves a third of the constant-time check.
fn is_torsion_free_vartime(p: &EdwardsPoint) -> bool {
    (EdwardsPoint::vartime_multiscalar_mul([-Scalar::ONE], [*p]) + p).is_identity()
}

/// The X25519 public key (RFC 7748 u-coordinate) of an Edwards group key.
pub(crate) fn public_key(group_public_key: &[u8]) -> Result<[u8; X25519_LEN], DecryptError> {
    let point = Ed25519::decode_point(group_public_key, "group public key")?;
    Ok(point.to_montgomery().to_bytes())
}

/// The X25519 shared secret of the combined point s·E: its u-coordinate.
pub(crate) fn shared_secret(combined: &EdwardsPoint) -> Result<Zeroizing<[u8; 32]>, DecryptError> {
    // The identity would map to u = 0; say so here rather than rely on the all-zero check alone.
    if combined.is_identity() {
        return Err(DecryptError::DegenerateSharedSecret);
    }
    let u = Zeroizing::new(combined.to_montgomery());
    Ok(Zeroizing::new(u.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P_LE: &str = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

    /// p + k for small k: y ≥ p, each a non-canonical encoding of y = k.
    fn p_plus(k: u8) -> [u8; 32] {
        let mut b: [u8; 32] = hex::decode(P_LE).unwrap().try_into().unwrap();
        b[0] += k;
        b
    }

    #[test]
    fn edwards_decode_rejects_non_canonical_encodings() {
        for k in 0..19 {
            for sign in [0u8, 0x80] {
                let mut b = p_plus(k);
                b[31] |= sign;
                assert!(Ed25519::decode_point(&b, "x").is_err(), "y = p + {k}");
            }
        }
        // The sign bit set on x = 0 (y = 1: the identity) is also a second encoding.
        let mut id = [0u8; 32];
        id[0] = 1;
        id[31] = 0x80;
        assert!(Ed25519::decode_point(&id, "x").is_err());
    }

    #[test]
    fn edwards_decode_accepts_prime_order_points_only() {
        let b = EdwardsPoint::mul_base(&Scalar::from(7u8));
        assert_eq!(Ed25519::decode_point(&b.compress().to_bytes(), "x"), Ok(b));
        let identity = EdwardsPoint::default().compress().to_bytes();
        assert_eq!(
            Ed25519::decode_point(&identity, "x"),
            Err(DecryptError::EdwardsNotPrimeOrder { what: "x" })
        );
    }

    #[test]
    fn the_canonical_check_agrees_with_reencoding() {
        use rand_core::{OsRng, RngCore};
        let agrees = |bytes: [u8; 32]| {
            let reencoded = CompressedEdwardsY(bytes)
                .decompress()
                .map(|p| p.compress().to_bytes() == bytes);
            // Bytes that do not decode are refused by decompress() either way.
            if let Some(same) = reencoded {
                assert_eq!(is_canonical_encoding(&bytes), same, "{bytes:02x?}");
            }
        };
        // y = 0, ±1 with either sign bit, p − 1 + k and 2^255 − 1 (non-canonical y).
        for low in [0u8, 1, 2, 0xec, 0xed, 0xee, 0xff] {
            for high in [0u8, 0x7f, 0x80, 0xff] {
                for middle in [0u8, 0xff] {
                    let mut b = [middle; 32];
                    b[0] = low;
                    b[31] = high;
                    agrees(b);
                }
            }
        }
        let mut b = [0u8; 32];
        for _ in 0..2000 {
            OsRng.fill_bytes(&mut b);
            agrees(b);
        }
        for k in 1..200u64 {
            let p = EdwardsPoint::mul_base(&Scalar::from(k));
            agrees(p.compress().to_bytes());
            let mut flipped = p.compress().to_bytes();
            flipped[31] ^= 0x80;
            agrees(flipped);
        }
    }

    #[test]
    fn the_vartime_torsion_check_agrees_with_dalek() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for k in 1..20u64 {
            let p = EdwardsPoint::mul_base(&Scalar::from(k * 7919));
            assert!(is_torsion_free_vartime(&p));
            for t in EIGHT_TORSION.iter().skip(1) {
                let q = p + t;
                assert_eq!(is_torsion_free_vartime(&q), q.is_torsion_free());
                assert!(!is_torsion_free_vartime(&q));
            }
        }
    }

    #[test]
    fn lift_enc_inverts_to_montgomery() {
        let p = EdwardsPoint::mul_base(&Scalar::from(12345u32));
        let u = p.to_montgomery().to_bytes();
        let lifted = lift_enc(&u).unwrap();
        // The lift is ±P: same u, and one of the two signs.
        assert!(lifted == p || lifted == -p);
        assert_eq!(lifted.to_montgomery().to_bytes(), u);
    }
}
