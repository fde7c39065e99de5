//! The digest of one ciphertext item as the audit trail records it: SHA-256 over a canonical
//! encoding of the whole item (`enc`, `info`, `aad`, `aead`, `ciphertext`), so an entry names
//! the exact record a decryption touched, not only its ciphertext (DESIGN.md §6, §8).
//!
//! Encoding: the prefix `keyquorum/decrypt-item/v1\0`, then for each field in the order
//! enc, info, aad, aead, ciphertext: `0x00` when absent, or `0x01`, the field's length as a
//! 4-byte big-endian integer and the field's text exactly as sent (base64 or the AEAD name).

use api::CiphertextItem;
use sha2::{Digest, Sha256};

const PREFIX: &[u8] = b"keyquorum/decrypt-item/v1\0";

pub fn canonical(item: &CiphertextItem) -> Vec<u8> {
    let fields = [
        item.enc.as_deref(),
        item.info.as_deref(),
        item.aad.as_deref(),
        item.aead.as_deref(),
        Some(item.ciphertext.as_str()),
    ];
    let mut buf = PREFIX.to_vec();
    for field in fields {
        match field {
            None => buf.push(0),
            Some(text) => {
                buf.push(1);
                // The body limit keeps every field far below 4 GiB; saturate all the same.
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(text.as_bytes());
            }
        }
    }
    buf
}

/// Hex SHA-256 of [`canonical`].
pub fn item_sha256(item: &CiphertextItem) -> String {
    hex::encode(Sha256::digest(canonical(item)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_its_presence_changes_the_digest() {
        let base = CiphertextItem {
            enc: Some("ZW5j".into()),
            ciphertext: "Y3Q=".into(),
            info: Some("aW5mbw==".into()),
            aad: None,
            aead: Some("aes-128-gcm".into()),
        };
        let mut seen = std::collections::BTreeSet::new();
        seen.insert(item_sha256(&base));
        let variants = [
            CiphertextItem {
                enc: None,
                ..base.clone()
            },
            CiphertextItem {
                info: Some("aW5mbx==".into()),
                ..base.clone()
            },
            CiphertextItem {
                aad: Some(String::new()),
                ..base.clone()
            },
            CiphertextItem {
                aead: Some("aes-256-gcm".into()),
                ..base.clone()
            },
            CiphertextItem {
                ciphertext: "Y3R=".into(),
                ..base.clone()
            },
            // The same text moved to another field.
            CiphertextItem {
                info: None,
                aad: Some("aW5mbw==".into()),
                ..base.clone()
            },
        ];
        for v in &variants {
            assert!(seen.insert(item_sha256(v)), "{v:?} collides");
        }
    }
}
