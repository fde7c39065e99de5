//! A holder's admission of the execution of an approved decryption request (README,
//! "Decryption requests"). The holder does not take the coordinator's word that the request
//! was approved: the signed execute request must be the very one its own admin log recorded
//! as the execution (DESIGN.md §11), by the request's requester, and the ciphertexts are
//! read from its own copy of the request — exactly the approved ones.

use api::{DecryptRequest, ExecuteDecryptRequest};
use keyshares::decrypt::Scheme;

use super::wire::{parse_request, ParsedRequest};
use crate::admin::requests;
use crate::auth::{audit_denial, peer_refusal, AuthError, Caller, ClientRequest};
use crate::node::Node;
use crate::peer::PeerResponse;
use crate::state::decrypt_requests::{names, RuleError};

/// The id of the request `path` executes, if it is an execute path.
pub fn executed_id<'a>(method: &str, path: &'a str) -> Option<&'a str> {
    let id = path
        .strip_prefix("/v1/decrypt-requests/")?
        .strip_suffix("/execute")?;
    (method == "POST" && !id.is_empty() && !id.contains('/')).then_some(id)
}

fn not_executed(id: &str, node: u16) -> AuthError {
    AuthError::Rule(RuleError {
        code: "not_executed",
        status: 409,
        message: format!(
            "node {node}'s admin log records no execution of request {id} by this signed request: it was not approved and executed through the log"
        ),
    })
}

/// Checks the execution and reads the batch to decrypt; a refusal is audited and becomes the
/// holder's answer.
pub fn admit(
    node: &Node,
    from: u16,
    request: &ClientRequest,
    key: &str,
    scheme: Scheme,
) -> Result<(Caller, ParsedRequest), PeerResponse> {
    check(node, from, request, key, scheme).map_err(|e| {
        audit_denial(node, request, Some(key), "decrypt", "participant", &e);
        peer_refusal(node, &e)
    })
}

fn check(
    node: &Node,
    from: u16,
    request: &ClientRequest,
    key: &str,
    scheme: Scheme,
) -> Result<(Caller, ParsedRequest), AuthError> {
    let id = executed_id(&request.method, &request.path).ok_or_else(|| {
        AuthError::Forbidden(format!(
            "{} {} is not the execution of a decryption request",
            request.method, request.path
        ))
    })?;
    let sig = &request.authorization;
    let (client, public) = crate::auth::registered_client(node, &sig.client)?;
    sig.verify(&public, &request.method, &request.path, &request.body)
        .map_err(AuthError::BadSignature)?;
    // Only the node the requester addressed coordinates its execution, and only now.
    if sig.node != Some(from) {
        return Err(AuthError::Misaddressed(format!(
            "the execution is addressed to node {}, but node {from} coordinates it",
            sig.node.map_or("*".to_string(), |n| n.to_string())
        )));
    }
    let skew = node.config.timeouts.max_clock_skew_ms;
    if sig.timestamp_ms.abs_diff(crate::clock::now_ms()) > skew {
        return Err(AuthError::Stale(format!(
            "the execution was signed more than {skew} ms from this node's clock"
        )));
    }
    let stored = requests::load(&node.store, id)
        .map_err(|e| AuthError::Malformed(e.to_string()))?
        .ok_or_else(|| not_executed(id, node.id()))?;
    if stored.key != key {
        return Err(AuthError::Forbidden(format!(
            "request {id} is for key {}, not {key}",
            stored.key
        )));
    }
    match &stored.execution {
        Some(e)
            if e.client == sig.client && e.nonce == sig.nonce && e.client == stored.requester => {}
        _ => return Err(not_executed(id, node.id())),
    }
    let policy = node.policy(key).ok_or_else(|| {
        AuthError::Forbidden(format!("key {key} has no policy on node {}", node.id()))
    })?;
    if !names(&policy.decrypt, &client.name) {
        return Err(AuthError::Forbidden(format!(
            "client {} may not decrypt with key {key}",
            client.name
        )));
    }
    let options: ExecuteDecryptRequest = serde_json::from_slice(&request.body)
        .map_err(|e| AuthError::Malformed(format!("invalid execute request: {e}")))?;
    let batch = serde_json::to_vec(&DecryptRequest {
        ciphertexts: stored.ciphertexts(),
        reply_to: options.reply_to,
        exclude: options.exclude,
    })
    .map_err(|e| AuthError::Malformed(e.to_string()))?;
    let parsed = parse_request(scheme, &batch).map_err(AuthError::Malformed)?;
    let caller = Caller {
        client,
        approvers: stored.approvals.iter().map(|a| a.client.clone()).collect(),
    };
    Ok((caller, parsed))
}
