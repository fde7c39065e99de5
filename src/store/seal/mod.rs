//! The seal header: how the store's data key is wrapped at rest (DESIGN.md §8). Either under a
//! key derived from the operator's passphrase (`passphrase`), or by a non-extractable AES-256
//! key on a PKCS#11 token (`pkcs11`). The header says which, so a node configured for one
//! refuses a store wrapped by the other instead of guessing.

pub mod passphrase;

use zeroize::Zeroizing;

use super::StoreError;
pub use crate::pkcs11::TokenSeal;

pub const SEAL_HEADER: &[u8] = b"seal/v1";

/// What wraps and unwraps the data key.
pub enum Unsealer {
    Passphrase(Zeroizing<String>),
    Token(TokenSeal),
}

impl Unsealer {
    pub fn kind(&self) -> &'static str {
        match self {
            Unsealer::Passphrase(_) => "passphrase",
            Unsealer::Token(_) => "pkcs11",
        }
    }

    /// A fresh header wrapping `dek`; the token's key is created if it is absent.
    pub fn wrap(&self, dek: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        match self {
            Unsealer::Passphrase(p) => {
                if p.is_empty() {
                    return Err(anyhow::anyhow!("the passphrase is empty").into());
                }
                Ok(passphrase::wrap_dek(p, dek)?)
            }
            Unsealer::Token(token) => Ok(token.wrap(dek)?),
        }
    }

    /// The data key in `header`; refuses a header of the other kind, naming both.
    pub fn unwrap(&self, header: &[u8]) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let wrapped_by = header_kind(header)?;
        if wrapped_by != self.kind() {
            return Err(StoreError::Seal(format!(
                "the store's data key is wrapped by {wrapped_by} but this node is configured \
                 for [seal] kind = \"{}\"; set kind = \"{wrapped_by}\" or move the store with \
                 `keyquorum store rewrap --to {}` (nothing was changed)",
                self.kind(),
                self.kind()
            )));
        }
        match self {
            Unsealer::Passphrase(p) => passphrase::unwrap_dek(p, header),
            Unsealer::Token(token) => Ok(token.unwrap(header)?),
        }
    }
}

/// `passphrase` or `pkcs11`: what wrapped the data key in `header`. Passphrase headers predate
/// the field and carry none.
pub fn header_kind(header: &[u8]) -> Result<&'static str, StoreError> {
    let value: serde_json::Value = serde_json::from_slice(header)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("corrupt seal header")))?;
    match value.get("kind").and_then(|k| k.as_str()) {
        None => Ok("passphrase"),
        Some("pkcs11") => Ok("pkcs11"),
        Some(other) => Err(anyhow::anyhow!("seal header of unknown kind {other:?}").into()),
    }
}
