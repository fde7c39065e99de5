//! `POST /peer/v1/message`: the only peer endpoint. Rejected envelopes are logged with the
//! claimed sender and the reason, and answered 401/400 with a JSON body.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::node::Node;
use crate::peer::{Envelope, EnvelopeError};

pub async fn message(node: web::Data<Node>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    // The raw body rather than a JSON extractor, so that the bytes received can be counted.
    node.wire.received(body.len());
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not a peer envelope: {e}")))?;
    let claimed = envelope.from;
    let faults = node.faults();
    if faults.unresponsive_kinds.contains(envelope.kind.as_str()) {
        return Ok(HttpResponse::ServiceUnavailable().finish());
    }
    let delay = faults
        .slow_answers_ms
        .get(envelope.kind.as_str())
        .copied()
        .unwrap_or(0)
        + faults.added_rtt_ms;
    let delay = (delay > 0).then_some(delay);
    if let Some(ms) = delay {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let lose_answer = faults.lost_answers.contains(envelope.kind.as_str());
    match crate::router::dispatch(&node, envelope).await {
        Ok(_) if lose_answer => Ok(HttpResponse::ServiceUnavailable().finish()),
        Ok(answer) => {
            let bytes = serde_json::to_vec(&answer)
                .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))?;
            node.wire.sent(bytes.len());
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(bytes))
        }
        Err(e) => {
            tracing::warn!(claimed_sender = claimed, reason = %e, "peer message rejected");
            Err(match e {
                EnvelopeError::Malformed(_) | EnvelopeError::WrongKind { .. } => {
                    ApiError::bad_request(e.to_string())
                }
                _ => ApiError::unauthorized(e.to_string()),
            })
        }
    }
}
