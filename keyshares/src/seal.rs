//! Sealing of secrets sent to a peer: round-2 DKG packages and partial decryptions travel
//! encrypted to the recipient's long-term X25519 identity key, never in the clear (DESIGN.md §4.3,
//! §6 "who learns the plaintext").
//!
//! HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, through
//! the `hpke` crate. The caller's context (session, sender, recipient, message kind) is the AAD,
//! so a sealed blob cannot be replayed into another session or to another recipient. Sender
//! authenticity comes from the signed envelope around it, not from HPKE.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::ProtocolError;

const INFO: &[u8] = b"keyquorum/seal/v1";
const ENC_LEN: usize = 32;

type Kem = X25519HkdfSha256;

/// A fresh identity key pair for sealing: (secret, public), 32 bytes each.
pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let (sk, pk) = Kem::gen_keypair(rng);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&sk.to_bytes());
    let mut public = [0u8; 32];
    public.copy_from_slice(&pk.to_bytes());
    (secret, public)
}

/// The public key of a sealing secret key.
pub fn public_key(secret: &[u8; 32]) -> Result<[u8; 32], ProtocolError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| ProtocolError::invalid("invalid sealing secret key"))?;
    let mut public = [0u8; 32];
    public.copy_from_slice(&Kem::sk_to_pk(&sk).to_bytes());
    Ok(public)
}

/// Seals `plaintext` to `recipient`; the output is `enc (32 bytes) ‖ ciphertext`.
pub fn seal<R: RngCore + CryptoRng>(
    recipient: &[u8; 32],
    context: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, ProtocolError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| ProtocolError::invalid("invalid recipient sealing key"))?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        INFO,
        plaintext,
        context,
        rng,
    )
    .map_err(|e| ProtocolError::invalid(format!("sealing failed: {e}")))?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal`] produced for this recipient and context.
pub fn open(
    secret: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    if sealed.len() < ENC_LEN {
        return Err(ProtocolError::invalid("sealed message truncated"));
    }
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| ProtocolError::invalid("invalid sealing secret key"))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[..ENC_LEN])
        .map_err(|_| ProtocolError::invalid("sealed message has an invalid key encapsulation"))?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        INFO,
        &sealed[ENC_LEN..],
        context,
    )
    .map(Zeroizing::new)
    .map_err(|_| {
        ProtocolError::invalid(
            "sealed message does not open (wrong recipient, context or tampered)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn seals_to_recipient_and_context_only() {
        let (sk, pk) = generate(&mut OsRng);
        assert_eq!(public_key(&sk).unwrap(), pk);
        let sealed = seal(&pk, b"session-1|1|2|dkg", b"share", &mut OsRng).unwrap();
        assert_eq!(
            &open(&sk, b"session-1|1|2|dkg", &sealed).unwrap()[..],
            b"share"
        );
        assert!(open(&sk, b"session-2|1|2|dkg", &sealed).is_err());
        let (other, _) = generate(&mut OsRng);
        assert!(open(&other, b"session-1|1|2|dkg", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&sk, b"session-1|1|2|dkg", &tampered).is_err());
        assert!(open(&sk, b"x", &sealed[..10]).is_err());
    }
}
