//! Decryption requests as every node holds them (README, "Decryption requests"): a request is
//! created, reviewed and executed by signed client requests that travel as admin log entries
//! (DESIGN.md §11), so each node checks every step against its own copy with these rules and
//! applies the certified steps in the same order.
//!
//! Every time a rule reads is a signed time (the step's request timestamp), never the
//! node's clock: a node applying an old entry in catch-up decides as the others did.

use api::{CiphertextItem, RecordLabel, RequestState, RequestedRecord, Review};
use serde::{Deserialize, Serialize};

/// Most records one request may name (a decrypt batch's limit).
pub const MAX_RECORDS: usize = 4096;

/// A request and its history on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub id: String,
    pub key: String,
    pub requester: String,
    pub reason: String,
    pub records: Vec<RequestedRecord>,
    pub content_sha256: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// The key policy's rules when the request was created: later policy changes do not move
    /// a request's goalposts.
    pub approvals_needed: u16,
    pub approvers: Vec<String>,
    pub deny_closes: bool,
    pub approvals: Vec<StoredReview>,
    pub refusals: Vec<StoredReview>,
    pub execution: Option<Execution>,
    /// Local bookkeeping: this node has audited the expiry.
    #[serde(default)]
    pub expiry_audited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReview {
    pub client: String,
    pub comment: String,
    pub at_ms: u64,
    pub admin_seq: u64,
}

/// The logged execution: the requester's signed execute request, named by its nonce, so that
/// holders serve partials to exactly that request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub client: String,
    pub nonce: String,
    pub at_ms: u64,
    pub admin_seq: u64,
}

/// A broken rule: its error code (README) and what happened, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

fn refuse(code: &'static str, status: u16, message: String) -> RuleError {
    RuleError {
        code,
        status,
        message,
    }
}

/// Whether `client` is named by `list` (`"*"` names everyone).
pub fn names(list: &[String], client: &str) -> bool {
    list.iter().any(|n| n == client || n == "*")
}

fn rfc3339(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

impl StoredRequest {
    /// The state at `now_ms`.
    pub fn state_at(&self, now_ms: u64) -> RequestState {
        if self.execution.is_some() {
            RequestState::Executed
        } else if self.deny_closes && !self.refusals.is_empty() {
            RequestState::Denied
        } else if now_ms > self.expires_ms {
            RequestState::Expired
        } else if self.approvals.len() >= usize::from(self.approvals_needed) {
            RequestState::Approved
        } else {
            RequestState::Pending
        }
    }

    fn open_at(&self, at_ms: u64) -> Result<(), RuleError> {
        match self.state_at(at_ms) {
            RequestState::Executed => Err(refuse(
                "already_executed",
                409,
                format!("request {} was executed already", self.id),
            )),
            RequestState::Denied => Err(refuse(
                "request_denied",
                409,
                format!(
                    "request {} was refused by {} and is closed",
                    self.id,
                    self.refusals
                        .iter()
                        .map(|r| r.client.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            RequestState::Expired => Err(refuse(
                "request_expired",
                409,
                format!(
                    "request {} expired at {}",
                    self.id,
                    rfc3339(self.expires_ms)
                ),
            )),
            RequestState::Pending | RequestState::Approved => Ok(()),
        }
    }

    /// Whether `reviewer` may approve or refuse this request, having read `content_sha256`,
    /// with a review signed at `at_ms`.
    pub fn check_review(
        &self,
        reviewer: &str,
        content_sha256: &str,
        at_ms: u64,
    ) -> Result<(), RuleError> {
        self.open_at(at_ms)?;
        if content_sha256 != self.content_sha256 {
            return Err(refuse(
                "content_mismatch",
                409,
                format!(
                    "the review names content {content_sha256}, request {} has content {}: it was signed for another request",
                    self.id, self.content_sha256
                ),
            ));
        }
        if reviewer == self.requester {
            return Err(refuse(
                "self_approval",
                403,
                format!("{reviewer} made request {} and may not review it", self.id),
            ));
        }
        if !names(&self.approvers, reviewer) {
            return Err(refuse(
                "not_an_approver",
                403,
                format!(
                    "{reviewer} is not an approver of key {} (approvers: {})",
                    self.key,
                    self.approvers.join(", ")
                ),
            ));
        }
        if self
            .approvals
            .iter()
            .chain(&self.refusals)
            .any(|r| r.client == reviewer)
        {
            return Err(refuse(
                "duplicate_approval",
                409,
                format!("{reviewer} has reviewed request {} already", self.id),
            ));
        }
        Ok(())
    }

    /// Whether `client` may execute this request with an execute request signed at `at_ms`.
    pub fn check_execute(&self, client: &str, at_ms: u64) -> Result<(), RuleError> {
        if client != self.requester {
            return Err(refuse(
                "not_requester",
                403,
                format!(
                    "only {} may execute request {}, not {client}",
                    self.requester, self.id
                ),
            ));
        }
        self.open_at(at_ms)?;
        if self.approvals.len() < usize::from(self.approvals_needed) {
            return Err(refuse(
                "not_approved",
                409,
                format!(
                    "request {} has {} of the {} approvals it needs",
                    self.id,
                    self.approvals.len(),
                    self.approvals_needed
                ),
            ));
        }
        Ok(())
    }

    /// The ciphertexts to decrypt: exactly the approved ones.
    pub fn ciphertexts(&self) -> Vec<CiphertextItem> {
        self.records.iter().map(|r| r.item.clone()).collect()
    }

    /// The request as the API shows it at `now_ms`; with the ciphertexts when `full`.
    pub fn to_api(&self, now_ms: u64, full: bool) -> api::DecryptRequestInfo {
        let review = |r: &StoredReview| Review {
            client: r.client.clone(),
            comment: r.comment.clone(),
            at: rfc3339(r.at_ms),
            admin_seq: r.admin_seq,
        };
        api::DecryptRequestInfo {
            id: self.id.clone(),
            key: self.key.clone(),
            requester: self.requester.clone(),
            reason: self.reason.clone(),
            state: self.state_at(now_ms),
            records: self.records.len(),
            labels: self
                .records
                .iter()
                .enumerate()
                .map(|(index, r)| RecordLabel {
                    index,
                    video: r.video.clone(),
                    frame: r.frame,
                    sha256: super::item_digest::item_sha256(&r.item),
                })
                .collect(),
            approvals_needed: self.approvals_needed,
            approvers: self.approvers.clone(),
            deny_closes: self.deny_closes,
            approvals: self.approvals.iter().map(review).collect(),
            refusals: self.refusals.iter().map(review).collect(),
            created_at: rfc3339(self.created_ms),
            expires_at: rfc3339(self.expires_ms),
            content_sha256: self.content_sha256.clone(),
            executed_at: self.execution.as_ref().map(|e| rfc3339(e.at_ms)),
            ciphertexts: if full { self.ciphertexts() } else { vec![] },
        }
    }
}

/// Reads a request for `key` from its creation body: 1 to `max` records, a reason of 1 to
/// 2000 characters.
pub fn parse_create(body: &[u8], max: usize) -> Result<api::CreateDecryptRequest, String> {
    let create: api::CreateDecryptRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid decryption request: {e}"))?;
    if create.ciphertexts.is_empty() || create.ciphertexts.len() > max {
        return Err(format!(
            "ciphertexts must hold 1 to {max} records, got {}",
            create.ciphertexts.len()
        ));
    }
    let reason = create.reason.trim();
    if reason.is_empty() || create.reason.chars().count() > 2000 {
        return Err("reason must hold 1 to 2000 characters".into());
    }
    Ok(create)
}

/// Reads a review body: a comment of at most 2000 characters and the content hash.
pub fn parse_review(body: &[u8]) -> Result<api::ReviewDecryptRequest, String> {
    let review: api::ReviewDecryptRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid review: {e}"))?;
    if review.comment.chars().count() > 2000 {
        return Err("comment must hold at most 2000 characters".into());
    }
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> StoredRequest {
        StoredRequest {
            id: "r1".into(),
            key: "k".into(),
            requester: "analyst".into(),
            reason: "court order".into(),
            records: vec![],
            content_sha256: "c1".into(),
            created_ms: 1_000,
            expires_ms: 10_000,
            approvals_needed: 2,
            approvers: vec!["dpo".into(), "dpo2".into(), "analyst".into()],
            deny_closes: true,
            approvals: vec![],
            refusals: vec![],
            execution: None,
            expiry_audited: false,
        }
    }

    fn review(client: &str) -> StoredReview {
        StoredReview {
            client: client.into(),
            comment: String::new(),
            at_ms: 2_000,
            admin_seq: 1,
        }
    }

    fn code<T: std::fmt::Debug>(r: Result<T, RuleError>) -> &'static str {
        r.unwrap_err().code
    }

    #[test]
    fn reviews_follow_the_rules() {
        let mut r = request();
        assert_eq!(r.state_at(2_000), RequestState::Pending);
        assert_eq!(
            code(r.check_review("analyst", "c1", 2_000)),
            "self_approval"
        );
        assert_eq!(code(r.check_review("eve", "c1", 2_000)), "not_an_approver");
        assert_eq!(code(r.check_review("dpo", "c2", 2_000)), "content_mismatch");
        assert_eq!(code(r.check_review("dpo", "c1", 10_001)), "request_expired");
        r.check_review("dpo", "c1", 2_000).unwrap();
        r.approvals.push(review("dpo"));
        assert_eq!(
            code(r.check_review("dpo", "c1", 2_000)),
            "duplicate_approval"
        );
        assert_eq!(code(r.check_execute("analyst", 3_000)), "not_approved");
        r.approvals.push(review("dpo2"));
        assert_eq!(r.state_at(3_000), RequestState::Approved);
        assert_eq!(code(r.check_execute("dpo", 3_000)), "not_requester");
        assert_eq!(code(r.check_execute("analyst", 10_001)), "request_expired");
        r.check_execute("analyst", 3_000).unwrap();
        r.execution = Some(Execution {
            client: "analyst".into(),
            nonce: "n".into(),
            at_ms: 3_000,
            admin_seq: 3,
        });
        assert_eq!(r.state_at(20_000), RequestState::Executed);
        assert_eq!(code(r.check_execute("analyst", 3_000)), "already_executed");
    }

    #[test]
    fn a_refusal_closes_the_request_only_when_the_policy_says_so() {
        let mut r = request();
        r.refusals.push(review("dpo"));
        assert_eq!(r.state_at(2_000), RequestState::Denied);
        assert_eq!(code(r.check_review("dpo2", "c1", 2_000)), "request_denied");
        assert_eq!(code(r.check_execute("analyst", 2_000)), "request_denied");
        r.deny_closes = false;
        assert_eq!(r.state_at(2_000), RequestState::Pending);
        r.check_review("dpo2", "c1", 2_000).unwrap();
    }
}
