//! The API's ciphertext items read into the crypto crate's types and back: the same reading
//! for the node that serves a decryption and the client that combines one (DESIGN.md §6).

use std::str::FromStr;

use keyshares::decrypt::{Ciphertext, HpkeAead, Scheme};

use crate::client::{b64, unb64};
use crate::CiphertextItem;

pub fn field(value: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    value
        .as_deref()
        .map(unb64)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("{name}: {e}"))
}

/// The HPKE AEAD named by an item, AES-128-GCM when it names none.
pub fn aead_of(value: &Option<String>) -> Result<HpkeAead, String> {
    value
        .as_deref()
        .map(HpkeAead::from_str)
        .transpose()
        .map(|a| a.unwrap_or(HpkeAead::Aes128Gcm))
        .map_err(|e| e.to_string())
}

/// Parses one ciphertext item of the API for a key of `scheme`.
pub fn parse_ciphertext(scheme: Scheme, item: &CiphertextItem) -> Result<Ciphertext, String> {
    let ciphertext = unb64(&item.ciphertext).map_err(|e| format!("ciphertext: {e}"))?;
    match scheme {
        Scheme::HpkeX25519 => {
            let enc = item
                .enc
                .as_deref()
                .ok_or("enc is required for hpke-x25519")?;
            Ok(Ciphertext::Hpke {
                enc: unb64(enc).map_err(|e| format!("enc: {e}"))?,
                ciphertext,
                info: field(&item.info, "info")?,
                aad: field(&item.aad, "aad")?,
                aead: aead_of(&item.aead)?,
            })
        }
        Scheme::EciesSecp256k1 => {
            if item.enc.is_some()
                || item.info.is_some()
                || item.aad.is_some()
                || item.aead.is_some()
            {
                return Err("ecies-secp256k1 items take only \"ciphertext\" (eciespy's format has no enc, info, aad or aead)".into());
            }
            Ok(Ciphertext::Ecies { blob: ciphertext })
        }
    }
}

pub fn ciphertext_item(ct: &Ciphertext) -> CiphertextItem {
    match ct {
        Ciphertext::Hpke {
            enc,
            ciphertext,
            info,
            aad,
            aead,
        } => CiphertextItem {
            enc: Some(b64(enc)),
            ciphertext: b64(ciphertext),
            info: (!info.is_empty()).then(|| b64(info)),
            aad: (!aad.is_empty()).then(|| b64(aad)),
            aead: Some(aead.as_str().to_string()),
        },
        Ciphertext::Ecies { blob } => CiphertextItem {
            ciphertext: b64(blob),
            ..Default::default()
        },
    }
}
