//! The router at the top of the node, the receiving end of the peer protocol: authenticate
//! the envelope, hand the request to the participant logic it is for, and sign the answer.

use std::sync::Arc;

use crate::node::Node;
use crate::peer::{Envelope, EnvelopeError, PeerErrorCode, PeerRequest, PeerResponse};
use crate::transport::RESPONSE_KIND;

/// Authenticates `envelope` (member sender, signature, recipient, freshness, replay) and
/// answers it with an envelope signed by this node.
pub async fn dispatch(node: &Arc<Node>, envelope: Envelope) -> Result<Envelope, EnvelopeError> {
    let payload = node.verifier.open(&envelope, None, None)?;
    let request: PeerRequest =
        serde_json::from_slice(&payload).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if request.kind() != envelope.kind {
        return Err(EnvelopeError::WrongKind {
            got: envelope.kind,
            expected: request.kind().into(),
        });
    }
    // A sender that says it is ahead in client and policy changes: fetch certified entries
    // from it first, so this node judges the request by the same rules. The claim is unsigned;
    // a false one costs one fetch (DESIGN.md §11).
    let behind = match &request {
        PeerRequest::AdminCommit { entry, .. } => entry.seq > node.admin_seq() + 1,
        other => other.admin_hint().is_some_and(|seq| seq > node.admin_seq()),
    };
    if behind {
        if let Err(e) = crate::admin::sync::catch_up(node, envelope.from).await {
            tracing::warn!(from = envelope.from, error = %e, "catching up on admin changes failed");
        }
    }
    // A signer or decryptor asked for a generation it holds only pending: the coordinator
    // holds that generation's certificate, so settle it first (DESIGN.md §11).
    if let PeerRequest::SignCommit {
        key, key_session, ..
    }
    | PeerRequest::DecryptPartial {
        key, key_session, ..
    } = &request
    {
        crate::ceremony::reconcile::settle_if_pending(node, key, key_session, envelope.from).await;
    }
    let response = if request.is_key_operation() && !node.admin.caught_up() {
        PeerResponse::error(
            PeerErrorCode::CatchingUp,
            crate::admin::sync::catching_up(node.id()).body.message,
            None,
        )
    } else if let Some((_, code)) = node
        .faults()
        .refuse
        .filter(|(kind, _)| *kind == envelope.kind)
    {
        PeerResponse::error(
            code,
            format!("node {} refuses (fault hook)", node.id()),
            None,
        )
    } else {
        handle(node, envelope.from, &envelope.session, request)
    };
    let bytes =
        serde_json::to_vec(&response).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    Ok(Envelope::sign(
        &node.identity,
        envelope.from,
        &envelope.session,
        RESPONSE_KIND,
        &bytes,
    ))
}

/// Runs the participant logic for an authenticated request from `from`.
pub fn handle(node: &Arc<Node>, from: u16, session: &str, request: PeerRequest) -> PeerResponse {
    match request {
        PeerRequest::Ping => PeerResponse::Pong {
            sealed: node.is_sealed(),
        },
        PeerRequest::AuditHead { head } => crate::witness::answer(node, from, &head),
        PeerRequest::AuditHeadAt { seq } => crate::witness::head_at(node, seq),
        PeerRequest::DkgStart { spec, request } => {
            crate::ceremony::participant::start(node, from, session, spec, &request)
        }
        PeerRequest::DkgRound1 { incoming } => {
            crate::ceremony::participant::round1(node, from, session, &incoming)
        }
        PeerRequest::DkgEcho { incoming } => {
            crate::ceremony::participant::echo(node, from, session, &incoming)
        }
        PeerRequest::DkgRound2 { incoming } => {
            crate::ceremony::participant::round2(node, from, session, &incoming)
        }
        PeerRequest::DkgCommit { certificate } => {
            crate::ceremony::participant::commit(node, from, session, &certificate)
        }
        PeerRequest::DkgAbort { reason, refusal } => {
            crate::ceremony::participant::abort(node, from, session, &reason, refusal.as_ref())
        }
        PeerRequest::DkgClose { key, acks } => {
            crate::ceremony::participant::close(node, session, &key, &acks)
        }
        PeerRequest::GenerationStatus { key, session } => {
            crate::ceremony::participant::status(node, from, &key, &session)
        }
        PeerRequest::Unsettled => PeerResponse::Unsettled {
            keys: crate::ceremony::activation::unsettled(node),
        },
        PeerRequest::RepairStart { spec, request } => {
            crate::repair::participant::start(node, from, session, spec, &request)
        }
        PeerRequest::RepairDeltas { incoming } => {
            crate::repair::participant::deltas(node, from, session, &incoming)
        }
        PeerRequest::RepairValues { incoming } => {
            crate::repair::participant::values(node, from, session, &incoming)
        }
        PeerRequest::SignCommit {
            key,
            key_session,
            request,
        } => crate::signing::participant::commit(node, from, session, &key, &key_session, &request),
        PeerRequest::SignPresign {
            key,
            key_session,
            count,
        } => crate::signing::participant::presign(node, from, &key, &key_session, count),
        PeerRequest::SignPresigned {
            key,
            key_session,
            request,
            commitment_ids,
            signers,
        } => crate::signing::participant::sign_presigned(
            node,
            from,
            session,
            &key,
            &key_session,
            &request,
            &commitment_ids,
            &signers,
        ),
        PeerRequest::SignShare { signers } => {
            crate::signing::participant::share(node, from, session, &signers)
        }
        PeerRequest::DecryptPartial {
            key,
            key_session,
            request,
        } => crate::decryption::participant::partials(
            node,
            from,
            session,
            &key,
            &key_session,
            &request,
        ),
        PeerRequest::AdminPrepare { entry } => {
            crate::admin::participant::prepare(node, from, entry)
        }
        PeerRequest::AdminCommit { entry, certificate } => {
            crate::admin::participant::commit(node, from, entry, certificate)
        }
        PeerRequest::AdminAbort {
            seq,
            entry_hash,
            signature,
        } => crate::admin::participant::abort(node, from, seq, &entry_hash, &signature),
        PeerRequest::AdminDecision { seq, entry_hash } => {
            crate::admin::participant::decision(node, seq, &entry_hash)
        }
        PeerRequest::AdminLog { since } => crate::admin::participant::log(node, since),
    }
}
