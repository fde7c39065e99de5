//! Decryption requests in the admin log (README, "Decryption requests"): creating, approving,
//! refusing and executing one are signed client requests that every node checks against its
//! own copy of the request (the rules of [`crate::state::decrypt_requests`]) before it votes,
//! and again before it applies the certified entry. A node outside the key's participants
//! holds no share to protect: it records the steps without judging them.

use api::KeyPolicy;

use super::Change;
use crate::auth::{AuthError, Caller};
use crate::node::Node;
use crate::state::decrypt_requests::{self as rules, Execution, StoredRequest, StoredReview};
use crate::store::{Store, Tagged};

/// The request with `id` as this node holds it.
pub fn load(store: &Store, id: &str) -> anyhow::Result<Option<StoredRequest>> {
    match store.decrypt_requests().get(id.as_bytes())? {
        Some(stored) => Ok(Some(store.read_tagged(
            Tagged::DecryptRequests,
            id.as_bytes(),
            &stored,
        )?)),
        None => Ok(None),
    }
}

pub fn save(store: &Store, request: &StoredRequest) -> anyhow::Result<()> {
    let stored = store.write_tagged(Tagged::DecryptRequests, request.id.as_bytes(), request)?;
    store
        .decrypt_requests()
        .insert(request.id.as_bytes(), stored)?;
    Ok(())
}

/// Every request this node holds.
pub fn all(store: &Store) -> anyhow::Result<Vec<StoredRequest>> {
    store
        .decrypt_requests()
        .iter()
        .map(|item| {
            let (id, stored) = item?;
            store.read_tagged(Tagged::DecryptRequests, &id, &stored)
        })
        .collect()
}

fn rule(e: rules::RuleError) -> AuthError {
    AuthError::Rule(e)
}

fn no_request(id: &str) -> AuthError {
    AuthError::Rule(rules::RuleError {
        code: "no_such_request",
        status: 404,
        message: format!("no decryption request {id}"),
    })
}

fn may_request(policy: &KeyPolicy, key: &str, caller: &Caller) -> Result<(), AuthError> {
    if rules::names(&policy.decrypt, caller.name()) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "client {} may not decrypt with key {key}",
            caller.name()
        )))
    }
}

/// The rules of one step against this node's state. Times are the step's signed time.
pub fn authorize(node: &Node, caller: &Caller, change: &Change) -> Result<(), AuthError> {
    match change {
        Change::CreateDecryptRequest { key, id, .. } => {
            if load(&node.store, id)
                .map_err(|e| AuthError::Malformed(e.to_string()))?
                .is_some()
            {
                return Err(AuthError::Replayed(format!("request {id} exists already")));
            }
            match node.policy(key) {
                Some(policy) => may_request(&policy, key, caller),
                None => Ok(()),
            }
        }
        Change::ReviewDecryptRequest {
            id, review, at_ms, ..
        } => {
            let request = held(node, id)?;
            if node.policy(&request.key).is_none() {
                return Ok(());
            }
            request
                .check_review(caller.name(), &review.content_sha256, *at_ms)
                .map_err(rule)
        }
        Change::ExecuteDecryptRequest { id, at_ms, .. } => {
            let request = held(node, id)?;
            let Some(policy) = node.policy(&request.key) else {
                return Ok(());
            };
            request.check_execute(caller.name(), *at_ms).map_err(rule)?;
            may_request(&policy, &request.key, caller)
        }
        _ => Ok(()),
    }
}

fn held(node: &Node, id: &str) -> Result<StoredRequest, AuthError> {
    load(&node.store, id)
        .map_err(|e| AuthError::Malformed(e.to_string()))?
        .ok_or_else(|| no_request(id))
}

/// Applies a checked step at admin log position `seq`; returns the key and what the audit
/// entry adds.
pub fn apply(
    node: &Node,
    seq: u64,
    caller: &str,
    change: &Change,
) -> anyhow::Result<(Option<String>, serde_json::Value)> {
    let store = &node.store;
    match change {
        Change::CreateDecryptRequest {
            key,
            id,
            create,
            content_sha256,
            at_ms,
        } => {
            let policy = node.policy(key);
            let (needed, approvers, deny_closes, ttl) = match &policy {
                Some(p) => (
                    p.decrypt_approvals,
                    // As for header approvals: an empty `approve` list means the decryptors.
                    if p.approve.is_empty() {
                        p.decrypt.clone()
                    } else {
                        p.approve.clone()
                    },
                    p.deny_closes,
                    p.request_ttl_seconds,
                ),
                None => (0, vec![], true, api::DEFAULT_REQUEST_TTL_SECONDS),
            };
            let request = StoredRequest {
                id: id.clone(),
                key: key.clone(),
                requester: caller.to_string(),
                reason: create.reason.clone(),
                records: create.ciphertexts.clone(),
                content_sha256: content_sha256.clone(),
                created_ms: *at_ms,
                expires_ms: at_ms.saturating_add(ttl.saturating_mul(1000)),
                approvals_needed: needed,
                approvers,
                deny_closes,
                approvals: vec![],
                refusals: vec![],
                execution: None,
                expiry_audited: false,
            };
            save(store, &request)?;
            Ok((
                Some(key.clone()),
                serde_json::json!({
                    "request": id,
                    "reason": create.reason,
                    "content_sha256": content_sha256,
                    "items_sha256": request.to_api(*at_ms, false).labels.iter().map(|l| l.sha256.clone()).collect::<Vec<_>>(),
                    "approvals_needed": needed,
                }),
            ))
        }
        Change::ReviewDecryptRequest {
            id,
            approve,
            review,
            at_ms,
        } => {
            let mut request =
                load(store, id)?.ok_or_else(|| anyhow::anyhow!("no decryption request {id}"))?;
            let entry = StoredReview {
                client: caller.to_string(),
                comment: review.comment.clone(),
                at_ms: *at_ms,
                admin_seq: seq,
            };
            if *approve {
                request.approvals.push(entry);
            } else {
                request.refusals.push(entry);
            }
            save(store, &request)?;
            Ok((
                Some(request.key.clone()),
                serde_json::json!({
                    "request": id,
                    "comment": review.comment,
                    "content_sha256": review.content_sha256,
                    "state": request.state_at(*at_ms).as_str(),
                }),
            ))
        }
        Change::ExecuteDecryptRequest { id, nonce, at_ms } => {
            let mut request =
                load(store, id)?.ok_or_else(|| anyhow::anyhow!("no decryption request {id}"))?;
            request.execution = Some(Execution {
                client: caller.to_string(),
                nonce: nonce.clone(),
                at_ms: *at_ms,
                admin_seq: seq,
            });
            save(store, &request)?;
            let shown = request.to_api(*at_ms, false);
            Ok((
                Some(request.key.clone()),
                serde_json::json!({
                    "request": id,
                    "items_sha256": shown.labels.iter().map(|l| l.sha256.clone()).collect::<Vec<_>>(),
                    "approvers": shown.approvals.iter().map(|a| a.client.clone()).collect::<Vec<_>>(),
                }),
            ))
        }
        _ => Ok((None, serde_json::Value::Null)),
    }
}

/// Audits, once on this node, each request that expired unexecuted by its clock.
pub fn audit_expired(node: &Node) -> anyhow::Result<()> {
    let now = crate::clock::now_ms();
    for mut request in all(&node.store)? {
        if request.expiry_audited || request.state_at(now) != api::RequestState::Expired {
            continue;
        }
        request.expiry_audited = true;
        save(&node.store, &request)?;
        node.audit.append(crate::audit::Record {
            client: Some(request.requester.clone()),
            action: "decrypt_request.expire",
            key: Some(request.key.clone()),
            role: "participant",
            details: serde_json::json!({
                "request": request.id,
                "expires_ms": request.expires_ms,
                "approvals": request.approvals.iter().map(|a| a.client.clone()).collect::<Vec<_>>(),
            }),
            outcome: "expired",
            culprits: vec![],
        })?;
    }
    Ok(())
}
