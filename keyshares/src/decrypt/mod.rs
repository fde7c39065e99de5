//! Threshold decryption of ciphertexts made by unmodified standard encryptors (DESIGN.md §6).
//!
//! Two schemes, each with the group key of a FROST DKG as the recipient key:
//!
//! - [`Scheme::HpkeX25519`]: RFC 9180 HPKE, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//!   AES-128-GCM / AES-256-GCM / ChaCha20Poly1305 (RFC 9180 §4.1, §5.1, §6.1, §7.1). The group
//!   secret s is an Ed25519 scalar; the X25519 public key pkR is the u-coordinate of s·B.
//! - [`Scheme::EciesSecp256k1`]: the eciespy 0.4 default format over secp256k1.
//!
//! The flow, in which no party ever holds s:
//!
//! 1. [`Ciphertext::ephemeral`] gives the point E of the ciphertext (`enc`, or the ephemeral key).
//! 2. Each node checks E and returns [`partial_decrypt`]: D_i = s_i·E with a Chaum-Pedersen
//!    proof that log_G(Y_i) = log_E(D_i) for its verifying share Y_i. The checks on E are what
//!    stop a small-order `enc` from leaking s_i mod 8.
//! 3. The combiner checks each partial with [`verify_partial`] (or a holder's many at once
//!    with [`prepared::CheckedPartial::verify_many`]), drops and names bad ones, and
//!    calls [`combine_and_open`] with at least t good ones: s·E = Σ λ_i·D_i is the DH output,
//!    and the usual HPKE key schedule or ECIES KDF opens the AEAD.
//!
//! Whoever combines learns the DH output and so the message key; partials must travel sealed to
//! the combiner, and each node must authorise every decryption itself (DESIGN.md §6).
//!
//! Sans-IO: nothing here does I/O, keeps state, or reads a clock.

mod dleq;
mod ecies;
mod error;
mod group;
pub(crate) mod hpke_schedule;
mod hpke_seal;
mod lagrange;
pub mod prepared;
pub mod reply;
pub mod requester;
mod secp256k1;
mod share;
mod threshold;
mod x25519;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use error::DecryptError;
pub use share::ShareScalar;

use group::PrimeGroup;
use secp256k1::Secp256k1;
use x25519::Ed25519;

/// A threshold-decryption scheme: the KEM/DEM format and the curve of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    /// RFC 9180 HPKE with DHKEM(X25519, HKDF-SHA256); keys from an Ed25519 DKG.
    #[serde(rename = "hpke-x25519")]
    HpkeX25519,
    /// eciespy-compatible ECIES over secp256k1; keys from a secp256k1 DKG.
    #[serde(rename = "ecies-secp256k1")]
    EciesSecp256k1,
}

impl Scheme {
    /// The wire name: "hpke-x25519" or "ecies-secp256k1".
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::HpkeX25519 => "hpke-x25519",
            Scheme::EciesSecp256k1 => "ecies-secp256k1",
        }
    }

    /// Length of a partial's DLEQ proof, A1 ‖ A2 ‖ z: 96 bytes for Edwards points, 98 for
    /// compressed SEC1 points.
    pub fn proof_len(self) -> usize {
        match self {
            Scheme::HpkeX25519 => dleq::proof_len::<Ed25519>(),
            Scheme::EciesSecp256k1 => dleq::proof_len::<Secp256k1>(),
        }
    }

    /// The curve of the scheme's keys, for messages.
    fn curve_name(self) -> &'static str {
        match self {
            Scheme::HpkeX25519 => "Ed25519/X25519",
            Scheme::EciesSecp256k1 => "secp256k1",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = DecryptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hpke-x25519" => Ok(Scheme::HpkeX25519),
            "ecies-secp256k1" => Ok(Scheme::EciesSecp256k1),
            other => Err(DecryptError::UnknownScheme(shorten(other))),
        }
    }
}

/// The AEAD of an HPKE ciphertext (RFC 9180 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HpkeAead {
    /// AES-128-GCM, aead id 0x0001.
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    /// AES-256-GCM, aead id 0x0002.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// ChaCha20Poly1305, aead id 0x0003.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

impl HpkeAead {
    /// The wire name: "aes-128-gcm", "aes-256-gcm" or "chacha20-poly1305".
    pub fn as_str(self) -> &'static str {
        match self {
            HpkeAead::Aes128Gcm => "aes-128-gcm",
            HpkeAead::Aes256Gcm => "aes-256-gcm",
            HpkeAead::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
}

impl fmt::Display for HpkeAead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HpkeAead {
    type Err = DecryptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aes-128-gcm" => Ok(HpkeAead::Aes128Gcm),
            "aes-256-gcm" => Ok(HpkeAead::Aes256Gcm),
            "chacha20-poly1305" => Ok(HpkeAead::ChaCha20Poly1305),
            other => Err(DecryptError::UnknownAead(shorten(other))),
        }
    }
}

/// Echoes at most 32 characters of an unknown name, so errors stay small.
fn shorten(s: &str) -> String {
    s.chars().take(32).collect()
}

/// A ciphertext of one of the schemes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ciphertext {
    /// Single-shot HPKE: `enc` (32 bytes) and `ciphertext ‖ tag` of sequence number 0.
    Hpke {
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        info: Vec<u8>,
        aad: Vec<u8>,
        aead: HpkeAead,
    },
    /// eciespy 0.4 default format: 65-byte uncompressed ephemeral key ‖ 16-byte nonce ‖
    /// 16-byte tag ‖ ciphertext.
    Ecies { blob: Vec<u8> },
}

impl Ciphertext {
    /// The ephemeral public point the partial decryptions are computed on (`enc`, or the 65-byte
    /// ephemeral key), after checking lengths. Errors for truncated input.
    pub fn ephemeral(&self) -> Result<&[u8], DecryptError> {
        match self {
            Ciphertext::Hpke {
                enc, ciphertext, ..
            } => {
                if enc.len() != x25519::X25519_LEN {
                    return Err(DecryptError::WrongLength {
                        what: "enc",
                        expected: x25519::X25519_LEN,
                        got: enc.len(),
                    });
                }
                if ciphertext.len() < hpke_schedule::NT {
                    return Err(DecryptError::CiphertextTruncated {
                        need: hpke_schedule::NT,
                        got: ciphertext.len(),
                    });
                }
                Ok(enc)
            }
            Ciphertext::Ecies { blob } => Ok(ecies::split(blob)?.ephemeral),
        }
    }

    /// The scheme of this ciphertext.
    pub fn scheme(&self) -> Scheme {
        match self {
            Ciphertext::Hpke { .. } => Scheme::HpkeX25519,
            Ciphertext::Ecies { .. } => Scheme::EciesSecp256k1,
        }
    }
}

/// One node's partial decryption of one ephemeral point, with its DLEQ proof.
///
/// `point` is D_i (32-byte Edwards, or 33-byte compressed SEC1); `proof` is A1 ‖ A2 ‖ z, the
/// DLEQ commitments and response ([`Scheme::proof_len`] bytes). t partials reveal the DH output:
/// send them sealed.
#[derive(
    Clone, Serialize, Deserialize, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
pub struct PartialDecryption {
    pub point: Vec<u8>,
    pub proof: Vec<u8>,
}

/// t partials reveal the DH output: `Debug` shows their sizes only (DESIGN.md §8).
impl fmt::Debug for PartialDecryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PartialDecryption {{ point: <{} bytes redacted>, proof: <{} bytes> }}",
            self.point.len(),
            self.proof.len()
        )
    }
}

/// Node side: validates the ephemeral point, computes D_i = s_i·E and a DLEQ proof that
/// log_G(Y_i) = log_E(D_i), where Y_i = s_i·G is the node's verifying share.
///
/// X25519 `enc`s are rejected if they do not lift to Curve25519 (twist, u = −1), are small
/// order, are not canonical, or are not torsion-free; secp256k1 points if they are off the
/// curve, the identity, or not in standard SEC1 form (33 or 65 bytes).
pub fn partial_decrypt<R: RngCore + CryptoRng>(
    scheme: Scheme,
    share: &ShareScalar,
    ephemeral: &[u8],
    rng: &mut R,
) -> Result<PartialDecryption, DecryptError> {
    match scheme {
        Scheme::HpkeX25519 => {
            let s = share.ed25519()?;
            let e = x25519::lift_enc(ephemeral)?;
            Ok(threshold::partial::<Ed25519, R>(s, &e, rng))
        }
        Scheme::EciesSecp256k1 => {
            let s = share.secp256k1()?;
            let e = Secp256k1::decode_point(ephemeral, "ephemeral public key")?;
            Ok(threshold::partial::<Secp256k1, R>(s, &e, rng))
        }
    }
}

/// Combiner side: checks that `partial` is a valid point (torsion-free for Edwards) and that its
/// proof verifies against `verifying_share` (the FROST `VerifyingShare` bytes: 32-byte Edwards
/// or 33-byte SEC1) for this `ephemeral`.
pub fn verify_partial(
    scheme: Scheme,
    verifying_share: &[u8],
    ephemeral: &[u8],
    partial: &PartialDecryption,
) -> Result<(), DecryptError> {
    match scheme {
        Scheme::HpkeX25519 => {
            let e = x25519::lift_enc(ephemeral)?;
            threshold::verify::<Ed25519>(verifying_share, &e, partial)
        }
        Scheme::EciesSecp256k1 => {
            let e = Secp256k1::decode_point(ephemeral, "ephemeral public key")?;
            threshold::verify::<Secp256k1>(verifying_share, &e, partial)
        }
    }
}

/// Checks an ephemeral point as every node does before computing a partial on it (see
/// [`partial_decrypt`]): a requester or coordinator that accepts a point expects every honest
/// holder to accept it too.
pub fn check_ephemeral(scheme: Scheme, ephemeral: &[u8]) -> Result<(), DecryptError> {
    match scheme {
        Scheme::HpkeX25519 => x25519::lift_enc(ephemeral).map(|_| ()),
        Scheme::EciesSecp256k1 => {
            Secp256k1::decode_point(ephemeral, "ephemeral public key").map(|_| ())
        }
    }
}

/// Combiner: Lagrange-combines the given (already verified) partials, keyed by FROST identifier
/// (1-based), over exactly that set of identifiers; derives the key with the HPKE key schedule
/// or the ECIES KDF and opens the AEAD.
///
/// With fewer than t partials, or partials for another ciphertext, the result is
/// [`DecryptError::AeadOpen`]. `group_public_key` is the FROST `VerifyingKey` bytes (32-byte
/// Edwards or 33-byte SEC1).
pub fn combine_and_open(
    group_public_key: &[u8],
    partials: &BTreeMap<u16, PartialDecryption>,
    ciphertext: &Ciphertext,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    // Lengths first, so that a truncated ciphertext costs nothing.
    ciphertext.ephemeral()?;
    match ciphertext {
        Ciphertext::Hpke {
            enc,
            ciphertext,
            info,
            aad,
            aead,
        } => {
            let pk_r = x25519::public_key(group_public_key)?;
            let combined = threshold::combine::<Ed25519>(partials)?;
            let dh = x25519::shared_secret(&combined)?;
            hpke_schedule::open_base(&dh, enc, &pk_r, info, aad, ciphertext, *aead)
        }
        Ciphertext::Ecies { blob } => {
            Secp256k1::decode_point(group_public_key, "group public key")?;
            let parts = ecies::split(blob)?;
            let combined = threshold::combine::<Secp256k1>(partials)?;
            let shared = secp256k1::shared_point_uncompressed(&combined)?;
            ecies::open(&parts, &shared)
        }
    }
}

/// Public-key encryption with the group key (the frost verifying key), producing exactly what
/// pyhpke / eciespy produce.
pub fn encrypt<R: RngCore + CryptoRng>(
    scheme: Scheme,
    group_public_key: &[u8],
    plaintext: &[u8],
    info: &[u8],
    aad: &[u8],
    aead: HpkeAead,
    rng: &mut R,
) -> Result<Ciphertext, DecryptError> {
    let standard = standard_public_key(scheme, group_public_key)?;
    encrypt_to_public_key(scheme, &standard, plaintext, info, aad, aead, rng)
}

/// Encryption to a key's standard public key, the one the API publishes: the 32-byte X25519
/// key for [`Scheme::HpkeX25519`], a SEC1 point for [`Scheme::EciesSecp256k1`]. This is all an
/// offline encryptor (an edge device) needs.
pub fn encrypt_to_public_key<R: RngCore + CryptoRng>(
    scheme: Scheme,
    public_key: &[u8],
    plaintext: &[u8],
    info: &[u8],
    aad: &[u8],
    aead: HpkeAead,
    rng: &mut R,
) -> Result<Ciphertext, DecryptError> {
    match scheme {
        Scheme::HpkeX25519 => {
            let pk_r: [u8; x25519::X25519_LEN] =
                public_key
                    .try_into()
                    .map_err(|_| DecryptError::WrongLength {
                        what: "X25519 public key",
                        expected: x25519::X25519_LEN,
                        got: public_key.len(),
                    })?;
            let (enc, ciphertext) = hpke_seal::seal(&pk_r, plaintext, info, aad, aead, rng)?;
            Ok(Ciphertext::Hpke {
                enc,
                ciphertext,
                info: info.to_vec(),
                aad: aad.to_vec(),
                aead,
            })
        }
        Scheme::EciesSecp256k1 => {
            if !info.is_empty() || !aad.is_empty() {
                return Err(DecryptError::Encrypt(
                    "eciespy-format ECIES has no info or aad; pass empty slices",
                ));
            }
            let recipient = Secp256k1::decode_point(public_key, "public key")?;
            let blob = ecies::seal(&recipient, plaintext, rng)?;
            Ok(Ciphertext::Ecies { blob })
        }
    }
}

/// The group key in its scheme's standard encoding: the 32-byte X25519 u-coordinate of the
/// Edwards group key, or the 33-byte compressed SEC1 point.
pub fn standard_public_key(
    scheme: Scheme,
    group_public_key: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    match scheme {
        Scheme::HpkeX25519 => Ok(x25519::public_key(group_public_key)?.to_vec()),
        Scheme::EciesSecp256k1 => {
            let point = Secp256k1::decode_point(group_public_key, "group public key")?;
            Ok(Secp256k1::encode_point(&point))
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::PartialDecryption;

    #[test]
    fn a_partial_decryption_prints_no_point_bytes() {
        let partial = PartialDecryption {
            point: vec![0xAB; 32],
            proof: vec![0xCD; 64],
        };
        let shown = format!("{partial:?} {partial:#?}");
        for needle in ["171", "abab", "ABAB", "205"] {
            assert!(!shown.contains(needle), "{shown}");
        }
        assert!(shown.contains("32 bytes redacted"), "{shown}");
    }
}
