//! The prime-order group operations that the DLEQ proof and the Lagrange combination need,
//! abstracted so that one implementation of each serves both curves.
//!
//! Implementations: [`super::x25519::Ed25519`] (the prime-order subgroup of Edwards25519, in
//! which the X25519 points of honest `enc`s live) and [`super::secp256k1::Secp256k1`].

use core::ops::{Add, Mul, Sub};

use zeroize::Zeroize;

use super::DecryptError;

/// A prime-order group with its scalar field, as used by this module.
pub(crate) trait PrimeGroup {
    /// Scalars mod the group order.
    type Scalar: Copy
        + Zeroize
        + Add<Output = Self::Scalar>
        + Sub<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>;
    /// Group elements.
    type Point: Copy + Zeroize + Add<Output = Self::Point> + Sub<Output = Self::Point>;

    /// Names the group inside Fiat-Shamir transcripts.
    const LABEL: &'static [u8];
    /// Length of [`PrimeGroup::encode_point`]'s output.
    const POINT_LEN: usize;

    /// `s·G` for the standard generator, constant time in `s`.
    fn mul_base(s: &Self::Scalar) -> Self::Point;
    /// `s·P`, constant time in `s`.
    fn mul(p: &Self::Point, s: &Self::Scalar) -> Self::Point;
    /// `a·P + b·G`, possibly in variable time: only for public inputs (proof verification).
    fn vartime_mul_add_base(a: &Self::Scalar, p: &Self::Point, b: &Self::Scalar) -> Self::Point;
    /// `a·P + b·Q`, possibly in variable time: only for public inputs (proof verification).
    fn vartime_lincomb(
        a: &Self::Scalar,
        p: &Self::Point,
        b: &Self::Scalar,
        q: &Self::Point,
    ) -> Self::Point;

    /// `Σ scalars[i]·points[i]` in constant time: for secret sums such as the combination of
    /// partial decryptions. The slices have the same length.
    fn multiscalar(scalars: &[Self::Scalar], points: &[Self::Point]) -> Self::Point;
    /// `Σ scalars[i]·points[i]`, possibly in variable time: only for public inputs (batch proof
    /// verification). The slices have the same length.
    fn vartime_multiscalar(scalars: &[Self::Scalar], points: &[Self::Point]) -> Self::Point;
    /// Multiplies by the cofactor: the identity for every point whose prime-order component is
    /// the identity, so an equation checked after it holds in the prime-order quotient.
    fn clear_cofactor(p: &Self::Point) -> Self::Point;
    /// Whether the point is the identity.
    fn is_identity(p: &Self::Point) -> bool;

    /// The canonical (compressed) encoding of a point; fixed length per group.
    fn encode_point(p: &Self::Point) -> Vec<u8>;
    /// Decodes a point from its encoding, accepting only elements of the prime-order group other
    /// than the identity. `what` names the input in errors.
    fn decode_point(bytes: &[u8], what: &'static str) -> Result<Self::Point, DecryptError>;

    /// Decodes a proof commitment: a canonical encoding of a point of the curve, which may have a
    /// small-order component. Verification equations that use it are checked after
    /// [`PrimeGroup::clear_cofactor`], so such a component changes nothing, and decoding skips
    /// the costly subgroup check of [`PrimeGroup::decode_point`].
    fn decode_commitment(bytes: &[u8]) -> Result<Self::Point, DecryptError>;

    /// Reduces 64 uniformly random bytes to a scalar (bias below 2^-250).
    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar;
    /// The canonical 32-byte encoding of a scalar.
    fn scalar_to_bytes(s: &Self::Scalar) -> [u8; 32];
    /// Decodes a canonical scalar; `None` for encodings of values ≥ the group order.
    fn scalar_from_canonical(bytes: &[u8; 32]) -> Option<Self::Scalar>;
    /// The scalar with the given small integer value.
    fn scalar_from_u16(x: u16) -> Self::Scalar;
    /// The multiplicative inverse; `None` for zero.
    fn invert(s: &Self::Scalar) -> Option<Self::Scalar>;
}
