//! The per-request forms of the threshold-decryption steps: everything that does not depend on
//! the item — a holder's verifying share Y_i = s_i·G, the decoded verifying shares, the group
//! key's X25519 form, the Lagrange coefficients of one set of holders — computed once, and
//! every point decoded and validated once per request instead of once per use.
//!
//! The checks are those of [`super::partial_decrypt`], [`super::verify_partial`] and
//! [`super::combine_and_open`], in the same order and with the same errors; only their
//! repetition is gone.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::dleq::{self, Statement};
use super::group::PrimeGroup;
use super::secp256k1::Secp256k1;
use super::x25519::{self, Ed25519};
use super::{ecies, hpke_schedule, lagrange, secp256k1};
use super::{Ciphertext, DecryptError, PartialDecryption, Scheme, ShareScalar};

/// A point of either group.
#[derive(Clone, Copy)]
enum Point {
    Ed25519(EdwardsPoint),
    Secp256k1(k256::ProjectivePoint),
}

impl Point {
    fn scheme(&self) -> Scheme {
        match self {
            Point::Ed25519(_) => Scheme::HpkeX25519,
            Point::Secp256k1(_) => Scheme::EciesSecp256k1,
        }
    }

    fn decode(scheme: Scheme, bytes: &[u8], what: &'static str) -> Result<Point, DecryptError> {
        Ok(match scheme {
            Scheme::HpkeX25519 => Point::Ed25519(Ed25519::decode_point(bytes, what)?),
            Scheme::EciesSecp256k1 => Point::Secp256k1(Secp256k1::decode_point(bytes, what)?),
        })
    }

    /// The encoding the proofs' transcripts absorb (`dleq::encode_statement`).
    fn encode(&self) -> Vec<u8> {
        match self {
            Point::Ed25519(p) => Ed25519::encode_point(p),
            Point::Secp256k1(p) => Secp256k1::encode_point(p),
        }
    }

    /// [`Point::encode`] of this point, decoded from `given`: `given` itself when it is that
    /// encoding (decoding an Edwards point insists on the canonical one; SEC1 also allows the
    /// uncompressed form), which spares a field inversion.
    fn encode_as_given(&self, given: &[u8]) -> Vec<u8> {
        match self {
            Point::Ed25519(_) => given.to_vec(),
            Point::Secp256k1(_) if given.len() == Secp256k1::POINT_LEN => given.to_vec(),
            Point::Secp256k1(_) => self.encode(),
        }
    }
}

impl Zeroize for Point {
    fn zeroize(&mut self) {
        match self {
            Point::Ed25519(p) => p.zeroize(),
            Point::Secp256k1(p) => p.zeroize(),
        }
    }
}

fn mismatch(expected: Scheme, got: Scheme) -> DecryptError {
    DecryptError::SchemeMismatch {
        share_curve: got.curve_name(),
        scheme_curve: expected.curve_name(),
    }
}

/// A ciphertext's ephemeral point, checked as every holder checks it
/// ([`super::check_ephemeral`]), with its group encoding for the proofs.
#[derive(Clone)]
pub struct Ephemeral {
    point: Point,
    encoded: Vec<u8>,
}

impl Ephemeral {
    pub fn parse(scheme: Scheme, bytes: &[u8]) -> Result<Ephemeral, DecryptError> {
        let point = match scheme {
            Scheme::HpkeX25519 => Point::Ed25519(x25519::lift_enc(bytes)?),
            Scheme::EciesSecp256k1 => {
                Point::Secp256k1(Secp256k1::decode_point(bytes, "ephemeral public key")?)
            }
        };
        Ok(Ephemeral {
            encoded: point.encode(),
            point,
        })
    }
}

/// A holder's share with its verifying share Y_i = s_i·G computed (and encoded) once, for
/// many partials.
pub struct Holder<'a> {
    share: &'a ShareScalar,
    y: Point,
    y_encoded: Vec<u8>,
}

impl<'a> Holder<'a> {
    pub fn new(share: &'a ShareScalar) -> Result<Holder<'a>, DecryptError> {
        let y = match share.scheme() {
            Scheme::HpkeX25519 => Point::Ed25519(Ed25519::mul_base(share.ed25519()?)),
            Scheme::EciesSecp256k1 => Point::Secp256k1(Secp256k1::mul_base(share.secp256k1()?)),
        };
        Ok(Holder {
            share,
            y_encoded: y.encode(),
            y,
        })
    }

    /// D_i = s_i·E with its proof, as [`super::partial_decrypt`] computes it.
    pub fn partial<R: RngCore + CryptoRng>(
        &self,
        e: &Ephemeral,
        rng: &mut R,
    ) -> Result<PartialDecryption, DecryptError> {
        let known = Known {
            y: &self.y_encoded,
            e: &e.encoded,
        };
        match (&self.y, &e.point) {
            (Point::Ed25519(y), Point::Ed25519(p)) => Ok(partial::<Ed25519, R>(
                self.share.ed25519()?,
                y,
                p,
                known,
                rng,
            )),
            (Point::Secp256k1(y), Point::Secp256k1(p)) => Ok(partial::<Secp256k1, R>(
                self.share.secp256k1()?,
                y,
                p,
                known,
                rng,
            )),
            _ => Err(mismatch(e.point.scheme(), self.y.scheme())),
        }
    }
}

impl Holder<'_> {
    /// D_i = s_i·E without a proof, for a holder that combines the partials itself: nobody
    /// else sees this partial, and a proof only convinces others.
    pub fn unproven_partial(&self, e: &Ephemeral) -> Result<PartialDecryption, DecryptError> {
        let point = match &e.point {
            Point::Ed25519(e) => Ed25519::encode_point(&Ed25519::mul(e, self.share.ed25519()?)),
            Point::Secp256k1(e) => {
                Secp256k1::encode_point(&Secp256k1::mul(e, self.share.secp256k1()?))
            }
        };
        Ok(PartialDecryption {
            point,
            proof: Vec::new(),
        })
    }
}

/// Encodings of Y and E already at hand.
#[derive(Clone, Copy)]
struct Known<'a> {
    y: &'a [u8],
    e: &'a [u8],
}

impl Known<'_> {
    /// Y ‖ E ‖ D, as `dleq::encode_statement` gives it.
    fn statement(&self, d: &[u8]) -> Vec<u8> {
        [self.y, self.e, d].concat()
    }
}

fn partial<G: PrimeGroup, R: RngCore + CryptoRng>(
    s: &G::Scalar,
    y: &G::Point,
    e: &G::Point,
    known: Known<'_>,
    rng: &mut R,
) -> PartialDecryption {
    let d = G::mul(e, s);
    let point = G::encode_point(&d);
    let st = Statement::<G> { y, e, d: &d };
    let proof = dleq::prove_encoded(s, &st, &known.statement(&point), rng);
    PartialDecryption { point, proof }
}

/// A holder's verifying share, decoded and validated once.
#[derive(Clone)]
pub struct VerifyingShare {
    point: Point,
    encoded: Vec<u8>,
}

impl VerifyingShare {
    pub fn decode(scheme: Scheme, bytes: &[u8]) -> Result<VerifyingShare, DecryptError> {
        let point = Point::decode(scheme, bytes, "verifying share")?;
        Ok(VerifyingShare {
            encoded: point.encode_as_given(bytes),
            point,
        })
    }
}

/// A partial decryption point, decoded and validated, ready to combine. t of them reveal the
/// DH output: zeroized when dropped.
pub struct CheckedPartial(Point);

impl Drop for CheckedPartial {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl CheckedPartial {
    /// Checks `partial`'s proof against the holder's verifying share, as
    /// [`super::verify_partial`] does, and keeps its decoded point.
    pub fn verify(
        share: &VerifyingShare,
        e: &Ephemeral,
        partial: &PartialDecryption,
    ) -> Result<CheckedPartial, DecryptError> {
        let d = Point::decode(
            share.point.scheme(),
            &partial.point,
            "partial decryption point",
        )?;
        let encoded = Known {
            y: &share.encoded,
            e: &e.encoded,
        }
        .statement(&d.encode_as_given(&partial.point));
        match (&share.point, &e.point, &d) {
            (Point::Ed25519(y), Point::Ed25519(e), Point::Ed25519(d)) => {
                dleq::verify_encoded(&Statement::<Ed25519> { y, e, d }, &encoded, &partial.proof)?
            }
            (Point::Secp256k1(y), Point::Secp256k1(e), Point::Secp256k1(d)) => {
                dleq::verify_encoded(
                    &Statement::<Secp256k1> { y, e, d },
                    &encoded,
                    &partial.proof,
                )?
            }
            _ => return Err(mismatch(share.point.scheme(), e.point.scheme())),
        }
        Ok(CheckedPartial(d))
    }

    /// Checks many partials of one holder at once: every point decoded as in [`Self::verify`],
    /// every proof checked in one multiscalar multiplication (`dleq::verify_batch`), and each
    /// proof alone only when the batch fails, so that every bad item is named. One result per
    /// item, in order; the batch's random weights come from `rng`.
    pub fn verify_many<R: RngCore + CryptoRng>(
        share: &VerifyingShare,
        items: &[(&Ephemeral, &PartialDecryption)],
        rng: &mut R,
    ) -> Vec<Result<CheckedPartial, DecryptError>> {
        match share.point {
            Point::Ed25519(y) => many::<Ed25519, R>(
                (&y, &share.encoded),
                items,
                rng,
                |p| match p {
                    Point::Ed25519(p) => Some(*p),
                    Point::Secp256k1(_) => None,
                },
                Point::Ed25519,
            ),
            Point::Secp256k1(y) => many::<Secp256k1, R>(
                (&y, &share.encoded),
                items,
                rng,
                |p| match p {
                    Point::Secp256k1(p) => Some(*p),
                    Point::Ed25519(_) => None,
                },
                Point::Secp256k1,
            ),
        }
    }

    /// A partial this node computed itself, from a validated point and its own share: decoded
    /// only. Its proof (if any) is not checked and its point not validated again: a proof
    /// convinces others, and this node knows how it made the point.
    pub fn own(
        scheme: Scheme,
        partial: &PartialDecryption,
    ) -> Result<CheckedPartial, DecryptError> {
        let what = "partial decryption point";
        match scheme {
            Scheme::HpkeX25519 => {
                let bytes: [u8; 32] =
                    partial
                        .point
                        .as_slice()
                        .try_into()
                        .map_err(|_| DecryptError::WrongLength {
                            what,
                            expected: 32,
                            got: partial.point.len(),
                        })?;
                CompressedEdwardsY(bytes)
                    .decompress()
                    .map(|p| CheckedPartial(Point::Ed25519(p)))
                    .ok_or(DecryptError::EdwardsEncoding { what })
            }
            Scheme::EciesSecp256k1 => {
                Point::decode(scheme, &partial.point, what).map(CheckedPartial)
            }
        }
    }
}

/// An item's ephemeral point and partial point, decoded, and its statement's encoding; or
/// why not.
type Decoded<G> =
    Result<(<G as PrimeGroup>::Point, <G as PrimeGroup>::Point, Vec<u8>), DecryptError>;

fn many<G: PrimeGroup, R: RngCore + CryptoRng>(
    (y, y_encoded): (&G::Point, &[u8]),
    items: &[(&Ephemeral, &PartialDecryption)],
    rng: &mut R,
    point: impl Fn(&Point) -> Option<G::Point>,
    wrap: impl Fn(G::Point) -> Point,
) -> Vec<Result<CheckedPartial, DecryptError>> {
    let scheme = items.first().map(|(e, _)| e.point.scheme());
    let decoded: Vec<Decoded<G>> = items
        .iter()
        .map(|(e, partial)| {
            let e_point = point(&e.point)
                .ok_or_else(|| mismatch(scheme.unwrap_or(Scheme::HpkeX25519), e.point.scheme()))?;
            let d = G::decode_point(&partial.point, "partial decryption point")?;
            let known = Known {
                y: y_encoded,
                e: &e.encoded,
            };
            let encoded = known.statement(&wrap(d).encode_as_given(&partial.point));
            Ok((e_point, d, encoded))
        })
        .collect();
    let statements: Vec<(Statement<'_, G>, &[u8], &[u8])> = decoded
        .iter()
        .zip(items)
        .filter_map(|(d, (_, partial))| {
            let (e, d, encoded) = d.as_ref().ok()?;
            Some((
                Statement { y, e, d },
                encoded.as_slice(),
                partial.proof.as_slice(),
            ))
        })
        .collect();
    let mut checked = match dleq::verify_batch_encoded(&statements, rng) {
        Ok(()) => vec![Ok(()); statements.len()],
        Err(each) => each,
    }
    .into_iter();
    decoded
        .into_iter()
        .map(|d| {
            let (_, d, _) = d?;
            checked.next().unwrap_or(Err(DecryptError::Internal(
                "batch verification lost a result",
            )))?;
            Ok(CheckedPartial(wrap(d)))
        })
        .collect()
}

/// The Lagrange coefficients at 0 of one set of holders, in identifier order.
pub struct Coefficients {
    ids: Vec<u16>,
    lambdas: Lambdas,
}

enum Lambdas {
    Ed25519(Vec<curve25519_dalek::Scalar>),
    Secp256k1(Vec<k256::Scalar>),
}

impl Coefficients {
    /// The coefficients for holders `ids` (non-zero, distinct), in that order.
    pub fn new(scheme: Scheme, ids: &[u16]) -> Result<Coefficients, DecryptError> {
        let lambdas = match scheme {
            Scheme::HpkeX25519 => Lambdas::Ed25519(lagrange::coefficients_at_zero::<Ed25519>(ids)?),
            Scheme::EciesSecp256k1 => {
                Lambdas::Secp256k1(lagrange::coefficients_at_zero::<Secp256k1>(ids)?)
            }
        };
        Ok(Coefficients {
            ids: ids.to_vec(),
            lambdas,
        })
    }

    /// The holders, in the order their partials are expected.
    pub fn ids(&self) -> &[u16] {
        &self.ids
    }
}

/// Opens the ciphertexts of one key with its group key decoded once, as
/// [`super::combine_and_open`] does per item.
pub struct Combiner {
    scheme: Scheme,
    /// HPKE's pkR, the X25519 form of the group key.
    pk_r: [u8; 32],
}

impl Combiner {
    pub fn new(scheme: Scheme, group_public_key: &[u8]) -> Result<Combiner, DecryptError> {
        let pk_r = match scheme {
            Scheme::HpkeX25519 => x25519::public_key(group_public_key)?,
            Scheme::EciesSecp256k1 => {
                Secp256k1::decode_point(group_public_key, "group public key")?;
                [0; 32]
            }
        };
        Ok(Combiner { scheme, pk_r })
    }

    /// Σ λ_i·D_i over `partials` (one per holder of `coefficients`, in its order), then the
    /// HPKE key schedule or the ECIES KDF, and the AEAD.
    pub fn open(
        &self,
        coefficients: &Coefficients,
        partials: &[&CheckedPartial],
        ciphertext: &Ciphertext,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        ciphertext.ephemeral()?;
        if partials.is_empty() {
            return Err(DecryptError::NoPartials);
        }
        if partials.len() != coefficients.ids.len() {
            return Err(DecryptError::Internal("one partial per coefficient"));
        }
        match (ciphertext, &coefficients.lambdas) {
            (
                Ciphertext::Hpke {
                    enc,
                    ciphertext,
                    info,
                    aad,
                    aead,
                },
                Lambdas::Ed25519(lambdas),
            ) => {
                let combined = sum::<Ed25519>(lambdas, partials, |p| match p {
                    Point::Ed25519(p) => Some(p),
                    Point::Secp256k1(_) => None,
                })?;
                let dh = x25519::shared_secret(&combined)?;
                hpke_schedule::open_base(&dh, enc, &self.pk_r, info, aad, ciphertext, *aead)
            }
            (Ciphertext::Ecies { blob }, Lambdas::Secp256k1(lambdas)) => {
                let parts = ecies::split(blob)?;
                let combined = sum::<Secp256k1>(lambdas, partials, |p| match p {
                    Point::Secp256k1(p) => Some(p),
                    Point::Ed25519(_) => None,
                })?;
                let shared = secp256k1::shared_point_uncompressed(&combined)?;
                ecies::open(&parts, &shared)
            }
            _ => Err(mismatch(self.scheme, ciphertext.scheme())),
        }
    }
}

/// Σ λ_i·D_i, in constant time: the sum is the secret s·E.
fn sum<G: PrimeGroup>(
    lambdas: &[G::Scalar],
    partials: &[&CheckedPartial],
    point: impl Fn(&Point) -> Option<&G::Point>,
) -> Result<Zeroizing<G::Point>, DecryptError> {
    if partials.is_empty() {
        return Err(DecryptError::NoPartials);
    }
    // t partials are as sensitive as their sum: the copies are zeroized too.
    let mut points: Zeroizing<Vec<G::Point>> = Zeroizing::new(Vec::with_capacity(partials.len()));
    for partial in partials {
        let d = point(&partial.0).ok_or(DecryptError::Internal("partial of another group"))?;
        points.push(*d);
    }
    Ok(Zeroizing::new(G::multiscalar(
        &lambdas[..points.len()],
        &points,
    )))
}

#[cfg(test)]
mod tests {
    use super::super::{combine_and_open, encrypt, partial_decrypt, verify_partial, HpkeAead};
    use super::*;
    use crate::dkg::run_in_memory;
    use crate::{Curve, KeyShare};
    use std::collections::BTreeMap;

    fn shares(curve: Curve) -> (Vec<KeyShare>, crate::PublicKeys) {
        let mut rng = rand::thread_rng();
        let all = run_in_memory(curve, 2, &[1, 2, 3], &mut rng).unwrap();
        let public = all[0].1.clone();
        (all.into_iter().map(|(s, _)| s).collect(), public)
    }

    fn scalar(share: &KeyShare) -> ShareScalar {
        match share {
            KeyShare::Ed25519(k) => ShareScalar::from_ed25519(k),
            KeyShare::Secp256k1(k) => ShareScalar::from_secp256k1(k),
        }
    }

    /// The prepared steps agree with the per-item ones: the same partials verify, the same
    /// plaintexts come out, and a partial checked against another holder's share fails.
    #[test]
    fn prepared_steps_agree_with_the_per_item_ones() {
        for (scheme, curve) in [
            (Scheme::HpkeX25519, Curve::Ed25519),
            (Scheme::EciesSecp256k1, Curve::Secp256k1),
        ] {
            let mut rng = rand::thread_rng();
            let (shares, public) = shares(curve);
            let group_key = public.group_key();
            let verifying = public.verifying_shares();
            let combiner = Combiner::new(scheme, &group_key).unwrap();
            for i in 0..3u8 {
                let (info, aad): (&[u8], &[u8]) = match scheme {
                    Scheme::HpkeX25519 => (b"info", b"aad"),
                    Scheme::EciesSecp256k1 => (b"", b""),
                };
                let ct = encrypt(
                    scheme,
                    &group_key,
                    &[i; 20],
                    info,
                    aad,
                    HpkeAead::Aes128Gcm,
                    &mut rng,
                )
                .unwrap();
                let e_bytes = ct.ephemeral().unwrap().to_vec();
                let e = Ephemeral::parse(scheme, &e_bytes).unwrap();
                let mut checked = Vec::new();
                let mut plain = BTreeMap::new();
                for share in &shares[1..] {
                    let id = share.identifier();
                    let s = scalar(share);
                    let p = Holder::new(&s).unwrap().partial(&e, &mut rng).unwrap();
                    // The old verifier accepts the prepared holder's partial and vice versa.
                    verify_partial(scheme, &verifying[&id], &e_bytes, &p).unwrap();
                    let old = partial_decrypt(scheme, &s, &e_bytes, &mut rng).unwrap();
                    let vs = VerifyingShare::decode(scheme, &verifying[&id]).unwrap();
                    CheckedPartial::verify(&vs, &e, &old).unwrap();
                    let wrong = VerifyingShare::decode(scheme, &verifying[&1]).unwrap();
                    assert!(CheckedPartial::verify(&wrong, &e, &p).is_err());
                    checked.push(CheckedPartial::verify(&vs, &e, &p).unwrap());
                    plain.insert(id, p);
                }
                let expected = combine_and_open(&group_key, &plain, &ct).unwrap();
                let coefficients = Coefficients::new(scheme, &[2, 3]).unwrap();
                let refs: Vec<&CheckedPartial> = checked.iter().collect();
                let opened = combiner.open(&coefficients, &refs, &ct).unwrap();
                assert_eq!(*opened, *expected);
                assert_eq!(*opened, vec![i; 20]);
                // Checked together, the same partials pass; a corrupted proof fails alone.
                let vs = VerifyingShare::decode(scheme, &verifying[&2]).unwrap();
                let good = &plain[&2];
                let mut bad = good.clone();
                // The response z, not a commitment: still decodes, no longer verifies.
                let z = bad.proof.len() - 32;
                bad.proof[z] ^= 1;
                let many = CheckedPartial::verify_many(
                    &vs,
                    &[(&e, good), (&e, &bad), (&e, good)],
                    &mut rng,
                );
                assert!(many[0].is_ok() && many[2].is_ok());
                assert!(many[1].is_err());
                // A holder's unproven partial for its own combination opens the same way.
                let own = Holder::new(&scalar(&shares[1]))
                    .unwrap()
                    .unproven_partial(&e)
                    .unwrap();
                assert!(own.proof.is_empty());
                let own = CheckedPartial::own(scheme, &own).unwrap();
                let mixed = [&own, refs[1]];
                assert_eq!(
                    *combiner.open(&coefficients, &mixed, &ct).unwrap(),
                    vec![i; 20]
                );
                // One partial short: no plaintext.
                let coefficients = Coefficients::new(scheme, &[2]).unwrap();
                assert!(combiner.open(&coefficients, &refs[..1], &ct).is_err());
            }
        }
    }
}
