//! `POST /peer/v1/message`: the only peer endpoint. Rejected envelopes are logged with the
//! claimed sender and the reason, and answered 401/400 with a JSON body.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use crate::node::Node;
use crate::peer::{Envelope, EnvelopeError};

pub async fn message(
    node: web::Data<Node>,
    envelope: web::Json<Envelope>,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    let claimed = envelope.from;
    let delay = node
        .faults()
        .slow_answers_ms
        .get(envelope.kind.as_str())
        .copied();
    if let Some(ms) = delay {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    match crate::peer::server::dispatch(&node, envelope.into_inner()).await {
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
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
