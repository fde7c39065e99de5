//! secp256k1 as the group behind threshold ECIES (DESIGN.md §6). The cofactor is 1, so every
//! point on the curve other than the identity is a valid ephemeral key or partial.

use k256::elliptic_curve::group::prime::PrimeCurveAffine;
use k256::elliptic_curve::ops::{LinearCombination, MulByGenerator, Reduce};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, ProjectivePoint, PublicKey, Scalar};
use zeroize::{Zeroize, Zeroizing};

use super::group::PrimeGroup;
use super::DecryptError;

/// Length of an uncompressed SEC1 point, 0x04 ‖ X ‖ Y.
pub(crate) const UNCOMPRESSED_LEN: usize = 65;
/// Length of a compressed SEC1 point, 0x02/0x03 ‖ X.
pub(crate) const COMPRESSED_LEN: usize = 33;

/// The secp256k1 group.
pub(crate) struct Secp256k1;

impl PrimeGroup for Secp256k1 {
    type Scalar = Scalar;
    type Point = ProjectivePoint;

    const LABEL: &'static [u8] = b"ecies-secp256k1";
    const POINT_LEN: usize = COMPRESSED_LEN;

    fn mul_base(s: &Scalar) -> ProjectivePoint {
        ProjectivePoint::mul_by_generator(s)
    }

    fn mul(p: &ProjectivePoint, s: &Scalar) -> ProjectivePoint {
        p * s
    }

    fn vartime_mul_add_base(a: &Scalar, p: &ProjectivePoint, b: &Scalar) -> ProjectivePoint {
        ProjectivePoint::lincomb(p, a, &ProjectivePoint::GENERATOR, b)
    }

    fn vartime_lincomb(
        a: &Scalar,
        p: &ProjectivePoint,
        b: &Scalar,
        q: &ProjectivePoint,
    ) -> ProjectivePoint {
        ProjectivePoint::lincomb(p, a, q, b)
    }

    fn multiscalar(scalars: &[Scalar], points: &[ProjectivePoint]) -> ProjectivePoint {
        // One constant-time multiplication per term; k256 0.13 has no constant-time sum of many.
        scalars
            .iter()
            .zip(points)
            .fold(ProjectivePoint::IDENTITY, |acc, (s, p)| acc + *p * s)
    }

    fn vartime_multiscalar(scalars: &[Scalar], points: &[ProjectivePoint]) -> ProjectivePoint {
        // k256 0.13 combines two terms at a time; pairs still share their doublings.
        let mut acc = ProjectivePoint::IDENTITY;
        let mut pairs = scalars.chunks_exact(2).zip(points.chunks_exact(2));
        for (s, p) in pairs.by_ref() {
            acc += ProjectivePoint::lincomb(&p[0], &s[0], &p[1], &s[1]);
        }
        if scalars.len() % 2 == 1 {
            acc += points[points.len() - 1] * scalars[scalars.len() - 1];
        }
        acc
    }

    fn clear_cofactor(p: &ProjectivePoint) -> ProjectivePoint {
        // Cofactor 1.
        *p
    }

    fn is_identity(p: &ProjectivePoint) -> bool {
        bool::from(p.to_affine().is_identity())
    }

    fn decode_commitment(bytes: &[u8]) -> Result<ProjectivePoint, DecryptError> {
        if bytes.len() != COMPRESSED_LEN {
            return Err(DecryptError::MalformedProof);
        }
        Self::decode_point(bytes, "proof commitment")
    }

    fn encode_point(p: &ProjectivePoint) -> Vec<u8> {
        p.to_affine().to_encoded_point(true).as_bytes().to_vec()
    }

    fn decode_point(bytes: &[u8], what: &'static str) -> Result<ProjectivePoint, DecryptError> {
        // Only the two standard SEC1 forms; k256 would also take 0x00 (identity) and the
        // non-standard compact form.
        let expected = match bytes.first() {
            None => {
                return Err(DecryptError::WrongLength {
                    what,
                    expected: COMPRESSED_LEN,
                    got: 0,
                })
            }
            Some(0x00) => return Err(DecryptError::Secp256k1Identity { what }),
            Some(0x02 | 0x03) => COMPRESSED_LEN,
            Some(0x04) => UNCOMPRESSED_LEN,
            Some(&prefix) => {
                return Err(DecryptError::Sec1Prefix {
                    what,
                    prefix,
                    expected: "0x02 or 0x03 (compressed) or 0x04 (uncompressed)",
                })
            }
        };
        if bytes.len() != expected {
            return Err(DecryptError::WrongLength {
                what,
                expected,
                got: bytes.len(),
            });
        }
        // Checks the curve equation (and, for the compressed form, that x has a square root).
        let key = PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| DecryptError::Secp256k1OffCurve { what })?;
        Ok(key.to_projective())
    }

    fn scalar_from_wide(bytes: &[u8; 64]) -> Scalar {
        <Scalar as Reduce<k256::elliptic_curve::bigint::U512>>::reduce_bytes(
            &k256::WideBytes::clone_from_slice(bytes),
        )
    }

    fn scalar_to_bytes(s: &Scalar) -> [u8; 32] {
        s.to_bytes().into()
    }

    fn scalar_from_canonical(bytes: &[u8; 32]) -> Option<Scalar> {
        Scalar::from_repr((*bytes).into()).into()
    }

    fn scalar_from_u16(x: u16) -> Scalar {
        Scalar::from(u64::from(x))
    }

    fn invert(s: &Scalar) -> Option<Scalar> {
        s.invert().into()
    }
}

/// The uncompressed SEC1 encoding of a combined shared point, as eciespy's KDF wants it.
pub(crate) fn shared_point_uncompressed(
    p: &ProjectivePoint,
) -> Result<Zeroizing<[u8; UNCOMPRESSED_LEN]>, DecryptError> {
    let affine = Zeroizing::new(p.to_affine());
    if bool::from(affine.is_identity()) {
        return Err(DecryptError::DegenerateSharedSecret);
    }
    uncompressed(&affine)
}

/// The uncompressed SEC1 encoding of a non-identity point.
pub(crate) fn uncompressed(
    p: &AffinePoint,
) -> Result<Zeroizing<[u8; UNCOMPRESSED_LEN]>, DecryptError> {
    let mut encoded = p.to_encoded_point(false);
    let mut out = Zeroizing::new([0u8; UNCOMPRESSED_LEN]);
    let result = if encoded.as_bytes().len() == UNCOMPRESSED_LEN {
        out.copy_from_slice(encoded.as_bytes());
        Ok(out)
    } else {
        Err(DecryptError::Internal(
            "uncompressed point of unexpected length",
        ))
    };
    encoded.zeroize();
    result
}
