//! The two frost ciphersuites keyquorum uses, and the mapping between node ids and frost
//! identifiers.

use frost_core::{Ciphersuite, Identifier};
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// The group a key lives in. Signing and decryption keys of the same curve come from the same
/// DKG; only their purpose differs (DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Curve {
    /// frost-ed25519 (Ed25519, SHA-512), RFC 9591 §6.1.
    Ed25519,
    /// frost-secp256k1 (secp256k1, SHA-256).
    Secp256k1,
}

pub type Ed25519 = frost_ed25519::Ed25519Sha512;
pub type Secp256k1 = frost_secp256k1::Secp256K1Sha256;

/// Node ids are the frost identifiers: 1-based, so id `i` is the polynomial evaluated at `i`.
pub fn identifier<C: Ciphersuite>(id: u16) -> Result<Identifier<C>, ProtocolError> {
    Identifier::try_from(id)
        .map_err(|_| ProtocolError::invalid(format!("invalid participant id {id}")))
}

/// The inverse of [`identifier`]; `None` for identifiers that are not small integers (frost
/// also allows identifiers derived from arbitrary bytes; keyquorum never makes them).
///
/// Scalars serialise little-endian for Ed25519 and big-endian for secp256k1; a small integer
/// has its two low bytes at one end and zeros elsewhere, which tells the two apart.
pub fn identifier_to_u16<C: Ciphersuite>(id: &Identifier<C>) -> Option<u16> {
    let bytes = id.serialize();
    let n = bytes.len();
    if n < 2 {
        return None;
    }
    let candidate = if bytes[2..].iter().all(|b| *b == 0) {
        u16::from_le_bytes([bytes[0], bytes[1]])
    } else if bytes[..n - 2].iter().all(|b| *b == 0) {
        u16::from_be_bytes([bytes[n - 2], bytes[n - 1]])
    } else {
        return None;
    };
    // Guard against a misread endianness: the round trip must give back the same identifier.
    (Identifier::<C>::try_from(candidate).ok().as_ref() == Some(id)).then_some(candidate)
}
