//! The sender half of HPKE (RFC 9180 §6.1, single-shot base mode), delegated to the `hpke`
//! crate so that what we produce is what a standard implementation produces.

use hpke::aead::{Aead, AesGcm128, AesGcm256, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};

use super::{DecryptError, HpkeAead};

/// `(enc, ciphertext ‖ tag)` for an X25519 public key (a 32-byte u-coordinate).
pub(crate) fn seal<R: RngCore + CryptoRng>(
    pk_r: &[u8; 32],
    plaintext: &[u8],
    info: &[u8],
    aad: &[u8],
    aead: HpkeAead,
    rng: &mut R,
) -> Result<(Vec<u8>, Vec<u8>), DecryptError> {
    match aead {
        HpkeAead::Aes128Gcm => seal_with::<AesGcm128, R>(pk_r, plaintext, info, aad, rng),
        HpkeAead::Aes256Gcm => seal_with::<AesGcm256, R>(pk_r, plaintext, info, aad, rng),
        HpkeAead::ChaCha20Poly1305 => {
            seal_with::<ChaCha20Poly1305, R>(pk_r, plaintext, info, aad, rng)
        }
    }
}

fn seal_with<A: Aead, R: RngCore + CryptoRng>(
    pk_r: &[u8; 32],
    plaintext: &[u8],
    info: &[u8],
    aad: &[u8],
    rng: &mut R,
) -> Result<(Vec<u8>, Vec<u8>), DecryptError> {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(pk_r)
        .map_err(|_| DecryptError::Encrypt("invalid X25519 public key"))?;
    let (enc, ciphertext) = hpke::single_shot_seal::<A, HkdfSha256, X25519HkdfSha256, R>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| DecryptError::Encrypt("HPKE seal failed"))?;
    Ok((enc.to_bytes().to_vec(), ciphertext))
}
