//! Key operations: sign, verify, decrypt, encrypt.

use std::str::FromStr;

use actix_web::{web, HttpRequest, HttpResponse};
use api::client::{b64, unb64};
use api::{
    BatchSignResponse, CiphertextItem, DecryptRequest, DecryptResponse, DecryptResult,
    EncryptRequest, EncryptResponse, Purpose, SignRequest, SignResponse, SignResult, VerifyRequest,
    VerifyResponse,
};
use keyshares::decrypt::{encrypt as encrypt_to, Ciphertext, HpkeAead, Scheme};

use super::error::ApiError;
use crate::decryption::scheme_of;
use crate::node::{ActiveKey, Node};
use crate::store::curve_of;

fn key_for(node: &Node, name: &str) -> Result<std::sync::Arc<ActiveKey>, ApiError> {
    node.key(name)
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))
}

pub async fn sign(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: web::Json<SignRequest>,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    super::authorize(&req, &node)?;
    let body = body.into_inner();
    let (messages, batch) = match (body.message, body.batch) {
        (Some(m), None) => (
            vec![unb64(&m).map_err(|e| ApiError::bad_request(format!("message: {e}")))?],
            false,
        ),
        (None, Some(items)) => {
            if items.is_empty() {
                return Err(ApiError::bad_request("batch is empty"));
            }
            if items.len() > crate::signing::MAX_BATCH {
                return Err(ApiError::bad_request(format!(
                    "batch has {} items; the limit is {}",
                    items.len(),
                    crate::signing::MAX_BATCH
                )));
            }
            let messages = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    unb64(&item.message)
                        .map_err(|e| ApiError::bad_request(format!("batch[{i}].message: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (messages, true)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of \"message\" or \"batch\"",
            ))
        }
    };
    let signed = crate::signing::coordinator::sign_messages(&node, &name, messages)
        .await
        .inspect_err(|e| node.metrics.observe_culprits("sign", &e.body.culprits))?;
    node.metrics.observe_culprits("sign", &signed.excluded);
    let stats = signed.cost.to_api();
    node.metrics.observe_cost("sign", &stats);
    let stats = Some(stats);
    if batch {
        Ok(HttpResponse::Ok().json(BatchSignResponse {
            results: signed
                .signatures
                .iter()
                .map(|s| SignResult {
                    signature: Some(hex::encode(s)),
                    error: None,
                })
                .collect(),
            signers: signed.signers,
            excluded: signed.excluded,
            stats,
        }))
    } else {
        Ok(HttpResponse::Ok().json(SignResponse {
            signature: hex::encode(&signed.signatures[0]),
            signers: signed.signers,
            excluded: signed.excluded,
            stats,
        }))
    }
}

pub async fn verify(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    super::authorize(&req, &node)?;
    let key = key_for(&node, &name)?;
    if key.record.algorithm.purpose() != Purpose::Sign {
        return Err(ApiError::bad_request(format!(
            "key {name} is a decryption key; it has no signatures"
        )));
    }
    let message =
        unb64(&body.message).map_err(|e| ApiError::bad_request(format!("message: {e}")))?;
    let signature = hex::decode(&body.signature)
        .map_err(|e| ApiError::bad_request(format!("signature: invalid hex: {e}")))?;
    let valid = keyshares::sign::verify(
        curve_of(key.record.algorithm),
        &key.public.group_key(),
        &message,
        &signature,
    );
    Ok(HttpResponse::Ok().json(VerifyResponse { valid }))
}

fn field(value: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    value
        .as_deref()
        .map(unb64)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("{name}: {e}"))
}

/// The HPKE AEAD named by an item, AES-128-GCM when it names none.
fn aead_of(value: &Option<String>) -> Result<HpkeAead, String> {
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

fn decryption_scheme(key: &ActiveKey, name: &str) -> Result<Scheme, ApiError> {
    scheme_of(key.record.algorithm).ok_or_else(|| {
        ApiError::bad_request(format!(
            "key {name} is a {} signing key; it cannot encrypt or decrypt",
            key.record.algorithm
        ))
    })
}

pub async fn decrypt(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: web::Json<DecryptRequest>,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    super::authorize(&req, &node)?;
    let key = key_for(&node, &name)?;
    let scheme = decryption_scheme(&key, &name)?;
    let items = &body.ciphertexts;
    if items.is_empty() || items.len() > crate::decryption::MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "ciphertexts must hold 1 to {} items, got {}",
            crate::decryption::MAX_BATCH,
            items.len()
        )));
    }
    let parsed = items
        .iter()
        .map(|item| parse_ciphertext(scheme, item))
        .collect();
    let out = crate::decryption::coordinator::decrypt(&node, &name, parsed)
        .await
        .inspect_err(|e| node.metrics.observe_culprits("decrypt", &e.body.culprits))?;
    node.metrics.observe_culprits("decrypt", &out.excluded);
    let stats = out.cost.to_api();
    node.metrics.observe_cost("decrypt", &stats);
    let results = out
        .results
        .into_iter()
        .map(|r| match r {
            Ok(plain) => DecryptResult {
                plaintext: Some(b64(&plain)),
                error: None,
            },
            Err(e) => DecryptResult {
                plaintext: None,
                error: Some(e),
            },
        })
        .collect();
    Ok(HttpResponse::Ok().json(DecryptResponse {
        results,
        contributors: out.contributors,
        excluded: out.excluded,
        stats: Some(stats),
    }))
}

pub async fn encrypt(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: web::Json<EncryptRequest>,
) -> Result<HttpResponse, ApiError> {
    super::authorize(&req, &node)?;
    let key = key_for(&node, &name)?;
    let scheme = decryption_scheme(&key, &name)?;
    if body.plaintexts.is_empty() || body.plaintexts.len() > crate::decryption::MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "plaintexts must hold 1 to {} items",
            crate::decryption::MAX_BATCH
        )));
    }
    let group = key.public.group_key();
    let mut rng = rand::rngs::OsRng;
    let mut ciphertexts = Vec::with_capacity(body.plaintexts.len());
    for (i, item) in body.plaintexts.iter().enumerate() {
        let bad = |e: String| ApiError::bad_request(format!("plaintexts[{i}]: {e}"));
        let plaintext = unb64(&item.plaintext).map_err(|e| bad(format!("plaintext: {e}")))?;
        let info = field(&item.info, "info").map_err(bad)?;
        let aad = field(&item.aad, "aad").map_err(bad)?;
        let aead = aead_of(&item.aead).map_err(bad)?;
        if scheme == Scheme::EciesSecp256k1 && item.aead.is_some() {
            return Err(bad("ecies-secp256k1 takes no aead".into()));
        }
        let ct = encrypt_to(scheme, &group, &plaintext, &info, &aad, aead, &mut rng)
            .map_err(|e| bad(e.to_string()))?;
        ciphertexts.push(ciphertext_item(&ct));
    }
    Ok(HttpResponse::Ok().json(EncryptResponse { ciphertexts }))
}
