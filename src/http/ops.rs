//! Key operations: sign, verify, decrypt, encrypt.

use actix_web::{web, HttpRequest, HttpResponse};
use api::client::unb64;
use api::{
    BatchSignResponse, DecryptResponse, DecryptResult, EncryptRequest, EncryptResponse, Purpose,
    SignResponse, SignResult, VerifyRequest, VerifyResponse,
};
use keyshares::decrypt::{encrypt as encrypt_to, Scheme};

use crate::audit::hex_sha256;
use crate::auth::policy::Permission;
use crate::auth::AuditedOperation;
use crate::decryption::scheme_of;
use crate::decryption::wire::{aead_of, field, parse_request};
pub use crate::decryption::wire::{ciphertext_item, parse_ciphertext};
use crate::error::ApiError;
use crate::node::{ActiveKey, Node};
use crate::store::{curve_of, KeyRecord};
use keyshares::PublicKeys;

pub(crate) fn key_for(node: &Node, name: &str) -> Result<std::sync::Arc<ActiveKey>, ApiError> {
    if node.is_sealed() {
        return Err(ApiError::sealed(node.id()));
    }
    match node.key(name) {
        Some(key) => Ok(key),
        None => Err(crate::keyview::no_share(node, name)),
    }
}

/// The public data of key `name`, whatever its state: from memory for a key this node holds
/// a share of, else from its record (a retired key, or one this node left).
fn public_for(node: &Node, name: &str) -> Result<(KeyRecord, PublicKeys), ApiError> {
    if let Some(key) = node.key(name) {
        return Ok((key.record.clone(), key.public.clone()));
    }
    let record = node
        .store
        .record(name)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no key named {name}")))?;
    let public = hex::decode(&record.public_keys)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(PublicKeys::from_bytes(curve_of(record.algorithm), &b)?))
        .map_err(|e| ApiError::internal(format!("corrupt record of key {name}: {e}")))?;
    Ok((record, public))
}

pub async fn sign(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    // Before authenticating: a node that just started judges the request by the registry
    // and policies it caught up on, never by the ones it had when it stopped.
    crate::admin::sync::ensure_caught_up(&node).await?;
    let (caller, request) =
        super::auth::key_operation(&req, &node, &body, &name, "sign", Permission::Sign)?;
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action: "sign",
        key: &name,
        role: "coordinator",
    };
    let (messages, batch) = crate::signing::messages_of(&body).map_err(ApiError::bad_request)?;
    let digests: Vec<String> = messages.iter().map(|m| hex_sha256(m)).collect();
    let signed =
        match crate::signing::coordinator::sign_messages(&node, &name, messages, &request).await {
            Ok(s) => s,
            Err(e) => {
                let details =
                    serde_json::json!({ "messages_sha256": digests, "error": e.body.message });
                audit
                    .record(&node, "failed", culprit_ids(&e), details)
                    .map_err(audit_failed)?;
                return Err(e);
            }
        };
    let details = serde_json::json!({ "messages_sha256": digests, "signers": signed.signers });
    let excluded = signed.excluded.iter().map(|c| c.node).collect();
    audit
        .record(&node, "ok", excluded, details)
        .map_err(audit_failed)?;
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

/// The audit trail could not be written: the operation's answer must not leave the node.
fn audit_failed(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("audit trail: {e}"))
}

fn culprit_ids(e: &ApiError) -> Vec<u16> {
    e.body.culprits.iter().map(|c| c.node).collect()
}

pub async fn verify(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    super::auth::reader_of(&req, &node, &body)?;
    let body: VerifyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    // Public data only: a retired key still verifies, and so does a node without a share.
    let (record, public) = public_for(&node, &name)?;
    if record.algorithm.purpose() != Purpose::Sign {
        return Err(ApiError::bad_request(format!(
            "key {name} is a decryption key; it has no signatures"
        )));
    }
    let message =
        unb64(&body.message).map_err(|e| ApiError::bad_request(format!("message: {e}")))?;
    let signature = hex::decode(&body.signature)
        .map_err(|e| ApiError::bad_request(format!("signature: invalid hex: {e}")))?;
    let valid = keyshares::sign::verify(
        curve_of(record.algorithm),
        &public.group_key(),
        &message,
        &signature,
    );
    Ok(HttpResponse::Ok().json(VerifyResponse { valid }))
}

pub(crate) fn decryption_scheme(algorithm: api::Algorithm, name: &str) -> Result<Scheme, ApiError> {
    scheme_of(algorithm).ok_or_else(|| {
        ApiError::bad_request(format!(
            "key {name} is a {algorithm} signing key; it cannot encrypt or decrypt"
        ))
    })
}

pub async fn decrypt(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    // Before authenticating: a node that just started judges the request by the registry
    // and policies it caught up on, never by the ones it had when it stopped.
    crate::admin::sync::ensure_caught_up(&node).await?;
    let (caller, request) =
        super::auth::key_operation(&req, &node, &body, &name, "decrypt", Permission::Decrypt)?;
    let audit = AuditedOperation {
        caller: &caller,
        request: &request,
        action: "decrypt",
        key: &name,
        role: "coordinator",
    };
    let key = key_for(&node, &name)?;
    let scheme = decryption_scheme(key.record.algorithm, &name)?;
    let parsed = parse_request(scheme, &body).map_err(ApiError::bad_request)?;
    let mode = parsed.mode();
    let forbidden = node
        .policies
        .read()
        .get(name.as_str())
        .is_some_and(|p| p.decrypt_mode == api::DecryptMode::EndToEnd);
    if forbidden && mode != api::DecryptMode::EndToEnd {
        return Err(ApiError::forbidden(format!(
            "key {name}'s policy allows only end-to-end decryption: name reply_to"
        )));
    }
    run_decrypt(&node, &audit, &name, scheme, parsed, &request).await
}

/// Runs an admitted decryption in the mode the request names and audits it: the decrypt
/// endpoint's and an approved request's execution.
pub(crate) async fn run_decrypt(
    node: &std::sync::Arc<Node>,
    audit: &AuditedOperation<'_>,
    name: &str,
    scheme: Scheme,
    parsed: crate::decryption::wire::ParsedRequest,
    request: &crate::auth::ClientRequest,
) -> Result<HttpResponse, ApiError> {
    let mode = parsed.mode();
    let digests = parsed.digests.clone();
    let failed = |e: ApiError| -> Result<HttpResponse, ApiError> {
        node.metrics.observe_culprits("decrypt", &e.body.culprits);
        let details = serde_json::json!({
            "items_sha256": digests,
            "mode": mode.as_str(),
            "error": e.body.message,
        });
        audit
            .record(node, "failed", culprit_ids(&e), details)
            .map_err(audit_failed)?;
        Err(e)
    };
    if mode == api::DecryptMode::EndToEnd {
        let out = match crate::decryption::relay::relay(
            node,
            name,
            scheme,
            &parsed.items,
            &parsed.exclude,
            request,
        )
        .await
        {
            Ok(out) => out,
            Err(e) => return failed(e),
        };
        let contributors: Vec<u16> = out.holders.iter().map(|h| h.node).collect();
        let stats = finish_decrypt(node, audit, &out.excluded, &out.cost, || {
            serde_json::json!({
                "items_sha256": parsed.digests,
                "mode": mode.as_str(),
                "relayed": contributors,
            })
        })?;
        return Ok(HttpResponse::Ok().json(DecryptResponse {
            results: vec![],
            contributors,
            excluded: out.excluded,
            stats: Some(stats),
            mode: Some(mode),
            sealed_partials: out.holders,
        }));
    }
    let out = match crate::decryption::coordinator::decrypt(
        node,
        name,
        parsed.items,
        &parsed.exclude,
        request,
    )
    .await
    {
        Ok(out) => out,
        Err(e) => return failed(e),
    };
    let opened = out.results.iter().filter(|r| r.is_ok()).count();
    let stats = finish_decrypt(node, audit, &out.excluded, &out.cost, || {
        serde_json::json!({
            "items_sha256": parsed.digests,
            "mode": mode.as_str(),
            "opened": opened,
            "contributors": out.contributors,
        })
    })?;
    let results = out.results.into_iter().map(DecryptResult::from).collect();
    Ok(HttpResponse::Ok().json(DecryptResponse {
        results,
        contributors: out.contributors,
        excluded: out.excluded,
        stats: Some(stats),
        mode: Some(mode),
        sealed_partials: vec![],
    }))
}

/// Metrics and the audit entry of a decryption that ran, in either mode.
fn finish_decrypt(
    node: &Node,
    audit: &AuditedOperation<'_>,
    excluded: &[api::Excluded],
    cost: &crate::ceremony::coordinator::Cost,
    details: impl FnOnce() -> serde_json::Value,
) -> Result<api::OperationStats, ApiError> {
    node.metrics.observe_culprits("decrypt", excluded);
    let stats = cost.clone().to_api();
    node.metrics.observe_cost("decrypt", &stats);
    audit
        .record(
            node,
            "ok",
            excluded.iter().map(|c| c.node).collect(),
            details(),
        )
        .map_err(audit_failed)?;
    Ok(stats)
}

pub async fn encrypt(
    req: HttpRequest,
    node: web::Data<Node>,
    name: web::Path<String>,
    body: super::body::RawBody,
) -> Result<HttpResponse, ApiError> {
    super::auth::reader_of(&req, &node, &body)?;
    let body: EncryptRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let (record, public) = public_for(&node, &name)?;
    if record.state == api::KeyState::Retired {
        return Err(crate::keyview::retired(&name));
    }
    let scheme = decryption_scheme(record.algorithm, &name)?;
    if body.plaintexts.is_empty() || body.plaintexts.len() > crate::decryption::MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "plaintexts must hold 1 to {} items",
            crate::decryption::MAX_BATCH
        )));
    }
    let group = public.group_key();
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
