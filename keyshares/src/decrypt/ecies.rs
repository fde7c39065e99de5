//! The eciespy 0.4 default format over secp256k1, as the Rust `ecies` crate 0.2 also writes it
//! (DESIGN.md §6):
//!
//! `blob = ephemeral_pk (65 B, 04 ‖ X ‖ Y) ‖ nonce (16 B) ‖ tag (16 B) ‖ ciphertext`,
//! `key = HKDF-SHA256(salt = none, ikm = ephemeral_pk ‖ shared_point (both 65 B), info = "")`,
//! AES-256-GCM with a 16-byte nonce and no AAD.
//!
//! The other eciespy options (compressed points, 12-byte nonce, XChaCha20) are not supported.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use hkdf::HkdfExtract;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::secp256k1::{self, UNCOMPRESSED_LEN};
use super::DecryptError;

/// AES-256-GCM with eciespy's 16-byte nonce.
type Aes256Gcm16 = AesGcm<Aes256, U16>;

const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// The fixed-size prefix of every blob: ephemeral key, nonce and tag.
pub(crate) const HEADER_LEN: usize = UNCOMPRESSED_LEN + NONCE_LEN + TAG_LEN;

/// A blob split into its parts (lengths checked, contents not yet).
pub(crate) struct Parts<'a> {
    pub(crate) ephemeral: &'a [u8],
    nonce: &'a [u8; NONCE_LEN],
    tag: &'a [u8; TAG_LEN],
    body: &'a [u8],
}

/// Splits a blob; fails only if it is shorter than the fixed-size parts.
pub(crate) fn split(blob: &[u8]) -> Result<Parts<'_>, DecryptError> {
    if blob.len() < HEADER_LEN {
        return Err(DecryptError::CiphertextTruncated {
            need: HEADER_LEN,
            got: blob.len(),
        });
    }
    let (ephemeral, rest) = blob.split_at(UNCOMPRESSED_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (tag, body) = rest.split_at(TAG_LEN);
    let short = |_| DecryptError::Internal("ECIES split");
    let nonce = nonce.try_into().map_err(short)?;
    let tag = tag.try_into().map_err(short)?;
    Ok(Parts {
        ephemeral,
        nonce,
        tag,
        body,
    })
}

/// eciespy's KDF: HKDF-SHA256 of `ephemeral ‖ shared`, empty salt and info, 32 bytes.
fn derive_key(
    ephemeral: &[u8],
    shared: &[u8; UNCOMPRESSED_LEN],
) -> Result<Zeroizing<[u8; 32]>, DecryptError> {
    let mut ext = HkdfExtract::<Sha256>::new(None);
    ext.input_ikm(ephemeral);
    ext.input_ikm(shared);
    let (_, hkdf) = ext.finalize();
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(b"", key.as_mut())
        .map_err(|_| DecryptError::Internal("HKDF output too long"))?;
    Ok(key)
}

/// Opens a blob given the shared point (the combined s·E, uncompressed).
pub(crate) fn open(
    parts: &Parts<'_>,
    shared: &[u8; UNCOMPRESSED_LEN],
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let key = derive_key(parts.ephemeral, shared)?;
    let cipher = Aes256Gcm16::new(key.as_ref().into());
    let mut plaintext = Zeroizing::new(parts.body.to_vec());
    cipher
        .decrypt_in_place_detached(
            parts.nonce.into(),
            b"",
            plaintext.as_mut(),
            parts.tag.into(),
        )
        .map_err(|_| DecryptError::AeadOpen)?;
    Ok(plaintext)
}

/// Encrypts to `recipient` in the default eciespy format.
pub(crate) fn seal<R: RngCore + CryptoRng>(
    recipient: &ProjectivePoint,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    let k = Zeroizing::new(NonZeroScalar::random(&mut *rng));
    let k: &Scalar = (*k).as_ref();
    let ephemeral = secp256k1::uncompressed(&(ProjectivePoint::GENERATOR * k).to_affine())?;
    let shared_point = Zeroizing::new(*recipient * k);
    let shared = secp256k1::shared_point_uncompressed(&shared_point)?;
    let key = derive_key(ephemeral.as_ref(), &shared)?;

    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut body = plaintext.to_vec();
    let tag = Aes256Gcm16::new(key.as_ref().into())
        .encrypt_in_place_detached((&nonce).into(), b"", &mut body)
        .map_err(|_| DecryptError::Encrypt("message too long for AES-GCM"))?;

    let mut blob = Vec::with_capacity(HEADER_LEN + body.len());
    blob.extend_from_slice(ephemeral.as_ref());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&tag);
    blob.extend_from_slice(&body);
    Ok(blob)
}
