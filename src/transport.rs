//! Sending a request to a peer and checking its signed answer. A request to this node itself
//! runs the same participant logic directly, so the coordinator's own share is handled by the
//! same code as everyone else's.

use std::sync::Arc;

use crate::node::{Counters, Node};
use crate::peer::{Envelope, PeerRequest, PeerResponse};

/// Why a peer gave no usable answer; its text is what the culprit lists show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("rejected the request: {0}")]
    Rejected(String),
    #[error("sent an invalid answer: {0}")]
    BadAnswer(String),
}

pub const RESPONSE_KIND: &str = "response";

/// Sends `request` to node `to` as part of `session`, and returns its verified answer.
pub async fn call(
    node: &Arc<Node>,
    to: u16,
    session: &str,
    request: &PeerRequest,
    counters: Option<&Counters>,
) -> Result<PeerResponse, CallError> {
    if to == node.id() {
        // This node's own part: the message never leaves the process, so there is nothing to
        // authenticate, and signing, verifying and encoding it would only cost time.
        // It runs on the blocking pool so that the requests to the peers go out first and the
        // nodes work in parallel.
        let (node, session, request) = (node.clone(), session.to_string(), request.clone());
        let Some(route) = node.local_router() else {
            return Err(CallError::Rejected(
                "this node serves no peer requests".into(),
            ));
        };
        let tap = node.faults().tap;
        let answer = actix_web::web::block(move || route(&node, to, &session, request))
            .await
            .map_err(|e| CallError::Rejected(format!("local handler failed: {e}")));
        if let (Some(tap), Ok(answer)) = (tap, &answer) {
            tap.lock()
                .push(serde_json::to_vec(answer).unwrap_or_default());
        }
        return answer;
    }
    let sent = send(node, to, session, request, counters).await;
    // Any answer, even a refusal, shows the peer is up; only silence marks it unreachable.
    let reachable = !matches!(sent, Err(CallError::Unreachable(_) | CallError::Timeout));
    node.metrics
        .set_peer_reachable(&node.config.members, to, reachable);
    let answer = sent?;
    if answer.from != to {
        return Err(CallError::BadAnswer(format!(
            "answer signed by node {} instead",
            answer.from
        )));
    }
    let payload = node
        .verifier
        .open(&answer, Some(session), Some(RESPONSE_KIND))
        .map_err(|e| CallError::BadAnswer(e.to_string()))?;
    let answer = serde_json::from_slice(&payload)
        .map_err(|e| CallError::BadAnswer(format!("malformed answer: {e}")))?;
    Ok(match answer {
        PeerResponse::Error {
            code,
            message,
            culprit,
        } => PeerResponse::Error {
            code,
            message: peer_text(&message),
            culprit,
        },
        other => other,
    })
}

/// Longest piece of a peer's own words passed on to clients and logs.
const PEER_TEXT_LIMIT: usize = 300;

/// A peer's error text as clients may see it: a peer is not trusted to choose what a client
/// reads, so control characters (line breaks that forge log lines, terminal escapes) become
/// spaces and the length is capped.
pub fn peer_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(PEER_TEXT_LIMIT)
        .collect();
    if text.chars().count() > PEER_TEXT_LIMIT {
        out.push_str("… (cut)");
    }
    out
}

/// Signs `request`, posts it to peer `to` and returns its (not yet verified) answer envelope.
async fn send(
    node: &Arc<Node>,
    to: u16,
    session: &str,
    request: &PeerRequest,
    counters: Option<&Counters>,
) -> Result<Envelope, CallError> {
    let payload = serde_json::to_vec(request).map_err(|e| CallError::BadAnswer(e.to_string()))?;
    let envelope = Envelope::sign(&node.identity, to, session, request.kind(), &payload);
    let member = node
        .members
        .get(&to)
        .ok_or_else(|| CallError::Unreachable(format!("node {to} is not a member")))?;
    let body = serde_json::to_vec(&envelope).map_err(|e| CallError::BadAnswer(e.to_string()))?;
    let sent = body.len();
    let body_copy = if node.faults().tap.is_some() {
        body.clone()
    } else {
        Vec::new()
    };
    // Counted when handed to the HTTP client: a request the coordinator stops waiting for has
    // still gone out.
    node.wire.sent(sent);
    let url = format!("{}/peer/v1/message", member.peer_url.trim_end_matches('/'));
    let fut = node
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send();
    let resp = tokio::time::timeout(node.config.timeouts.peer(), fut)
        .await
        .map_err(|_| CallError::Timeout)?
        .map_err(|e| {
            if e.is_timeout() {
                CallError::Timeout
            } else {
                CallError::Unreachable(e.to_string())
            }
        })?;
    let status = resp.status();
    let bytes = tokio::time::timeout(node.config.timeouts.peer(), resp.bytes())
        .await
        .map_err(|_| CallError::Timeout)?
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    node.wire.received(bytes.len());
    if let Some(tap) = node.faults().tap {
        tap.lock().extend([body_copy, bytes.to_vec()]);
    }
    node.traffic.add(to, sent, bytes.len());
    if let Some(c) = counters {
        c.add(to, sent, bytes.len());
    }
    if !status.is_success() {
        return Err(CallError::Rejected(format!(
            "HTTP {}: {}",
            status.as_u16(),
            peer_text(&String::from_utf8_lossy(
                &bytes[..bytes.len().min(PEER_TEXT_LIMIT)]
            ))
        )));
    }
    serde_json::from_slice::<Envelope>(&bytes).map_err(|e| CallError::BadAnswer(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_peers_text_reaches_clients_without_control_characters_and_capped() {
        let forged = "refused\n2026-12-01 INFO admin change applied\u{1b}[2J";
        let shown = super::peer_text(forged);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.starts_with("refused 2026-12-01 INFO"));
        let long = super::peer_text(&"x".repeat(10_000));
        assert!(long.chars().count() < 320 && long.ends_with("(cut)"));
        assert_eq!(super::peer_text("plain words"), "plain words");
    }
}
