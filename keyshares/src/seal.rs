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

/// The AEAD key and nonce of one sealed message (RFC 9180 §5.1, sequence number 0): what a
/// recipient reveals so that anyone can open that one message, and no other.
///
/// This is how a complaint about a sealed share is made checkable (DESIGN.md §11; GJKR's
/// complaint phase): the recipient reveals the message key, the coordinator opens the sealed
/// blob *the sender signed* with it and checks the plaintext against the sender's commitment.
/// No new trust is needed: the sender's signature says what was sent, and the AEAD says what
/// it contains — a key that opens a ciphertext someone else made is as hard to find as a
/// forgery of ChaCha20-Poly1305, so a recipient cannot make an honest sender's share look
/// bad. The key is derived through HKDF from this message's own DH output, so revealing it
/// exposes nothing of the recipient's identity key or any other message (unlike revealing the
/// DH output, which would answer a Diffie-Hellman query on the identity key).
///
/// What it cannot settle: a blob that does not open at all under the revealed key may be a
/// sender's garbage or a recipient's wrong key; without a proof that the key was derived
/// correctly (a DLEQ proof of the decapsulation), nobody can tell, and both are named.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct MessageKey {
    key: [u8; 32],
    nonce: [u8; 12],
}

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

impl MessageKey {
    /// key ‖ nonce, 44 bytes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(self.key.to_vec());
        out.extend_from_slice(&self.nonce);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<MessageKey, ProtocolError> {
        if bytes.len() != 44 {
            return Err(ProtocolError::invalid("a message key is 44 bytes"));
        }
        let mut key = MessageKey {
            key: [0; 32],
            nonce: [0; 12],
        };
        key.key.copy_from_slice(&bytes[..32]);
        key.nonce.copy_from_slice(&bytes[32..]);
        Ok(key)
    }
}

/// The recipient's side: the message key of `sealed` (which must open with it, so that an
/// honest recipient never reveals a key that does not).
pub fn reveal(
    secret: &[u8; 32],
    context: &[u8],
    sealed: &[u8],
) -> Result<MessageKey, ProtocolError> {
    use crate::decrypt::hpke_schedule::{extract_and_expand, key_schedule_base};
    use crate::decrypt::HpkeAead;
    let enc: [u8; ENC_LEN] = sealed
        .get(..ENC_LEN)
        .and_then(|e| e.try_into().ok())
        .ok_or_else(|| ProtocolError::invalid("sealed message truncated"))?;
    let pk_r = public_key(secret)?;
    // X25519 as RFC 7748 §5 (the scalar clamped), the DH of DHKEM's Decap (RFC 9180 §4.1).
    let dh = Zeroizing::new(
        curve25519_dalek::montgomery::MontgomeryPoint(enc)
            .mul_clamped(*secret)
            .to_bytes(),
    );
    if dh.iter().all(|b| *b == 0) {
        return Err(ProtocolError::invalid("degenerate key encapsulation"));
    }
    let broken = |_| ProtocolError::invalid("HPKE key schedule failed");
    let shared = extract_and_expand(&dh, &enc, &pk_r).map_err(broken)?;
    let keys = key_schedule_base(&shared, INFO, HpkeAead::ChaCha20Poly1305).map_err(broken)?;
    let mut revealed = MessageKey {
        key: [0; 32],
        nonce: *keys.base_nonce(),
    };
    revealed.key.copy_from_slice(keys.key());
    open_revealed(&revealed, context, sealed)?;
    Ok(revealed)
}

/// Anyone's side: opens `sealed` with a revealed message key.
pub fn open_revealed(
    key: &MessageKey,
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    use crate::decrypt::hpke_schedule::{open_first, ContextKeys};
    let ciphertext = sealed
        .get(ENC_LEN..)
        .ok_or_else(|| ProtocolError::invalid("sealed message truncated"))?;
    let keys = ContextKeys::from_parts(&key.key, &key.nonce);
    open_first(
        &keys,
        crate::decrypt::HpkeAead::ChaCha20Poly1305,
        context,
        ciphertext,
    )
    .map_err(|_| ProtocolError::invalid("the revealed key does not open the sealed message"))
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

    #[test]
    fn a_revealed_message_key_opens_that_message_only() {
        let (sk, pk) = generate(&mut OsRng);
        let sealed = seal(&pk, b"s|3|1", b"share of 3 for 1", &mut OsRng).unwrap();
        let key = reveal(&sk, b"s|3|1", &sealed).unwrap();
        assert_eq!(
            &open_revealed(&key, b"s|3|1", &sealed).unwrap()[..],
            b"share of 3 for 1"
        );
        let key = MessageKey::from_bytes(&key.to_bytes()).unwrap();
        // Not another context, not another message, not a tampered one.
        assert!(open_revealed(&key, b"s|3|2", &sealed).is_err());
        let other = seal(&pk, b"s|3|1", b"share of 3 for 1", &mut OsRng).unwrap();
        assert!(open_revealed(&key, b"s|3|1", &other).is_err());
        let mut tampered = sealed.clone();
        tampered[40] ^= 1;
        assert!(open_revealed(&key, b"s|3|1", &tampered).is_err());
        // A recipient cannot reveal a key for a blob that does not open for it.
        let (stranger, _) = generate(&mut OsRng);
        assert!(reveal(&stranger, b"s|3|1", &sealed).is_err());
        assert!(reveal(&sk, b"s|3|1", &sealed[..20]).is_err());
        assert!(MessageKey::from_bytes(&[0; 12]).is_err());
    }
}
