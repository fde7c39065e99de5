//! A participant's share of a key and the key's public data, for either curve.

use std::collections::BTreeMap;
use std::fmt;

use frost_core::keys::{KeyPackage, PublicKeyPackage};
use frost_core::Ciphersuite;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::curve::{identifier_to_u16, Curve, Ed25519, Secp256k1};
use crate::ProtocolError;

/// One participant's secret share with the public data frost keeps beside it. The frost
/// `KeyPackage` inside zeroizes itself on drop; `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyShare {
    Ed25519(KeyPackage<Ed25519>),
    Secp256k1(KeyPackage<Secp256k1>),
}

/// The public data of a key: group verifying key, every participant's verifying share, and the
/// threshold. Identical on every participant once a ceremony has been confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKeys {
    Ed25519(PublicKeyPackage<Ed25519>),
    Secp256k1(PublicKeyPackage<Secp256k1>),
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("curve", &self.curve())
            .field("identifier", &self.identifier())
            .field("signing_share", &"<redacted>")
            .finish()
    }
}

fn frost_err<C: Ciphersuite>(what: &str) -> impl Fn(frost_core::Error<C>) -> ProtocolError + '_ {
    move |e| ProtocolError::invalid(format!("{what}: {e}"))
}

impl KeyShare {
    pub fn curve(&self) -> Curve {
        match self {
            KeyShare::Ed25519(_) => Curve::Ed25519,
            KeyShare::Secp256k1(_) => Curve::Secp256k1,
        }
    }

    /// This participant's node id.
    pub fn identifier(&self) -> u16 {
        let id = match self {
            KeyShare::Ed25519(k) => identifier_to_u16(k.identifier()),
            KeyShare::Secp256k1(k) => identifier_to_u16(k.identifier()),
        };
        // A KeyShare is only ever built from a keyquorum DKG, whose identifiers are node ids.
        id.unwrap_or(0)
    }

    pub fn threshold(&self) -> u16 {
        match self {
            KeyShare::Ed25519(k) => *k.min_signers(),
            KeyShare::Secp256k1(k) => *k.min_signers(),
        }
    }

    /// The serialised key package, for sealing at rest only.
    pub fn to_secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
        match self {
            KeyShare::Ed25519(k) => k.serialize().map_err(frost_err("key package")),
            KeyShare::Secp256k1(k) => k.serialize().map_err(frost_err("key package")),
        }
        .map(Zeroizing::new)
    }

    pub fn from_secret_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, ProtocolError> {
        Ok(match curve {
            Curve::Ed25519 => {
                KeyShare::Ed25519(KeyPackage::deserialize(bytes).map_err(frost_err("key package"))?)
            }
            Curve::Secp256k1 => KeyShare::Secp256k1(
                KeyPackage::deserialize(bytes).map_err(frost_err("key package"))?,
            ),
        })
    }

    /// This participant's verifying share (public), serialised.
    pub fn verifying_share(&self) -> Vec<u8> {
        match self {
            KeyShare::Ed25519(k) => k.verifying_share().serialize().unwrap_or_default(),
            KeyShare::Secp256k1(k) => k.verifying_share().serialize().unwrap_or_default(),
        }
    }
}

fn shares_of<C: Ciphersuite>(pkp: &PublicKeyPackage<C>) -> BTreeMap<u16, Vec<u8>> {
    pkp.verifying_shares()
        .iter()
        .filter_map(|(id, share)| Some((identifier_to_u16(id)?, share.serialize().ok()?)))
        .collect()
}

impl PublicKeys {
    pub fn curve(&self) -> Curve {
        match self {
            PublicKeys::Ed25519(_) => Curve::Ed25519,
            PublicKeys::Secp256k1(_) => Curve::Secp256k1,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        match self {
            PublicKeys::Ed25519(p) => p.serialize().map_err(frost_err("public key package")),
            PublicKeys::Secp256k1(p) => p.serialize().map_err(frost_err("public key package")),
        }
    }

    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, ProtocolError> {
        Ok(match curve {
            Curve::Ed25519 => PublicKeys::Ed25519(
                PublicKeyPackage::deserialize(bytes).map_err(frost_err("public key package"))?,
            ),
            Curve::Secp256k1 => PublicKeys::Secp256k1(
                PublicKeyPackage::deserialize(bytes).map_err(frost_err("public key package"))?,
            ),
        })
    }

    /// The group verifying key in frost's encoding: the 32-byte compressed Edwards point (an
    /// ordinary Ed25519 public key) or the 33-byte compressed SEC1 point.
    pub fn group_key(&self) -> Vec<u8> {
        match self {
            PublicKeys::Ed25519(p) => p.verifying_key().serialize().unwrap_or_default(),
            PublicKeys::Secp256k1(p) => p.verifying_key().serialize().unwrap_or_default(),
        }
    }

    /// Shares needed to sign or decrypt; `None` only for public data made before frost 3.0,
    /// which did not record it.
    pub fn threshold(&self) -> Option<u16> {
        match self {
            PublicKeys::Ed25519(p) => p.min_signers(),
            PublicKeys::Secp256k1(p) => p.min_signers(),
        }
    }

    /// Every participant's verifying share, by node id.
    pub fn verifying_shares(&self) -> BTreeMap<u16, Vec<u8>> {
        match self {
            PublicKeys::Ed25519(p) => shares_of(p),
            PublicKeys::Secp256k1(p) => shares_of(p),
        }
    }

    /// A digest of the whole public data, what the confirmation round signs (DESIGN.md §4.4).
    pub fn digest(&self) -> Result<[u8; 32], ProtocolError> {
        let mut hasher = Sha256::new();
        hasher.update(b"keyquorum/public-keys/v1");
        hasher.update(self.to_bytes()?);
        Ok(hasher.finalize().into())
    }
}
