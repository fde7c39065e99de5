//! The receiver half of RFC 9180 HPKE, base mode, for DHKEM(X25519, HKDF-SHA256) (KEM 0x0020),
//! HKDF-SHA256 (KDF 0x0001) and the three AEADs of [`HpkeAead`], starting from the DH output
//! that the threshold combination produced instead of from a private key.
//!
//! - §4: `LabeledExtract` / `LabeledExpand` with "HPKE-v1" and the suite id.
//! - §4.1: `Decap`: `dh` (all-zero rejected, §7.1.4), `kem_context = enc ‖ pkRm`,
//!   `ExtractAndExpand`.
//! - §5.1: `KeySchedule` for mode_base (empty psk and psk_id).
//! - §5.2 / §6.1: open of the single-shot message, sequence number 0, so the nonce is
//!   `base_nonce` itself.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{DecryptError, HpkeAead};

/// DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1.
const KEM_ID: u16 = 0x0020;
/// HKDF-SHA256, RFC 9180 §7.2.
const KDF_ID: u16 = 0x0001;
/// Nsecret of the KEM and Nh of the KDF: 32 bytes.
const NH: usize = 32;
/// Nn of all three AEADs.
const NN: usize = 12;
/// Nt of all three AEADs.
pub(crate) const NT: usize = 16;
/// mode_base, RFC 9180 §5.
const MODE_BASE: u8 = 0x00;

impl HpkeAead {
    /// The AEAD identifier of RFC 9180 §7.3.
    fn id(self) -> u16 {
        match self {
            HpkeAead::Aes128Gcm => 0x0001,
            HpkeAead::Aes256Gcm => 0x0002,
            HpkeAead::ChaCha20Poly1305 => 0x0003,
        }
    }

    /// Nk, the key length.
    fn key_len(self) -> usize {
        match self {
            HpkeAead::Aes128Gcm => 16,
            HpkeAead::Aes256Gcm | HpkeAead::ChaCha20Poly1305 => 32,
        }
    }
}

/// `suite_id = "KEM" ‖ I2OSP(kem_id, 2)` (§4.1).
fn kem_suite_id() -> [u8; 5] {
    let [a, b] = KEM_ID.to_be_bytes();
    [b'K', b'E', b'M', a, b]
}

/// `suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2)` (§5.1).
fn hpke_suite_id(aead: HpkeAead) -> [u8; 10] {
    let mut id = [0u8; 10];
    id[..4].copy_from_slice(b"HPKE");
    id[4..6].copy_from_slice(&KEM_ID.to_be_bytes());
    id[6..8].copy_from_slice(&KDF_ID.to_be_bytes());
    id[8..].copy_from_slice(&aead.id().to_be_bytes());
    id
}

/// `LabeledExtract(salt, label, ikm)`; the ikm is fed in parts so that no secret is copied into
/// a temporary concatenation. Returns the PRK (zeroized on drop) and the HKDF keyed with it.
fn labeled_extract(
    suite_id: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[&[u8]],
) -> (Zeroizing<[u8; NH]>, Hkdf<Sha256>) {
    let mut ext = HkdfExtract::<Sha256>::new(Some(salt));
    ext.input_ikm(b"HPKE-v1");
    ext.input_ikm(suite_id);
    ext.input_ikm(label);
    for part in ikm {
        ext.input_ikm(part);
    }
    let (mut prk, hkdf) = ext.finalize();
    let mut out = Zeroizing::new([0u8; NH]);
    out.copy_from_slice(&prk);
    prk.as_mut_slice().zeroize();
    (out, hkdf)
}

/// `LabeledExpand(prk, label, info, L)` with `L = okm.len()`.
fn labeled_expand(
    prk: &Hkdf<Sha256>,
    suite_id: &[u8],
    label: &[u8],
    info: &[&[u8]],
    okm: &mut [u8],
) -> Result<(), DecryptError> {
    let len = u16::try_from(okm.len())
        .map_err(|_| DecryptError::Internal("HKDF output too long"))?
        .to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![&len, b"HPKE-v1", suite_id, label];
    parts.extend_from_slice(info);
    prk.expand_multi_info(&parts, okm)
        .map_err(|_| DecryptError::Internal("HKDF output too long"))
}

/// `ExtractAndExpand(dh, kem_context)` of DHKEM (§4.1) with `kem_context = enc ‖ pkRm`.
pub(crate) fn extract_and_expand(
    dh: &[u8; 32],
    enc: &[u8],
    pk_r: &[u8; 32],
) -> Result<Zeroizing<[u8; NH]>, DecryptError> {
    let suite = kem_suite_id();
    let (_, eae_prk) = labeled_extract(&suite, b"", b"eae_prk", &[dh]);
    let mut shared_secret = Zeroizing::new([0u8; NH]);
    labeled_expand(
        &eae_prk,
        &suite,
        b"shared_secret",
        &[enc, pk_r],
        shared_secret.as_mut(),
    )?;
    Ok(shared_secret)
}

/// The AEAD key and base nonce of a context (§5.1). Both are secret.
pub(crate) struct ContextKeys {
    key: Zeroizing<[u8; 32]>,
    key_len: usize,
    base_nonce: Zeroizing<[u8; NN]>,
}

impl ContextKeys {
    /// A 32-byte key and a base nonce revealed by a recipient ([`crate::seal::reveal`]).
    pub(crate) fn from_parts(key: &[u8; 32], base_nonce: &[u8; NN]) -> ContextKeys {
        ContextKeys {
            key: Zeroizing::new(*key),
            key_len: 32,
            base_nonce: Zeroizing::new(*base_nonce),
        }
    }

    /// The key bytes (Nk of them).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The base nonce.
    pub(crate) fn base_nonce(&self) -> &[u8; NN] {
        &self.base_nonce
    }
}

/// `KeySchedule(mode_base, shared_secret, info, "", "")` (§5.1), without the exporter secret.
pub(crate) fn key_schedule_base(
    shared_secret: &[u8; NH],
    info: &[u8],
    aead: HpkeAead,
) -> Result<ContextKeys, DecryptError> {
    let suite = hpke_suite_id(aead);
    let (psk_id_hash, _) = labeled_extract(&suite, b"", b"psk_id_hash", &[b""]);
    let (info_hash, _) = labeled_extract(&suite, b"", b"info_hash", &[info]);
    let mode = [MODE_BASE];
    let context: [&[u8]; 3] = [&mode, psk_id_hash.as_ref(), info_hash.as_ref()];
    let (_, secret) = labeled_extract(&suite, shared_secret, b"secret", &[b""]);

    let mut keys = ContextKeys {
        key: Zeroizing::new([0u8; 32]),
        key_len: aead.key_len(),
        base_nonce: Zeroizing::new([0u8; NN]),
    };
    labeled_expand(
        &secret,
        &suite,
        b"key",
        &context,
        &mut keys.key[..keys.key_len],
    )?;
    labeled_expand(
        &secret,
        &suite,
        b"base_nonce",
        &context,
        keys.base_nonce.as_mut(),
    )?;
    Ok(keys)
}

/// Opens `ciphertext ‖ tag` with sequence number 0.
pub(crate) fn open_first(
    keys: &ContextKeys,
    aead: HpkeAead,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    match aead {
        HpkeAead::Aes128Gcm => open_with::<Aes128Gcm>(keys, aad, ciphertext),
        HpkeAead::Aes256Gcm => open_with::<Aes256Gcm>(keys, aad, ciphertext),
        HpkeAead::ChaCha20Poly1305 => open_with::<ChaCha20Poly1305>(keys, aad, ciphertext),
    }
}

fn open_with<A: AeadInPlace<NonceSize = U12, TagSize = U16> + KeyInit>(
    keys: &ContextKeys,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let body_len = ciphertext
        .len()
        .checked_sub(NT)
        .ok_or(DecryptError::CiphertextTruncated {
            need: NT,
            got: ciphertext.len(),
        })?;
    let (body, tag) = ciphertext.split_at(body_len);
    let tag: &[u8; NT] = tag
        .try_into()
        .map_err(|_| DecryptError::Internal("tag length"))?;
    let cipher =
        A::new_from_slice(keys.key()).map_err(|_| DecryptError::Internal("AEAD key length"))?;
    let mut plaintext = Zeroizing::new(body.to_vec());
    // Sequence 0: nonce = base_nonce XOR I2OSP(0, Nn) = base_nonce (§5.2).
    cipher
        .decrypt_in_place_detached(
            keys.base_nonce().into(),
            aad,
            plaintext.as_mut(),
            tag.into(),
        )
        .map_err(|_| DecryptError::AeadOpen)?;
    Ok(plaintext)
}

/// Decap from a DH output, then the key schedule, then open (§4.1, §5.1, §6.1).
pub(crate) fn open_base(
    dh: &[u8; 32],
    enc: &[u8],
    pk_r: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    aead: HpkeAead,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    // RFC 9180 §7.1.4 / RFC 7748 §6.1: an all-zero X25519 output must be rejected.
    if bool::from(dh.ct_eq(&[0u8; 32])) {
        return Err(DecryptError::DegenerateSharedSecret);
    }
    let shared_secret = extract_and_expand(dh, enc, pk_r)?;
    let keys = key_schedule_base(&shared_secret, info, aead)?;
    open_first(&keys, aead, aad, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    /// RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base):
    /// the intermediate values, so that a failure of the threshold test points at a stage.
    #[test]
    fn hpke_schedule_matches_rfc9180_a11_intermediates() {
        let enc = h::<32>("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
        let pk_r = h::<32>("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d");
        let info = hex::decode("4f6465206f6e2061204772656369616e2055726e").unwrap();
        let shared = h::<32>("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc");

        // dh is not in the vector; derive it from skRm with an ordinary X25519 to test Decap.
        let sk_r = h::<32>("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8");
        let dh = curve25519_dalek::montgomery::MontgomeryPoint(enc).mul_clamped(sk_r);
        assert_eq!(
            *extract_and_expand(&dh.to_bytes(), &enc, &pk_r).unwrap(),
            shared
        );

        let keys = key_schedule_base(&shared, &info, HpkeAead::Aes128Gcm).unwrap();
        assert_eq!(
            keys.key(),
            hex::decode("4531685d41d65f03dc48f6b8302c05b0").unwrap()
        );
        assert_eq!(keys.base_nonce(), &h::<12>("56d890e5accaaf011cff4b7d"));

        let ct = hex::decode(
            "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
        )
        .unwrap();
        let pt = open_first(&keys, HpkeAead::Aes128Gcm, b"Count-0", &ct).unwrap();
        assert_eq!(&pt[..], b"Beauty is truth, truth beauty");
    }

    #[test]
    fn hpke_schedule_rejects_all_zero_dh() {
        let err = open_base(
            &[0; 32],
            &[9; 32],
            &[9; 32],
            b"",
            b"",
            &[0; 16],
            HpkeAead::Aes128Gcm,
        );
        assert_eq!(err.err(), Some(DecryptError::DegenerateSharedSecret));
    }

    #[test]
    fn hpke_schedule_rejects_short_ciphertext() {
        let keys = key_schedule_base(&[1; 32], b"", HpkeAead::ChaCha20Poly1305).unwrap();
        assert_eq!(
            open_first(&keys, HpkeAead::ChaCha20Poly1305, b"", &[0; 15]).err(),
            Some(DecryptError::CiphertextTruncated { need: 16, got: 15 })
        );
    }
}
