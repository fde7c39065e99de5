//! A signer's side of FROST: commit to single-use nonces for the messages it is told about,
//! then sign exactly those messages, once.

use std::sync::Arc;
use std::time::Instant;

use api::Purpose;
use keyshares::sign::{self, Nonces, PackageSummary};
use keyshares::ProtocolError;

use crate::audit::hex_sha256;
use crate::auth::policy::Permission;
use crate::auth::{admit_key_operation, AuditedOperation, ClientRequest};
use crate::node::{ActiveKey, Node};
use crate::peer::{PeerErrorCode, PeerResponse};
use crate::store::curve_of;

/// Nonces bound to one signing session and its messages. Held in memory only; removed on use
/// or expiry, and frost zeroizes them on drop.
pub struct SignSession {
    /// The generation round 1 committed with: round 2 signs with the same share, whatever
    /// activation happened in between.
    key: Arc<ActiveKey>,
    coordinator: u16,
    messages: Vec<Vec<u8>>,
    nonces: Vec<Nonces>,
    pub started: Instant,
}

/// Nonces committed and not yet used, by signing session id.
#[derive(Default)]
pub struct SignSessions(pub parking_lot::Mutex<std::collections::HashMap<String, SignSession>>);

impl crate::sessions::RoleState for SignSessions {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.operation();
        self.0.lock().retain(|_, s| s.started.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// This node's SignSessions table.
pub fn sessions(node: &Node) -> std::sync::Arc<SignSessions> {
    node.sessions.of::<SignSessions>()
}

fn error(code: PeerErrorCode, message: impl Into<String>) -> PeerResponse {
    PeerResponse::Error {
        code,
        message: message.into(),
        culprit: None,
    }
}

pub fn commit(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    key_session: &str,
    request: &ClientRequest,
) -> PeerResponse {
    if node.is_sealed() {
        return error(
            PeerErrorCode::Sealed,
            format!("node {} is sealed", node.id()),
        );
    }
    let active = match node.key_at(key, key_session) {
        Ok(k) => k,
        Err(e) if node.key(key).is_some() => return error(PeerErrorCode::Conflict, e),
        Err(e) => return error(PeerErrorCode::Invalid, e),
    };
    if active.record.algorithm.purpose() != Purpose::Sign {
        return error(
            PeerErrorCode::Invalid,
            format!("key {key} is a decryption key; it cannot sign"),
        );
    }
    // The client's own signature, freshness, nonce and the key's policy: checked here, not
    // taken from the coordinator.
    let caller = match admit_key_operation(node, from, request, key, "sign", Permission::Sign) {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let messages = match super::messages_of(&request.body) {
        Ok((m, _)) => m,
        Err(e) => return error(PeerErrorCode::Invalid, e),
    };
    let audit = AuditedOperation {
        caller: &caller,
        request,
        action: "sign",
        key,
        role: "participant",
    };
    let details = serde_json::json!({
        "session": session,
        "coordinator": from,
        "messages_sha256": messages.iter().map(|m| hex_sha256(m)).collect::<Vec<_>>(),
    });
    if let Err(e) = audit.record(node, "ok", vec![], details) {
        return error(PeerErrorCode::Invalid, format!("audit trail: {e}"));
    }
    let mut rng = rand::rngs::OsRng;
    let mut nonces = Vec::with_capacity(messages.len());
    let mut commitments = Vec::with_capacity(messages.len());
    for _ in &messages {
        match sign::commit(&active.share, &mut rng) {
            Ok((n, c)) => {
                nonces.push(n);
                commitments.push(c);
            }
            Err(e) => return error(PeerErrorCode::Invalid, e.to_string()),
        }
    }
    let table = sessions(node);
    let mut sessions = table.0.lock();
    if sessions.contains_key(session) {
        return error(
            PeerErrorCode::Invalid,
            format!("signing session {session} exists already"),
        );
    }
    sessions.insert(
        session.to_string(),
        SignSession {
            key: active.clone(),
            coordinator: from,
            messages,
            nonces,
            started: Instant::now(),
        },
    );
    PeerResponse::Commitments { commitments }
}

pub fn share(node: &Arc<Node>, from: u16, session: &str, packages: &[Vec<u8>]) -> PeerResponse {
    // Removed before anything else: whatever happens next, these nonces never sign again.
    let Some(s) = sessions(node).0.lock().remove(session) else {
        return error(
            PeerErrorCode::UnknownSession,
            format!("unknown, expired or already used signing session {session}"),
        );
    };
    if s.coordinator != from {
        return error(
            PeerErrorCode::Invalid,
            format!("node {from} did not open signing session {session}"),
        );
    }
    let active = s.key.clone();
    // Retired, or its generation erased, since round 1: it signs nothing more.
    if node
        .key_at(&active.record.name, &active.record.session)
        .is_err()
    {
        return error(
            PeerErrorCode::Invalid,
            format!("key {} is gone", active.record.name),
        );
    }
    if packages.len() != s.messages.len() {
        return error(
            PeerErrorCode::Invalid,
            "one signing package per committed message is required",
        );
    }
    let curve = curve_of(active.record.algorithm);
    let corrupt = node.faults().corrupt_signature_shares;
    let mut shares = Vec::with_capacity(packages.len());
    for ((package, nonces), message) in packages.iter().zip(s.nonces).zip(&s.messages) {
        let approve = |summary: &PackageSummary| {
            // The coordinator may not substitute another message for the one committed to.
            if &summary.message != message {
                return Err(Refusal(PeerResponse::Error {
                    code: PeerErrorCode::Protocol,
                    message:
                        "the signing package's message is not the one this session committed to"
                            .into(),
                    culprit: Some(from),
                }));
            }
            let outsider = summary
                .signers
                .iter()
                .any(|p| !active.record.participants.contains(p));
            if !summary.signers.contains(&node.id()) || outsider {
                return Err(Refusal(error(
                    PeerErrorCode::Invalid,
                    "the signing package names signers outside the key's participants",
                )));
            }
            Ok(())
        };
        match sign::sign(&active.share, nonces, package, approve) {
            Ok(share) if corrupt => {
                drop(share);
                shares.push(sign::faults::random_share(curve, &mut rand::rngs::OsRng));
            }
            Ok(share) => shares.push(share),
            Err(Refusal(answer)) => return answer,
        }
    }
    PeerResponse::Shares { shares }
}

/// Why this signer will not sign a package; it becomes the signer's answer.
struct Refusal(PeerResponse);

impl From<ProtocolError> for Refusal {
    fn from(e: ProtocolError) -> Self {
        Refusal(error(PeerErrorCode::Invalid, format!("cannot sign: {e}")))
    }
}
