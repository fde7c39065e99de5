//! End-to-end mode, holder side (DESIGN.md §6 "who learns the plaintext"): a partial
//! decryption and its DLEQ proof sealed to the requester's ephemeral X25519 key, bound to the
//! request and the item, so a relaying coordinator can neither read nor move it.
//!
//! The seal is [`crate::seal`] (RFC 9180 HPKE base mode); the context of [`reply_context`] is
//! its AAD.

use rand_core::{CryptoRng, RngCore};

use super::{DecryptError, PartialDecryption, Scheme};

/// What a sealed partial is bound to: the key, the requesting client and the nonce of its
/// signed request (unique per request), the holder, and the item's index in the request.
pub fn reply_context(key: &str, client: &str, nonce: &str, holder: u16, item: usize) -> Vec<u8> {
    format!("keyquorum/decrypt/reply/v1|{key}|{client}|{nonce}|{holder}|{item}").into_bytes()
}

/// Seals `partial` (proof ‖ point) to the requester's `reply_to` key under `context`. The proof
/// has the scheme's fixed length ([`Scheme::proof_len`]), so the plaintext splits one way only.
pub fn seal_partial<R: RngCore + CryptoRng>(
    reply_to: &[u8; 32],
    context: &[u8],
    partial: &PartialDecryption,
    rng: &mut R,
) -> Result<Vec<u8>, DecryptError> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(
        partial.proof.len() + partial.point.len(),
    ));
    plain.extend_from_slice(&partial.proof);
    plain.extend_from_slice(&partial.point);
    crate::seal::seal(reply_to, context, &plain, rng)
        .map_err(|_| DecryptError::Encrypt("cannot seal to the reply_to key"))
}

/// Opens what [`seal_partial`] sealed for a key of `scheme`; `None` if it does not open under
/// this key and context or is too short to hold a proof and a point.
pub fn open_partial(
    scheme: Scheme,
    secret: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Option<PartialDecryption> {
    let plain = crate::seal::open(secret, context, sealed).ok()?;
    let proof_len = scheme.proof_len();
    if plain.len() <= proof_len {
        return None;
    }
    Some(PartialDecryption {
        proof: plain[..proof_len].to_vec(),
        point: plain[proof_len..].to_vec(),
    })
}
