//! Who may ask for what (issue #5): signed client requests, the client registry, per-key
//! policy, replay protection and rate limits.
//!
//! The coordinator checks a signed request when it arrives and then forwards it, byte for byte,
//! to every participant, which checks it again against its own registry and policy before it
//! contributes anything: no node takes another node's word for a client's authority.

pub mod policy;

use api::{ClientInfo, Role};

use crate::node::Node;
use crate::state::verified::SignedInput;

pub use crate::request::ClientRequest;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Malformed(String),
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Replayed(String),
    #[error("{0}")]
    Misaddressed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    ApprovalsRequired(String),
    /// This node's client and policy state differs from the coordinator's.
    #[error("{0}")]
    AdminSeq(String),
    /// A decryption request's rule (README, "Decryption requests").
    #[error("{}", .0.message)]
    Rule(crate::state::decrypt_requests::RuleError),
}

impl AuthError {
    /// The error code of the API body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) => "malformed_signature",
            AuthError::UnknownClient(_) => "unknown_client",
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::Stale(_) => "stale_request",
            AuthError::Replayed(_) => "replayed_request",
            AuthError::Misaddressed(_) => "misaddressed_request",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::ApprovalsRequired(_) => "approvals_required",
            AuthError::AdminSeq(_) => "stale_policy",
            AuthError::Rule(r) => r.code,
        }
    }

    /// 401 when the request is not authentic, 403 when it is but may not do this.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Forbidden(_) | AuthError::ApprovalsRequired(_) => 403,
            AuthError::AdminSeq(_) => 503,
            AuthError::Rule(r) => r.status,
            _ => 401,
        }
    }
}

/// An authenticated client request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client: ClientInfo,
    /// Distinct clients other than the caller whose approvals verified.
    pub approvers: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.client.roles.contains(&role)
    }

    pub fn name(&self) -> &str {
        &self.client.name
    }
}

pub use crate::clock::now_ms;

/// The registered client of that name and its Ed25519 public key.
pub fn registered_client(node: &Node, name: &str) -> Result<(ClientInfo, [u8; 32]), AuthError> {
    let client = node
        .clients
        .read()
        .get(name)
        .cloned()
        .ok_or_else(|| AuthError::UnknownClient(name.to_string()))?;
    let public_key = public_key_of(&client)?;
    Ok((client, public_key))
}

fn public_key_of(client: &ClientInfo) -> Result<[u8; 32], AuthError> {
    hex::decode(&client.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AuthError::BadSignature(format!("client {} has no valid key", client.name)))
}

/// Checks a forwarded request as a participant or as its coordinator (`coordinator` is the
/// node that forwarded it): the client is registered here, the signature verifies, the
/// request is fresh, signed after this node started, and its nonce belongs to this operation
/// only. Approvals are checked too; whether they suffice is the policy's business.
pub fn authenticate(
    node: &Node,
    coordinator: u16,
    request: &ClientRequest,
) -> Result<Caller, AuthError> {
    let own_seq = node.admin_seq();
    if request.admin_seq != own_seq {
        return Err(AuthError::AdminSeq(format!(
            "node {} has applied {own_seq} client and policy changes, the coordinator {}",
            node.id(),
            request.admin_seq
        )));
    }
    let sig = &request.authorization;
    let (client, public_key) = registered_client(node, &sig.client)?;
    let node_field = sig.node.map_or([0u8; 3], |n| {
        let b = n.to_be_bytes();
        [1, b[0], b[1]]
    });
    let timestamp = sig.timestamp_ms.to_be_bytes();
    let signed = SignedInput {
        public_key: &public_key,
        fields: &[
            b"request",
            request.method.as_bytes(),
            request.path.as_bytes(),
            sig.client.as_bytes(),
            &node_field,
            &timestamp,
            sig.nonce.as_bytes(),
        ],
        body: &request.body,
        signature: &sig.signature,
    };
    node.verified.check(&signed, || {
        sig.verify(&public_key, &request.method, &request.path, &request.body)
            .map_err(AuthError::BadSignature)
    })?;
    // Only the node the client addressed may coordinate the request.
    if sig.node != Some(coordinator) {
        return Err(AuthError::Misaddressed(format!(
            "the request is addressed to node {}, but node {coordinator} coordinates it",
            sig.node.map_or("*".to_string(), |n| n.to_string())
        )));
    }
    let skew = node.config.timeouts.max_clock_skew_ms;
    let now = now_ms();
    if sig.timestamp_ms.abs_diff(now) > skew {
        return Err(AuthError::Stale(format!(
            "the request was signed at {} ms, {} ms away from this node's clock (limit {skew} ms)",
            sig.timestamp_ms,
            sig.timestamp_ms as i128 - now as i128
        )));
    }
    // Nonces live in memory: a request signed before this node started could have been
    // used already, and the node would not know.
    if sig.timestamp_ms < node.started_at_ms {
        return Err(AuthError::Stale(
            "the request was signed before this node started; sign it again".into(),
        ));
    }
    node.nonces
        .claim(
            &sig.client,
            &sig.nonce,
            coordinator,
            &request.operation,
            sig.timestamp_ms + skew,
        )
        .map_err(refused_nonce)?;
    let mut approvers: Vec<String> = Vec::new();
    let ttl = node.config.auth.approval_ttl_ms;
    for approval in &request.approvals {
        let approver = node
            .clients
            .read()
            .get(&approval.client)
            .cloned()
            .ok_or_else(|| AuthError::UnknownClient(approval.client.clone()))?;
        let approved = api::auth::Approved {
            requester: &sig.client,
            request_nonce: &sig.nonce,
            method: &request.method,
            path: &request.path,
            body: &request.body,
        };
        let approver_key = public_key_of(&approver)?;
        let node_field = approval.node.map_or([0u8; 3], |n| {
            let b = n.to_be_bytes();
            [1, b[0], b[1]]
        });
        let timestamp = approval.timestamp_ms.to_be_bytes();
        let signed = SignedInput {
            public_key: &approver_key,
            fields: &[
                b"approval",
                approval.client.as_bytes(),
                &node_field,
                sig.client.as_bytes(),
                sig.nonce.as_bytes(),
                request.method.as_bytes(),
                request.path.as_bytes(),
                &timestamp,
                approval.nonce.as_bytes(),
            ],
            body: &request.body,
            signature: &approval.signature,
        };
        node.verified.check(&signed, || {
            approval
                .verify_approval(&approver_key, &approved)
                .map_err(|e| AuthError::BadSignature(format!("approval: {e}")))
        })?;
        if approval.timestamp_ms > now + skew || approval.timestamp_ms + ttl < now {
            return Err(AuthError::Stale(format!(
                "the approval of {} is older than {ttl} ms or from the future",
                approval.client
            )));
        }
        // An approval is usable once: its nonce belongs to this operation, like a request's.
        node.nonces
            .claim(
                &approval.client,
                &approval.nonce,
                coordinator,
                &request.operation,
                approval.timestamp_ms + ttl,
            )
            .map_err(|e| match refused_nonce(e) {
                AuthError::Replayed(e) => AuthError::Replayed(format!("approval: {e}")),
                AuthError::Stale(e) => AuthError::Stale(format!("approval: {e}")),
                other => other,
            })?;
        if approval.client != client.name && !approvers.contains(&approval.client) {
            approvers.push(approval.client.clone());
        }
    }
    Ok(Caller { client, approvers })
}

fn refused_nonce(refused: crate::state::nonces::Refused) -> AuthError {
    match refused {
        crate::state::nonces::Refused::Replayed(e) => AuthError::Replayed(e),
        crate::state::nonces::Refused::Stale(e) => AuthError::Stale(e),
    }
}

/// A participant's answer to a request it refuses to act on.
pub fn peer_refusal(node: &Node, error: &AuthError) -> crate::peer::PeerResponse {
    use crate::peer::{PeerErrorCode, PeerResponse};
    let code = match error {
        AuthError::AdminSeq(_) => PeerErrorCode::StalePolicy,
        _ => PeerErrorCode::Unauthorized,
    };
    PeerResponse::Error {
        code,
        message: format!("node {} refuses: {} ({})", node.id(), error, error.code()),
        culprit: None,
    }
}

/// Checks that an authenticated request is the operation `operation` (`sign`, `decrypt`) on
/// `key`, and that the key's policy allows it to `caller`.
pub fn permit_key_operation(
    node: &Node,
    request: &ClientRequest,
    caller: Caller,
    key: &str,
    operation: &str,
    permission: policy::Permission,
) -> Result<Caller, AuthError> {
    if request.method != "POST" || request.path != format!("/v1/keys/{key}/{operation}") {
        return Err(AuthError::Forbidden(format!(
            "the signed request is {} {}, not a {operation} with key {key}",
            request.method, request.path
        )));
    }
    let policy = node.policy(key).ok_or_else(|| {
        AuthError::Forbidden(format!("key {key} has no policy on node {}", node.id()))
    })?;
    policy::check(&policy, key, &caller, permission)?;
    Ok(caller)
}

/// Records a refused request in the audit trail.
pub fn audit_denial(
    node: &Node,
    request: &ClientRequest,
    key: Option<&str>,
    action: &'static str,
    role: &'static str,
    error: &AuthError,
) {
    let record = crate::audit::Record {
        client: Some(request.authorization.client.clone()),
        action,
        key: key.map(str::to_string),
        role,
        details: serde_json::json!({
            "operation": request.operation,
            "request_sha256": crate::audit::hex_sha256(&request.body),
            "reason": error.to_string(),
            "code": error.code(),
        }),
        outcome: "denied",
        culprits: vec![],
    };
    if let Err(e) = node.audit.append(record) {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
}

/// A participant's admission of a client request for `operation` on `key`: authentic, for
/// this key and operation, allowed by the key's policy. A refusal is audited and becomes the
/// participant's answer.
pub fn admit_key_operation(
    node: &Node,
    from: u16,
    request: &ClientRequest,
    key: &str,
    operation: &'static str,
    permission: policy::Permission,
) -> Result<Caller, crate::peer::PeerResponse> {
    authenticate(node, from, request)
        .and_then(|c| permit_key_operation(node, request, c, key, operation, permission))
        .map_err(|e| {
            audit_denial(node, request, Some(key), operation, "participant", &e);
            peer_refusal(node, &e)
        })
}

/// One client operation on a key, as this node's audit trail records it.
pub struct AuditedOperation<'a> {
    pub caller: &'a Caller,
    pub request: &'a ClientRequest,
    pub action: &'static str,
    pub key: &'a str,
    /// `coordinator` or `participant`.
    pub role: &'static str,
}

impl AuditedOperation<'_> {
    /// Appends the entry: `details` plus the operation id and the approvers.
    pub fn record(
        &self,
        node: &Node,
        outcome: &'static str,
        culprits: Vec<u16>,
        mut details: serde_json::Value,
    ) -> anyhow::Result<()> {
        details["operation"] = self.request.operation.clone().into();
        if !self.caller.approvers.is_empty() {
            details["approvers"] = self.caller.approvers.clone().into();
        }
        node.audit.append(crate::audit::Record {
            client: Some(self.caller.name().to_string()),
            action: self.action,
            key: Some(self.key.to_string()),
            role: self.role,
            details,
            outcome,
            culprits,
        })?;
        Ok(())
    }
}
