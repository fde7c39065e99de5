//! End-to-end decryption by the typed client (DESIGN.md §6): a fresh X25519 reply key per
//! request, holders' partials sealed to it, checked and combined here by
//! `keyshares::decrypt::requester`. Holders whose partials fail are reported and, when fewer
//! than t valid partials remain for some item, the request is sent again without them.

use std::collections::BTreeMap;

use keyshares::decrypt::requester::{
    open_answers, Binding, HolderAnswer, HolderItem, KeyView, Opened,
};
use keyshares::decrypt::Scheme;

use crate::auth::{random_nonce, ClientKey};
use crate::ciphertexts::parse_ciphertext;
use crate::client::{unb64, Client, ClientError};
use crate::types::*;

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Transport(message.into())
}

/// The key's public data as the requester's checks need it.
pub fn key_view(info: &KeyInfo) -> Result<KeyView, ClientError> {
    let scheme = match info.algorithm {
        Algorithm::HpkeX25519 => Scheme::HpkeX25519,
        Algorithm::EciesSecp256k1 => Scheme::EciesSecp256k1,
        other => {
            return Err(invalid(format!(
                "key {} is a {other} signing key",
                info.name
            )))
        }
    };
    let group_key = hex::decode(&info.group_verifying_key)
        .map_err(|e| invalid(format!("group_verifying_key: {e}")))?;
    let verifying_shares = info
        .verifying_shares
        .iter()
        .map(|v| {
            hex::decode(&v.verifying_share)
                .map(|share| (v.node, share))
                .map_err(|e| invalid(format!("verifying share of node {}: {e}", v.node)))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(KeyView {
        scheme,
        group_key,
        threshold: info.threshold,
        verifying_shares,
    })
}

/// The relayed holders' answers in the requester's types. An item that is not base64 stays a
/// sealed blob that will not open, so its holder is named.
pub fn holder_answers(sealed: &[HolderPartials]) -> Vec<HolderAnswer> {
    sealed
        .iter()
        .map(|h| HolderAnswer {
            node: h.node,
            items: h
                .items
                .iter()
                .map(|item| match (&item.sealed, &item.error) {
                    (Some(s), _) => HolderItem::Sealed(unb64(s).unwrap_or_default()),
                    (None, Some(e)) => HolderItem::Error(e.clone()),
                    (None, None) => HolderItem::Error("empty item".into()),
                })
                .collect(),
        })
        .collect()
}

pub(crate) async fn decrypt(
    client: &Client,
    key: &str,
    req: &DecryptRequest,
    approvers: &[ClientKey],
) -> Result<DecryptResponse, ClientError> {
    let signer = client
        .signer()
        .ok_or_else(|| invalid("end-to-end decryption needs a client key to sign with"))?
        .name
        .clone();
    let info = client.get_key(key).await?;
    let view = match key_view(&info) {
        Ok(view) => view,
        // Not a decryption key: the node's refusal is the answer the caller expects.
        Err(e) => {
            let (_, public) = keyshares::seal::generate(&mut rand::rngs::OsRng);
            let request = DecryptRequest {
                reply_to: Some(hex::encode(public)),
                ..req.clone()
            };
            client
                .decrypt_sealed(key, &request, approvers, &random_nonce())
                .await?;
            return Err(e);
        }
    };
    let items: Vec<_> = req
        .ciphertexts
        .iter()
        .map(|item| parse_ciphertext(view.scheme, item))
        .collect();
    let mut exclude = req.exclude.clone();
    let mut reported: Vec<Excluded> = Vec::new();
    loop {
        let (secret, public) = keyshares::seal::generate(&mut rand::rngs::OsRng);
        let nonce = random_nonce();
        let request = DecryptRequest {
            ciphertexts: req.ciphertexts.clone(),
            reply_to: Some(hex::encode(public)),
            exclude: exclude.clone(),
        };
        let answer = client
            .decrypt_sealed(key, &request, approvers, &nonce)
            .await?;
        let binding = Binding {
            key,
            client: &signer,
            nonce: &nonce,
        };
        let (opened, culprits) =
            open_and_report(client, &view, binding, &secret, &items, &answer).await?;
        let fresh: Vec<u16> = culprits
            .iter()
            .map(|c| c.node)
            .filter(|n| !exclude.contains(n))
            .collect();
        reported.extend(culprits);
        if opened.short && !fresh.is_empty() {
            exclude.extend(fresh);
            continue;
        }
        return Ok(end_to_end_answer(opened, answer, reported));
    }
}

/// Executes the approved request `id` end to end, in one round: an execution happens once,
/// so holders whose partials fail are reported but not asked around.
pub(crate) async fn execute(client: &Client, id: &str) -> Result<DecryptResponse, ClientError> {
    let signer = client
        .signer()
        .ok_or_else(|| invalid("executing a request needs the requester's client key"))?
        .name
        .clone();
    let shown = client.get_decrypt_request(id).await?;
    let info = client.get_key(&shown.key).await?;
    let view = key_view(&info)?;
    let items: Vec<_> = shown
        .ciphertexts
        .iter()
        .map(|item| parse_ciphertext(view.scheme, item))
        .collect();
    let (secret, public) = keyshares::seal::generate(&mut rand::rngs::OsRng);
    let nonce = random_nonce();
    let body = serde_json::to_vec(&crate::requests::ExecuteDecryptRequest {
        reply_to: Some(hex::encode(public)),
        exclude: vec![],
    })
    .map_err(|e| invalid(format!("cannot encode the request: {e}")))?;
    let answer: DecryptResponse = client
        .call_with_nonce(
            reqwest::Method::POST,
            &format!("/v1/decrypt-requests/{id}/execute"),
            Some(body),
            &[],
            Some(&nonce),
        )
        .await?;
    let binding = Binding {
        key: &shown.key,
        client: &signer,
        nonce: &nonce,
    };
    let (opened, culprits) =
        open_and_report(client, &view, binding, &secret, &items, &answer).await?;
    Ok(end_to_end_answer(opened, answer, culprits))
}

/// Opens the sealed partials of `answer` and reports the holders found bad to the node, with
/// the request's nonce as evidence of which request they spoiled.
async fn open_and_report(
    client: &Client,
    view: &KeyView,
    binding: Binding<'_>,
    secret: &[u8; 32],
    items: &[Result<keyshares::decrypt::Ciphertext, String>],
    answer: &DecryptResponse,
) -> Result<(Opened, Vec<Excluded>), ClientError> {
    let answers = holder_answers(&answer.sealed_partials);
    let opened = open_answers(view, binding, secret, items, &answers)
        .map_err(|e| invalid(format!("the coordinator relayed a malformed answer: {e}")))?;
    let culprits: Vec<Excluded> = opened
        .culprits
        .iter()
        .map(|(node, reason)| Excluded {
            node: *node,
            reason: reason.clone(),
        })
        .collect();
    if !culprits.is_empty() {
        // Best effort: the report is for the audit trail; the decryption goes on.
        let report = DecryptReport {
            request_nonce: binding.nonce.to_string(),
            culprits: culprits.clone(),
        };
        let _ = client.report_decrypt(binding.key, &report).await;
    }
    Ok((opened, culprits))
}

/// The answer a client gives its caller after combining itself: the node's answer with the
/// plaintexts filled in and the holders this client found bad added to `excluded`.
fn end_to_end_answer(
    opened: Opened,
    answer: DecryptResponse,
    culprits: Vec<Excluded>,
) -> DecryptResponse {
    let mut excluded = answer.excluded;
    excluded.extend(culprits);
    DecryptResponse {
        results: opened
            .results
            .into_iter()
            .map(DecryptResult::from)
            .collect(),
        contributors: opened.contributors,
        excluded,
        stats: answer.stats,
        mode: Some(DecryptMode::EndToEnd),
        sealed_partials: vec![],
    }
}
