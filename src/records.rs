//! Sealed anonymisation records (DESIGN.md §7): one NDJSON line per frame's metadata, encrypted
//! to a decryption key and bound to its video and frame, so that a sealed record moved to
//! another frame (or video) no longer opens.
//!
//! HPKE binds through `info` (it enters the key schedule); eciespy's ECIES has no info or AAD,
//! so there the binding travels inside the plaintext and is checked after decryption.

use api::client::{b64, unb64};
use api::{Algorithm, CiphertextItem};
use keyshares::decrypt::{encrypt_to_public_key, Ciphertext, HpkeAead, Scheme};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A sealed record as written by `keyquorum encrypt`: the cleartext video and frame (needed
/// to find the record and to rebuild the binding) and the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord {
    pub video: String,
    pub frame: u64,
    pub algorithm: Algorithm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
    pub ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aead: Option<String>,
}

/// The bytes that bind a record to its place: length-prefixed so no two places share them.
pub fn binding(video: &str, frame: u64) -> Vec<u8> {
    let mut out = b"keyquorum/record/v1\0".to_vec();
    out.extend_from_slice(&(video.len() as u32).to_be_bytes());
    out.extend_from_slice(video.as_bytes());
    out.extend_from_slice(&frame.to_be_bytes());
    out
}

/// The video and frame of a metadata record, which must be a JSON object carrying both.
pub fn place_of(record: &Value) -> Result<(String, u64), String> {
    let video = record
        .get("video")
        .and_then(Value::as_str)
        .ok_or("the record has no \"video\" string")?;
    let frame = record
        .get("frame")
        .and_then(Value::as_u64)
        .ok_or("the record has no non-negative integer \"frame\"")?;
    Ok((video.to_string(), frame))
}

pub fn scheme_of(algorithm: Algorithm) -> Result<Scheme, String> {
    crate::decryption::scheme_of(algorithm).ok_or_else(|| {
        format!("{algorithm} is a signing algorithm; records need hpke-x25519 or ecies-secp256k1")
    })
}

/// Seals one metadata record to a key's published public key.
pub fn seal(
    algorithm: Algorithm,
    public_key: &[u8],
    record: &Value,
    aead: HpkeAead,
) -> Result<SealedRecord, String> {
    let (video, frame) = place_of(record)?;
    let scheme = scheme_of(algorithm)?;
    let place = binding(&video, frame);
    let mut rng = rand::rngs::OsRng;
    let ct = match scheme {
        Scheme::HpkeX25519 => {
            let plaintext = serde_json::to_vec(record).map_err(|e| e.to_string())?;
            encrypt_to_public_key(scheme, public_key, &plaintext, &place, &[], aead, &mut rng)
        }
        _ => {
            let wrapped = serde_json::json!({ "binding": hex::encode(&place), "record": record });
            let plaintext = serde_json::to_vec(&wrapped).map_err(|e| e.to_string())?;
            encrypt_to_public_key(scheme, public_key, &plaintext, &[], &[], aead, &mut rng)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(match ct {
        Ciphertext::Hpke {
            enc,
            ciphertext,
            aead,
            ..
        } => SealedRecord {
            video,
            frame,
            algorithm,
            enc: Some(b64(&enc)),
            ciphertext: b64(&ciphertext),
            aead: Some(aead.as_str().into()),
        },
        Ciphertext::Ecies { blob } => SealedRecord {
            video,
            frame,
            algorithm,
            enc: None,
            ciphertext: b64(&blob),
            aead: None,
        },
    })
}

/// The API item that decrypts a sealed record, with the binding rebuilt from its place.
pub fn ciphertext_item(sealed: &SealedRecord) -> CiphertextItem {
    let info = match sealed.algorithm {
        Algorithm::HpkeX25519 => Some(b64(&binding(&sealed.video, sealed.frame))),
        _ => None,
    };
    CiphertextItem {
        enc: sealed.enc.clone(),
        ciphertext: sealed.ciphertext.clone(),
        info,
        aad: None,
        aead: sealed.aead.clone(),
    }
}

/// The metadata record from a decrypted plaintext, after checking it belongs where it was found.
pub fn open(sealed: &SealedRecord, plaintext_b64: &str) -> Result<Value, String> {
    let plaintext = unb64(plaintext_b64)?;
    let value: Value = serde_json::from_slice(&plaintext)
        .map_err(|e| format!("decrypted record is not JSON: {e}"))?;
    let record = match sealed.algorithm {
        Algorithm::HpkeX25519 => value,
        _ => {
            let expected = hex::encode(binding(&sealed.video, sealed.frame));
            if value.get("binding").and_then(Value::as_str) != Some(expected.as_str()) {
                return Err("the record was sealed for another video or frame".into());
            }
            value
                .get("record")
                .cloned()
                .ok_or("decrypted record has no body")?
        }
    };
    if place_of(&record)? != (sealed.video.clone(), sealed.frame) {
        return Err("the record was sealed for another video or frame".into());
    }
    Ok(record)
}

/// Decrypts sealed records through a node, `batch` records per request (one peer round trip
/// each), calling `progress` with the number done after every batch. End to end (this client
/// combines) unless `combine_on_node`.
pub async fn decrypt_all(
    client: &api::Client,
    key: &str,
    sealed: &[SealedRecord],
    batch: usize,
    approvers: &[api::ClientKey],
    combine_on_node: bool,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Result<Value, String>>, api::ClientError> {
    let mut out = Vec::with_capacity(sealed.len());
    for chunk in sealed.chunks(batch.max(1)) {
        let request = api::DecryptRequest {
            ciphertexts: chunk.iter().map(ciphertext_item).collect(),
            ..Default::default()
        };
        let answer = if combine_on_node {
            client
                .decrypt_combined_by_node_approved(key, &request, approvers)
                .await?
        } else {
            client.decrypt_approved(key, &request, approvers).await?
        };
        for culprit in &answer.excluded {
            eprintln!("node {} excluded: {}", culprit.node, culprit.reason);
        }
        for (record, result) in chunk.iter().zip(answer.results) {
            out.push(match (result.plaintext, result.error) {
                (Some(p), _) => open(record, &p),
                (None, e) => Err(e.unwrap_or_else(|| "no plaintext".into())),
            });
        }
        progress(out.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_differ_by_place() {
        assert_ne!(binding("cam-1", 12), binding("cam-11", 2));
        assert_ne!(binding("a", 1), binding("a", 2));
    }

    #[test]
    fn records_must_name_their_place() {
        assert!(place_of(&serde_json::json!({"video": "v", "frame": 3})).is_ok());
        assert!(place_of(&serde_json::json!({"video": "v"})).is_err());
        assert!(place_of(&serde_json::json!({"video": 1, "frame": 3})).is_err());
        assert!(place_of(&serde_json::json!({"video": "v", "frame": -1})).is_err());
    }
}
