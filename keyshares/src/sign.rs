//! FROST signing rounds (RFC 9591 §5) through frost-ed25519 / frost-secp256k1.
//!
//! Signer side: [`commit`] (round 1) gives single-use [`Nonces`] and their public commitments;
//! [`sign`] (round 2) consumes the nonces, so a nonce can never sign twice.
//! Coordinator side: [`signing_package`] binds the chosen commitments to the message, and
//! [`aggregate`] combines the shares, naming every signer whose share is invalid.
//!
//! Ed25519 signatures are plain RFC 8032 signatures, `R ‖ z` (64 bytes); secp256k1 ones are
//! frost-secp256k1's `R (33-byte compressed SEC1) ‖ z (32-byte big-endian)`, 65 bytes.

use std::collections::BTreeMap;

use frost_core::round1::{SigningCommitments, SigningNonces};
use frost_core::round2::SignatureShare;
use frost_core::{CheaterDetection, Ciphersuite, Signature, SigningPackage, VerifyingKey};
use rand_core::{CryptoRng, RngCore};

use crate::curve::{identifier, identifier_to_u16, Curve, Ed25519, Secp256k1};
use crate::share::{KeyShare, PublicKeys};
use crate::{from_frost, ProtocolError};

/// A signer's secret nonces for one signing session, with the commitments it published for
/// them. frost zeroizes the nonces on drop; they are consumed by [`sign`], never copied, never
/// serialised.
pub struct Nonces {
    secret: Secret,
    commitment: Commitment,
}

enum Secret {
    Ed25519(SigningNonces<Ed25519>),
    Secp256k1(SigningNonces<Secp256k1>),
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<redacted>)")
    }
}

impl Nonces {
    /// The commitments this signer published for these nonces, as it made them.
    pub fn commitment(&self) -> &Commitment {
        &self.commitment
    }
}

/// A signer's own round-1 commitments in both forms: the encoding it sent and frost's parsed
/// form. A signer knows its own commitments from its nonces, so it never parses them back
/// from a signing package (parsing checks every point, RFC 9591 §4.1 `DeserializeElement`).
#[derive(Clone)]
pub struct Commitment {
    bytes: Vec<u8>,
    parsed: ParsedCommitment,
}

#[derive(Clone)]
enum ParsedCommitment {
    Ed25519(SigningCommitments<Ed25519>),
    Secp256k1(SigningCommitments<Secp256k1>),
}

impl Commitment {
    /// The encoding sent to the coordinator.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Commitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Commitment").field(&self.bytes).finish()
    }
}

/// Round 1: fresh nonces and the commitments to send to the coordinator.
pub fn commit<R: RngCore + CryptoRng>(
    share: &KeyShare,
    rng: &mut R,
) -> Result<(Nonces, Vec<u8>), ProtocolError> {
    let (secret, parsed, bytes) = match share {
        KeyShare::Ed25519(k) => {
            let (n, c) = frost_core::round1::commit(k.signing_share(), rng);
            let bytes = c.serialize().map_err(from_frost)?;
            (Secret::Ed25519(n), ParsedCommitment::Ed25519(c), bytes)
        }
        KeyShare::Secp256k1(k) => {
            let (n, c) = frost_core::round1::commit(k.signing_share(), rng);
            let bytes = c.serialize().map_err(from_frost)?;
            (Secret::Secp256k1(n), ParsedCommitment::Secp256k1(c), bytes)
        }
    };
    let commitment = Commitment {
        bytes: bytes.clone(),
        parsed,
    };
    Ok((Nonces { secret, commitment }, bytes))
}

/// The commitments a package is built from: each signer's encoding, and for at most one of
/// them (the builder itself) the commitment as it made it.
struct Inputs<'a> {
    commitments: &'a BTreeMap<u16, Vec<u8>>,
    own: Option<(u16, &'a Commitment)>,
}

/// Builds the package, parsing (and so checking) every commitment but the builder's own,
/// which must be the one it made.
fn package_of<C: Ciphersuite>(
    inputs: Inputs<'_>,
    message: &[u8],
    own_parsed: impl Fn(&Commitment) -> Option<&SigningCommitments<C>>,
) -> Result<SigningPackage<C>, ProtocolError> {
    let mut parsed = BTreeMap::new();
    for (id, bytes) in inputs.commitments {
        let c = match inputs.own {
            Some((own_id, own)) if own_id == *id => {
                if own.bytes != *bytes {
                    return Err(ProtocolError::invalid(format!(
                        "the commitments given for signer {id} are not the ones it made"
                    )));
                }
                *own_parsed(own)
                    .ok_or_else(|| ProtocolError::invalid("commitments of another curve"))?
            }
            _ => SigningCommitments::<C>::deserialize(bytes)
                .map_err(|e| ProtocolError::culprit(*id, format!("malformed commitments: {e}")))?,
        };
        parsed.insert(identifier::<C>(*id)?, c);
    }
    if let Some((own_id, _)) = inputs.own {
        if !inputs.commitments.contains_key(&own_id) {
            return Err(ProtocolError::invalid(format!(
                "the signing package leaves out signer {own_id}"
            )));
        }
    }
    Ok(SigningPackage::new(parsed, message))
}

/// A signing package in frost's parsed form, built or parsed once: whoever holds it signs and
/// aggregates with it without parsing (and validating every point of) it again.
pub struct Package {
    parsed: Parsed,
}

enum Parsed {
    Ed25519(SigningPackage<Ed25519>),
    Secp256k1(SigningPackage<Secp256k1>),
}

impl Package {
    /// Parses a package received as frost's encoding, checking every commitment.
    pub fn parse(curve: Curve, bytes: &[u8]) -> Result<Package, ProtocolError> {
        let parsed = match curve {
            Curve::Ed25519 => {
                Parsed::Ed25519(SigningPackage::deserialize(bytes).map_err(from_frost)?)
            }
            Curve::Secp256k1 => {
                Parsed::Secp256k1(SigningPackage::deserialize(bytes).map_err(from_frost)?)
            }
        };
        Ok(Package { parsed })
    }

    /// frost's encoding of the package.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        match &self.parsed {
            Parsed::Ed25519(p) => p.serialize().map_err(from_frost),
            Parsed::Secp256k1(p) => p.serialize().map_err(from_frost),
        }
    }
}

/// The signing package of the chosen signers' `commitments` (each signer's encoding, by id)
/// and the message. `own` is the builder's own signer id and commitment when it is one of the
/// signers: that one is taken as made, after checking `commitments` carries exactly it; every
/// other commitment is parsed and checked.
pub fn build_package(
    curve: Curve,
    commitments: &BTreeMap<u16, Vec<u8>>,
    message: &[u8],
    own: Option<(u16, &Commitment)>,
) -> Result<Package, ProtocolError> {
    let inputs = Inputs { commitments, own };
    let parsed = match curve {
        Curve::Ed25519 => Parsed::Ed25519(package_of(inputs, message, |c| match &c.parsed {
            ParsedCommitment::Ed25519(p) => Some(p),
            ParsedCommitment::Secp256k1(_) => None,
        })?),
        Curve::Secp256k1 => Parsed::Secp256k1(package_of(inputs, message, |c| match &c.parsed {
            ParsedCommitment::Secp256k1(p) => Some(p),
            ParsedCommitment::Ed25519(_) => None,
        })?),
    };
    Ok(Package { parsed })
}

/// Coordinator: frost's encoding of the signing package for the chosen signers' commitments
/// and the message.
pub fn signing_package(
    curve: Curve,
    commitments: &BTreeMap<u16, Vec<u8>>,
    message: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    build_package(curve, commitments, message, None)?.to_bytes()
}

/// What a signer needs to check in a signing package before it signs: the message and the
/// signers it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSummary {
    pub message: Vec<u8>,
    pub signers: Vec<u16>,
}

fn summary_of<C: Ciphersuite>(bytes: &[u8]) -> Result<PackageSummary, ProtocolError> {
    let p = SigningPackage::<C>::deserialize(bytes).map_err(from_frost)?;
    Ok(PackageSummary {
        message: p.message().clone(),
        signers: p
            .signing_commitments()
            .keys()
            .filter_map(identifier_to_u16)
            .collect(),
    })
}

pub fn summarize(curve: Curve, signing_package: &[u8]) -> Result<PackageSummary, ProtocolError> {
    match curve {
        Curve::Ed25519 => summary_of::<Ed25519>(signing_package),
        Curve::Secp256k1 => summary_of::<Secp256k1>(signing_package),
    }
}

fn sign_of<C: Ciphersuite, E: From<ProtocolError>>(
    key: &frost_core::keys::KeyPackage<C>,
    nonces: SigningNonces<C>,
    package: &SigningPackage<C>,
    approve: impl FnOnce(&PackageSummary) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    approve(&PackageSummary {
        message: package.message().clone(),
        signers: package
            .signing_commitments()
            .keys()
            .filter_map(identifier_to_u16)
            .collect(),
    })?;
    Ok(frost_core::round2::sign(package, &nonces, key)
        .map_err(from_frost)?
        .serialize())
}

/// Round 2: parses the signing package once, lets the signer `approve` what it is about to
/// sign (the message and the signers), then consumes the nonces and returns its signature
/// share. frost checks that the package carries this signer's own commitments.
pub fn sign<E: From<ProtocolError>>(
    share: &KeyShare,
    nonces: Nonces,
    signing_package: &[u8],
    approve: impl FnOnce(&PackageSummary) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let package = Package::parse(share.curve(), signing_package)?;
    sign_package(share, nonces, &package, approve)
}

/// [`sign`] with a package already parsed.
pub fn sign_package<E: From<ProtocolError>>(
    share: &KeyShare,
    nonces: Nonces,
    package: &Package,
    approve: impl FnOnce(&PackageSummary) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    match (share, nonces.secret, &package.parsed) {
        (KeyShare::Ed25519(k), Secret::Ed25519(n), Parsed::Ed25519(p)) => sign_of(k, n, p, approve),
        (KeyShare::Secp256k1(k), Secret::Secp256k1(n), Parsed::Secp256k1(p)) => {
            sign_of(k, n, p, approve)
        }
        _ => Err(ProtocolError::invalid("nonces or package belong to another curve").into()),
    }
}

/// Why an aggregation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// These signers sent shares that do not verify against their verifying shares.
    #[error("invalid signature shares from {0:?}")]
    InvalidShares(Vec<u16>),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

fn aggregate_of<C: Ciphersuite>(
    public: &frost_core::keys::PublicKeyPackage<C>,
    package: &SigningPackage<C>,
    shares: &BTreeMap<u16, Vec<u8>>,
) -> Result<Vec<u8>, AggregateError> {
    let mut parsed = BTreeMap::new();
    let mut malformed = Vec::new();
    for (id, bytes) in shares {
        match SignatureShare::<C>::deserialize(bytes) {
            Ok(s) => {
                parsed.insert(identifier::<C>(*id)?, s);
            }
            Err(_) => malformed.push(*id),
        }
    }
    if !malformed.is_empty() {
        return Err(AggregateError::InvalidShares(malformed));
    }
    // frost verifies the group signature and, only when it fails, checks each share: the
    // cheap path for honest signers, every culprit named otherwise.
    match frost_core::aggregate_custom(package, &parsed, public, CheaterDetection::AllCheaters) {
        Ok(sig) => sig.serialize().map_err(|e| from_frost(e).into()),
        Err(frost_core::Error::InvalidSignatureShare { culprits }) => Err(
            AggregateError::InvalidShares(culprits.iter().filter_map(identifier_to_u16).collect()),
        ),
        Err(e) => Err(from_frost(e).into()),
    }
}

/// Coordinator: combines the signature shares into the group signature, verified.
pub fn aggregate(
    public: &PublicKeys,
    signing_package: &[u8],
    shares: &BTreeMap<u16, Vec<u8>>,
) -> Result<Vec<u8>, AggregateError> {
    let package = Package::parse(public.curve(), signing_package)?;
    aggregate_package(public, &package, shares)
}

/// [`aggregate`] with the package the coordinator built.
pub fn aggregate_package(
    public: &PublicKeys,
    package: &Package,
    shares: &BTreeMap<u16, Vec<u8>>,
) -> Result<Vec<u8>, AggregateError> {
    let (signature, message) = match (public, &package.parsed) {
        (PublicKeys::Ed25519(k), Parsed::Ed25519(p)) => (aggregate_of(k, p, shares)?, p.message()),
        (PublicKeys::Secp256k1(k), Parsed::Secp256k1(p)) => {
            (aggregate_of(k, p, shares)?, p.message())
        }
        _ => return Err(ProtocolError::invalid("the package belongs to another curve").into()),
    };
    // frost checked the group signature; it is checked once more, independently, before it
    // leaves: an Ed25519 one by ed25519-dalek's strict RFC 8032 verifier, the one clients use.
    let valid = match public.curve() {
        Curve::Ed25519 => strict_ed25519(&public.group_key(), message, &signature),
        Curve::Secp256k1 => verify(Curve::Secp256k1, &public.group_key(), message, &signature),
    };
    if !valid {
        return Err(ProtocolError::invalid("the aggregate signature does not verify").into());
    }
    Ok(signature)
}

fn strict_ed25519(group_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        <[u8; 32]>::try_from(group_key),
        ed25519_dalek::Signature::from_slice(signature),
    ) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .and_then(|k| k.verify_strict(message, &sig))
        .is_ok()
}

fn verify_of<C: Ciphersuite>(group_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(sig)) = (
        VerifyingKey::<C>::deserialize(group_key),
        Signature::<C>::deserialize(signature),
    ) else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

/// Verifies a group signature with the group key (frost encoding).
pub fn verify(curve: Curve, group_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match curve {
        Curve::Ed25519 => verify_of::<Ed25519>(group_key, message, signature),
        Curve::Secp256k1 => verify_of::<Secp256k1>(group_key, message, signature),
    }
}

/// Signs `message` with `shares` (a quorum of one key) in memory, every message delivered at
/// once: the reference for tests and benchmarks of the rounds the node runs over HTTP.
pub fn sign_in_memory<R: RngCore + CryptoRng>(
    shares: &[&KeyShare],
    public: &PublicKeys,
    message: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, AggregateError> {
    let curve = public.curve();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for share in shares {
        let (n, c) = commit(share, rng)?;
        nonces.insert(share.identifier(), n);
        commitments.insert(share.identifier(), c);
    }
    let package = signing_package(curve, &commitments, message)?;
    let mut signature_shares = BTreeMap::new();
    for share in shares {
        let n = nonces
            .remove(&share.identifier())
            .ok_or_else(|| ProtocolError::invalid("a share appears twice"))?;
        let approve = |_: &PackageSummary| Ok::<(), ProtocolError>(());
        signature_shares.insert(share.identifier(), sign(share, n, &package, approve)?);
    }
    aggregate(public, &package, &signature_shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::run_in_memory;
    use rand::rngs::OsRng;

    #[test]
    fn threshold_signatures_verify_and_bad_shares_are_named() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let keys = run_in_memory(curve, 3, &[1, 2, 3, 4, 5], &mut OsRng).unwrap();
            let public = &keys[0].1;
            let signers = [0usize, 2, 4];
            let mut nonces = BTreeMap::new();
            let mut commitments = BTreeMap::new();
            for &i in &signers {
                let (n, c) = commit(&keys[i].0, &mut OsRng).unwrap();
                nonces.insert(keys[i].0.identifier(), n);
                commitments.insert(keys[i].0.identifier(), c);
            }
            let package = signing_package(curve, &commitments, b"manifest").unwrap();
            let summary = summarize(curve, &package).unwrap();
            assert_eq!(summary.message, b"manifest");
            assert_eq!(summary.signers, vec![1, 3, 5]);
            let mut shares = BTreeMap::new();
            for &i in &signers {
                let id = keys[i].0.identifier();
                let n = nonces.remove(&id).unwrap();
                let approve = |_: &PackageSummary| Ok::<(), ProtocolError>(());
                shares.insert(id, sign(&keys[i].0, n, &package, approve).unwrap());
            }
            let sig = aggregate(public, &package, &shares).unwrap();
            assert!(verify(curve, &public.group_key(), b"manifest", &sig));
            assert!(!verify(curve, &public.group_key(), b"other", &sig));

            // Node 3's share swapped for node 5's: node 3 is named.
            shares.insert(3, shares[&5].clone());
            match aggregate(public, &package, &shares) {
                Err(AggregateError::InvalidShares(c)) => assert_eq!(c, vec![3]),
                other => panic!("expected culprit, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_signer_builds_the_package_with_its_own_commitments_as_made() {
        for curve in [Curve::Ed25519, Curve::Secp256k1] {
            let keys = run_in_memory(curve, 2, &[1, 2, 3], &mut OsRng).unwrap();
            let (public, message) = (&keys[0].1, b"frame 7".as_slice());
            let (n1, c1) = commit(&keys[0].0, &mut OsRng).unwrap();
            let (n2, c2) = commit(&keys[1].0, &mut OsRng).unwrap();
            let commitments = BTreeMap::from([(1u16, c1.clone()), (2u16, c2.clone())]);
            let from_bytes = build_package(curve, &commitments, message, None).unwrap();
            let own = Some((2, n2.commitment()));
            let with_own = build_package(curve, &commitments, message, own).unwrap();
            // The same package either way: same encoding, and shares from both combine.
            assert_eq!(with_own.to_bytes().unwrap(), from_bytes.to_bytes().unwrap());
            let approve = |_: &PackageSummary| Ok::<(), ProtocolError>(());
            let shares = BTreeMap::from([
                (
                    1,
                    sign_package(&keys[0].0, n1, &from_bytes, approve).unwrap(),
                ),
                (2, sign_package(&keys[1].0, n2, &with_own, approve).unwrap()),
            ]);
            let sig = aggregate_package(public, &with_own, &shares).unwrap();
            assert!(verify(curve, &public.group_key(), message, &sig));

            let (n3, _) = commit(&keys[1].0, &mut OsRng).unwrap();
            // Commitments that are not the builder's own: refused.
            let err = build_package(curve, &commitments, message, Some((2, n3.commitment())));
            assert!(err.is_err());
            // Commitments that leave the builder out: refused.
            let only_one = BTreeMap::from([(1u16, c1.clone())]);
            let err = build_package(curve, &only_one, message, Some((2, n3.commitment())));
            assert!(err.is_err());
            // Another signer's malformed commitments: that signer is named.
            let mut bad = commitments.clone();
            bad.insert(1, vec![0xff; c1.len()]);
            let err = build_package(curve, &bad, message, Some((2, n3.commitment())));
            assert_eq!(err.err().and_then(|e| e.culprit_id()), Some(1));
        }
    }
}

/// Deliberately wrong messages for the node's test-only fault hooks.
pub mod faults {
    use super::*;
    use frost_core::SigningKey;

    /// A well-formed signature share that is not the signer's.
    pub fn random_share<R: RngCore + CryptoRng>(curve: Curve, rng: &mut R) -> Vec<u8> {
        match curve {
            Curve::Ed25519 => SigningKey::<Ed25519>::new(rng).serialize(),
            Curve::Secp256k1 => SigningKey::<Secp256k1>::new(rng).serialize(),
        }
    }
}
