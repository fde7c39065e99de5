//! A node's partial decryptions: validate each ephemeral point, compute s_i·E with a DLEQ proof,
//! and seal them, since whoever holds t partials can decrypt: each to the requester's
//! `reply_to` key in end-to-end mode, the batch to the coordinator otherwise (DESIGN.md §6).

use std::sync::Arc;

use keyshares::decrypt::prepared::{Ephemeral, Holder};
use keyshares::decrypt::ShareScalar;
use keyshares::KeyShare;

use super::{partials_context, scheme_of};
use crate::auth::policy::Permission;
use crate::auth::{admit_key_operation, AuditedOperation, ClientRequest};
use crate::node::Node;
use crate::peer::messages::PartialOutcome;
use crate::peer::{PeerErrorCode, PeerResponse};

fn error(message: impl Into<String>) -> PeerResponse {
    PeerResponse::Error {
        code: PeerErrorCode::Invalid,
        message: message.into(),
        culprit: None,
    }
}

pub fn partials(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    key_session: &str,
    request: &ClientRequest,
) -> PeerResponse {
    if node.is_sealed() {
        return PeerResponse::Error {
            code: PeerErrorCode::Sealed,
            message: format!("node {} is sealed", node.id()),
            culprit: None,
        };
    }
    let active = match node.key_at(key, key_session) {
        Ok(k) => k,
        Err(e) if node.key(key).is_some() => {
            return PeerResponse::Error {
                code: PeerErrorCode::Conflict,
                message: e,
                culprit: None,
            }
        }
        Err(e) => return error(e),
    };
    let Some(scheme) = scheme_of(active.record.algorithm) else {
        return error(format!("key {key} is a signing key; it cannot decrypt"));
    };
    // The client's signature, freshness, nonce, the key's policy and its approvals: checked
    // here; and the points to decrypt come from the client's signed ciphertexts, so a
    // coordinator cannot slip in others.
    let (caller, parsed) = if super::approved::executed_id(&request.method, &request.path).is_some()
    {
        match super::approved::admit(node, from, request, key, scheme) {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        }
    } else {
        let caller =
            match admit_key_operation(node, from, request, key, "decrypt", Permission::Decrypt) {
                Ok(c) => c,
                Err(refusal) => return refusal,
            };
        match super::wire::parse_request(scheme, &request.body) {
            Ok(parsed) => (caller, parsed),
            Err(e) => return error(e),
        }
    };
    let mode = parsed.mode();
    let policy_mode = node
        .policies
        .read()
        .get(key)
        .map(|p| p.decrypt_mode)
        .unwrap_or_default();
    if policy_mode == api::DecryptMode::EndToEnd && mode != api::DecryptMode::EndToEnd {
        return PeerResponse::Error {
            code: PeerErrorCode::Unauthorized,
            message: format!(
                "key {key}'s policy allows only end-to-end decryption: the request must name reply_to"
            ),
            culprit: None,
        };
    }
    let (positions, ephemerals) = super::wire::ephemerals(scheme, &parsed.items);
    let audit = AuditedOperation {
        caller: &caller,
        request,
        action: "decrypt",
        key,
        role: "participant",
    };
    let details = serde_json::json!({
        "session": session,
        "coordinator": from,
        "items_sha256": parsed.digests,
        "mode": mode.as_str(),
    });
    if let Err(e) = audit.record(node, "ok", vec![], details) {
        return error(format!("audit trail: {e}"));
    }
    let share = match &active.share {
        KeyShare::Ed25519(k) => ShareScalar::from_ed25519(k),
        KeyShare::Secp256k1(k) => ShareScalar::from_secp256k1(k),
    };
    let faults = node.faults();
    let mut rng = rand::rngs::OsRng;
    // Y_i = s_i·G once for the batch, not once per proof.
    let holder = match Holder::new(&share) {
        Ok(h) => h,
        Err(e) => return error(e.to_string()),
    };
    let points: Vec<Result<Ephemeral, String>> = ephemerals
        .iter()
        .map(|e| Ephemeral::parse(scheme, e).map_err(|e| e.to_string()))
        .collect();
    // This node coordinates the batch and combines it here: its own partials are never shown
    // to anyone, and a proof would only convince others.
    let own_combination = from == node.id() && parsed.reply_to.is_none();
    let outcomes: Vec<PartialOutcome> = points
        .iter()
        .map(|point| {
            let partial = point.as_ref().map_err(Clone::clone).and_then(|e| {
                let made = if own_combination {
                    holder.unproven_partial(e)
                } else {
                    holder.partial(e, &mut rng)
                };
                made.map_err(|e| e.to_string())
            });
            match partial {
                Ok(_) if faults.refuse_decrypt_items => {
                    PartialOutcome::Error("refused (a censoring holder)".into())
                }
                Ok(mut p) => {
                    if faults.corrupt_partials {
                        if let Some(b) = p.proof.first_mut() {
                            *b ^= 1;
                        }
                    }
                    PartialOutcome::Partial(p)
                }
                Err(e) => PartialOutcome::Error(e),
            }
        })
        .collect();
    if own_combination {
        super::lifted::remember(node, session, Arc::new(points));
    }
    if let Some(reply_to) = parsed.reply_to {
        let binding = super::reply::Binding {
            key,
            client: &request.authorization.client,
            nonce: &request.authorization.nonce,
            holder: node.id(),
        };
        return super::reply::seal_items(&reply_to, binding, &positions, outcomes, &mut rng);
    }
    let Some(coordinator_key) = node
        .members
        .get(&from)
        .and_then(|m| hex::decode(&m.seal_public_key).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
    else {
        return error(format!("no sealing key for node {from}"));
    };
    let Ok(plain) = serde_json::to_vec(&outcomes) else {
        return error("cannot encode partials");
    };
    match keyshares::seal::seal(
        &coordinator_key,
        &partials_context(session, node.id(), from),
        &plain,
        &mut rng,
    ) {
        Ok(sealed) => PeerResponse::Partials { sealed },
        Err(e) => error(e.to_string()),
    }
}
