//! Refusing requests that did not authenticate, cheaply (DESIGN.md §8): per source address,
//! a source over its rejection rate gets 429 before anything is checked; each rejection is
//! counted in `keyquorum_rejected_requests_total{reason}` and summarised in at most one audit
//! entry per source and interval, never one entry per request.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::StatusCode;
use actix_web::HttpRequest;

use crate::error::ApiError;
use crate::node::Node;

/// The address the request came from (the TCP peer; no forwarding header is believed).
pub fn source(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

/// Paths anyone may read without credentials; never refused by source.
pub fn is_open(path: &str) -> bool {
    matches!(path, "/v1/health" | "/v1/openapi.json" | "/metrics")
}

/// 429 when the source used up its rejections; run before any check of the request.
pub fn guard(node: &Node, req: &HttpRequest) -> Result<(), ApiError> {
    if is_open(req.path()) {
        return Ok(());
    }
    let ip = source(req);
    node.rejections.admit(ip).map_err(|wait| {
        node.metrics.observe_rejected("source_rate_limited");
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many unauthenticated or badly signed requests from {ip}; retry in {seconds} s"
            ),
        )
        .with_retry_after(seconds)
    })
}

/// Counts a request refused before authentication for `reason` (an error code), naming the
/// client it claimed to be, and audits a summary when one is due.
pub fn record(node: &Node, req: &HttpRequest, reason: &'static str, claimed: Option<&str>) {
    node.metrics.observe_rejected(reason);
    let Some(summary) = node.rejections.reject(source(req), reason) else {
        return;
    };
    // Outsider-controlled strings are capped by the trail itself (`audit::cap`).
    let record = crate::audit::Record {
        client: None,
        action: "auth.rejected",
        key: None,
        role: "coordinator",
        details: serde_json::json!({
            "source": summary.source.to_string(),
            "rejected": summary.total(),
            "by_reason": summary.by_reason,
            "last_claimed_client": claimed,
            "last_path": req.path(),
        }),
        outcome: "denied",
        culprits: vec![],
    };
    if let Err(e) = node.audit.append(record) {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
}
