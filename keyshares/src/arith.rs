//! Scalar and point arithmetic on frost's two ciphersuites, through the `group` traits that
//! vsss-rs also uses: what resharing and the verifiable repair compute outside frost.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::IsIdentity;
use frost_core::keys::{KeyPackage, PublicKeyPackage};
use vsss_rs::curve25519::{WrappedEdwards, WrappedScalar};
use vsss_rs::elliptic_curve::group::GroupEncoding;
use vsss_rs::elliptic_curve::{Field, Group, PrimeField};
use zeroize::{DefaultIsZeroes, Zeroizing};

use crate::curve::{Ed25519, Secp256k1};
use crate::dkg::Suite;
use crate::share::{KeyShare, PublicKeys};
use crate::ProtocolError;

/// The group arithmetic resharing and repair need, in frost's encodings, for one
/// ciphersuite: vsss-rs works on these types, frost on their bytes.
pub(crate) trait Arith: Suite {
    type Scalar: PrimeField + DefaultIsZeroes;
    type Point: Group<Scalar = Self::Scalar> + GroupEncoding + Default;

    /// A canonical 32-byte scalar in frost's encoding.
    fn scalar_from_bytes(bytes: &[u8]) -> Option<Self::Scalar>;
    fn scalar_to_bytes(scalar: &Self::Scalar) -> Zeroizing<Vec<u8>>;
    /// A compressed point of the prime-order group other than the identity.
    fn point_from_bytes(bytes: &[u8]) -> Option<Self::Point>;
    fn point_to_bytes(point: &Self::Point) -> Vec<u8>;

    fn key_package(share: &KeyShare) -> Option<&KeyPackage<Self>>;
    fn public_package(public: &PublicKeys) -> Option<&PublicKeyPackage<Self>>;
    fn wrap_public(public: PublicKeyPackage<Self>) -> PublicKeys;
}

impl Arith for Ed25519 {
    type Scalar = WrappedScalar;
    type Point = WrappedEdwards;

    fn scalar_from_bytes(bytes: &[u8]) -> Option<WrappedScalar> {
        let repr = Zeroizing::new(<[u8; 32]>::try_from(bytes).ok()?);
        // Not `WrappedScalar::from_repr`: it reduces non-canonical input instead of refusing it.
        Option::from(curve25519_dalek::Scalar::from_canonical_bytes(*repr)).map(WrappedScalar)
    }

    fn scalar_to_bytes(scalar: &WrappedScalar) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Zeroizing::new(scalar.0.to_bytes()).to_vec())
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<WrappedEdwards> {
        let point = CompressedEdwardsY::from_slice(bytes).ok()?.decompress()?;
        // frost-ed25519's rule: the prime-order subgroup only (which also rules out the
        // non-canonical encodings), never the identity.
        (point.is_torsion_free() && !IsIdentity::is_identity(&point))
            .then_some(WrappedEdwards(point))
    }

    fn point_to_bytes(point: &WrappedEdwards) -> Vec<u8> {
        point.0.compress().to_bytes().to_vec()
    }

    fn key_package(share: &KeyShare) -> Option<&KeyPackage<Self>> {
        match share {
            KeyShare::Ed25519(k) => Some(k),
            KeyShare::Secp256k1(_) => None,
        }
    }

    fn public_package(public: &PublicKeys) -> Option<&PublicKeyPackage<Self>> {
        match public {
            PublicKeys::Ed25519(p) => Some(p),
            PublicKeys::Secp256k1(_) => None,
        }
    }

    fn wrap_public(public: PublicKeyPackage<Self>) -> PublicKeys {
        PublicKeys::Ed25519(public)
    }
}

impl Arith for Secp256k1 {
    type Scalar = k256::Scalar;
    type Point = k256::ProjectivePoint;

    fn scalar_from_bytes(bytes: &[u8]) -> Option<k256::Scalar> {
        if bytes.len() != 32 {
            return None;
        }
        // `from_repr` refuses values at or above the group order.
        Option::from(k256::Scalar::from_repr(k256::FieldBytes::clone_from_slice(
            bytes,
        )))
    }

    fn scalar_to_bytes(scalar: &k256::Scalar) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(scalar.to_bytes().to_vec())
    }

    fn point_from_bytes(bytes: &[u8]) -> Option<k256::ProjectivePoint> {
        if bytes.len() != 33 {
            return None;
        }
        let repr = k256::CompressedPoint::clone_from_slice(bytes);
        let point: k256::ProjectivePoint = Option::from(k256::ProjectivePoint::from_bytes(&repr))?;
        (!bool::from(point.is_identity())).then_some(point)
    }

    fn point_to_bytes(point: &k256::ProjectivePoint) -> Vec<u8> {
        point.to_bytes().to_vec()
    }

    fn key_package(share: &KeyShare) -> Option<&KeyPackage<Self>> {
        match share {
            KeyShare::Secp256k1(k) => Some(k),
            KeyShare::Ed25519(_) => None,
        }
    }

    fn public_package(public: &PublicKeys) -> Option<&PublicKeyPackage<Self>> {
        match public {
            PublicKeys::Secp256k1(p) => Some(p),
            PublicKeys::Ed25519(_) => None,
        }
    }

    fn wrap_public(public: PublicKeyPackage<Self>) -> PublicKeys {
        PublicKeys::Secp256k1(public)
    }
}

pub(crate) fn scalar_of<C: Arith>(id: u16) -> C::Scalar {
    C::Scalar::from(u64::from(id))
}

/// λ_i: the Lagrange coefficient at 0 of `i` over `set`, so that Σ λ_i·f(i) = f(0).
pub(crate) fn lagrange_at_zero<C: Arith>(i: u16, set: &[u16]) -> Result<C::Scalar, ProtocolError> {
    lagrange_at::<C>(0, i, set)
}

/// The Lagrange coefficient at `x` of `i` over `set`, so that Σ λ_i·f(i) = f(x).
pub(crate) fn lagrange_at<C: Arith>(
    x: u16,
    i: u16,
    set: &[u16],
) -> Result<C::Scalar, ProtocolError> {
    let mut num = C::Scalar::ONE;
    let mut den = C::Scalar::ONE;
    for &j in set.iter().filter(|j| **j != i) {
        num *= scalar_of::<C>(j) - scalar_of::<C>(x);
        den *= scalar_of::<C>(j) - scalar_of::<C>(i);
    }
    Option::from(den.invert())
        .map(|inv: C::Scalar| num * inv)
        .ok_or_else(|| ProtocolError::invalid("duplicate ids in an interpolation set"))
}

/// A uniformly random scalar in frost's encoding: a well-formed value that matches no
/// commitment, for the fault hooks.
pub(crate) fn random_scalar<R: rand_core::RngCore + rand_core::CryptoRng>(
    curve: crate::Curve,
    rng: &mut R,
) -> Zeroizing<Vec<u8>> {
    fn go<C: Arith, R: rand_core::RngCore + rand_core::CryptoRng>(
        rng: &mut R,
    ) -> Zeroizing<Vec<u8>> {
        C::scalar_to_bytes(&Zeroizing::new(C::Scalar::random(rng)))
    }
    match curve {
        crate::Curve::Ed25519 => go::<Ed25519, _>(rng),
        crate::Curve::Secp256k1 => go::<Secp256k1, _>(rng),
    }
}
