//! Decryption requests that approvers review (README, "Decryption requests"): the wire types,
//! the content hash an approval signs, and the typed client's calls.
//!
//! A request's id and content hash are computed the same way by every node and client:
//!
//! ```text
//! id             = hex(SHA-256("KQ-DECRYPT-REQUEST-ID-V1\n" REQUESTER "\n" NONCE))[..32]
//! content_sha256 = hex(SHA-256("KQ-DECRYPT-REQUEST-V1\n" KEY "\n" hex(SHA-256(body))))
//! ```
//!
//! where NONCE is the nonce of the requester's signed `POST /v1/keys/{KEY}/decrypt-requests`
//! and body its exact bytes. An approval is a signed `POST /v1/decrypt-requests/{id}/approve`
//! whose body names `content_sha256`: the signature covers the id (in the path) and the
//! content, so it serves no other request.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::{Client, ClientError};
use crate::types::{CiphertextItem, DecryptResponse};

/// The id of the request whose creation was signed by `requester` with `nonce`.
pub fn request_id(requester: &str, nonce: &str) -> String {
    let digest = Sha256::digest(format!("KQ-DECRYPT-REQUEST-ID-V1\n{requester}\n{nonce}"));
    hex::encode(&digest[..16])
}

/// The content hash of a request for `key` created with exactly `body`.
pub fn content_sha256(key: &str, body: &[u8]) -> String {
    let text = format!(
        "KQ-DECRYPT-REQUEST-V1\n{key}\n{}",
        hex::encode(Sha256::digest(body))
    );
    hex::encode(Sha256::digest(text))
}

/// One record to open: a ciphertext in the decrypt format, with the labels of the sealed
/// record it came from when the client has them (shown to approvers, not checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestedRecord {
    #[serde(flatten)]
    pub item: CiphertextItem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
}

/// `POST /v1/keys/{name}/decrypt-requests`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDecryptRequest {
    /// 1 to 4096 records.
    pub ciphertexts: Vec<RequestedRecord>,
    /// Why (a court order, a complaint): 1 to 2000 characters, shown to approvers.
    pub reason: String,
}

/// The answer to a created request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecryptRequestCreated {
    pub id: String,
    /// `pending` (or `approved` when the key's policy needs no approvals).
    pub state: RequestState,
    pub approvals_needed: u16,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub content_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    #[default]
    Pending,
    /// Enough approvals; the requester may execute it once.
    Approved,
    /// Refused by an approver (with the policy's `deny_closes`).
    Denied,
    /// Past `expires_at` without being executed.
    Expired,
    Executed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
            RequestState::Executed => "executed",
        }
    }
}

impl std::str::FromStr for RequestState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => RequestState::Pending,
            "approved" => RequestState::Approved,
            "denied" => RequestState::Denied,
            "expired" => RequestState::Expired,
            "executed" => RequestState::Executed,
            other => {
                return Err(format!(
                    "unknown state {other:?} (pending, approved, denied, expired or executed)"
                ))
            }
        })
    }
}

/// One approval or refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    pub client: String,
    pub comment: String,
    /// RFC 3339, UTC: when the reviewer signed.
    pub at: String,
    /// The admin log entry that recorded it.
    pub admin_seq: u64,
}

/// The video and frame labels of one record, where the requester sent them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordLabel {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// SHA-256 of the ciphertext item, as the audit trail names it.
    pub sha256: String,
}

/// `GET /v1/decrypt-requests/{id}`: a request as the answering node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecryptRequestInfo {
    pub id: String,
    pub key: String,
    pub requester: String,
    pub reason: String,
    pub state: RequestState,
    pub records: usize,
    pub labels: Vec<RecordLabel>,
    pub approvals_needed: u16,
    /// Who may approve, from the key's policy when the request was created.
    pub approvers: Vec<String>,
    /// Whether one refusal closes the request (the policy's `deny_closes`).
    pub deny_closes: bool,
    pub approvals: Vec<Review>,
    pub refusals: Vec<Review>,
    pub created_at: String,
    pub expires_at: String,
    pub content_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_at: Option<String>,
    /// The records themselves; only in `GET /v1/decrypt-requests/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ciphertexts: Vec<CiphertextItem>,
}

/// `GET /v1/decrypt-requests`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecryptRequestList {
    /// Newest first.
    pub requests: Vec<DecryptRequestInfo>,
}

/// `POST /v1/decrypt-requests/{id}/approve` and `/deny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecryptRequest {
    /// Up to 2000 characters; may be empty.
    #[serde(default)]
    pub comment: String,
    /// The request's `content_sha256` as the reviewer read it: the review counts only for
    /// exactly that content.
    pub content_sha256: String,
}

/// `POST /v1/decrypt-requests/{id}/execute`: the decrypt options; the ciphertexts are the
/// approved ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteDecryptRequest {
    /// End-to-end mode: the requester's fresh X25519 public key, hex (as in decrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<u16>,
}

/// The answer to a review: the request after it.
pub type Reviewed = DecryptRequestInfo;

impl Client {
    pub async fn create_decrypt_request(
        &self,
        key: &str,
        req: &CreateDecryptRequest,
    ) -> Result<DecryptRequestCreated, ClientError> {
        self.send_request_json(&format!("/v1/keys/{key}/decrypt-requests"), req)
            .await
    }

    /// Every request the node holds, or those in `state`.
    pub async fn list_decrypt_requests(
        &self,
        state: Option<RequestState>,
    ) -> Result<DecryptRequestList, ClientError> {
        let path = match state {
            Some(s) => format!("/v1/decrypt-requests?state={}", s.as_str()),
            None => "/v1/decrypt-requests".into(),
        };
        self.call_with_nonce(reqwest::Method::GET, &path, None, &[], None)
            .await
    }

    pub async fn get_decrypt_request(&self, id: &str) -> Result<DecryptRequestInfo, ClientError> {
        self.call_with_nonce(
            reqwest::Method::GET,
            &format!("/v1/decrypt-requests/{id}"),
            None,
            &[],
            None,
        )
        .await
    }

    /// Approves (`approve`) or refuses the request with `comment`, for the content the node
    /// shows now.
    pub async fn review_decrypt_request(
        &self,
        id: &str,
        approve: bool,
        comment: &str,
    ) -> Result<DecryptRequestInfo, ClientError> {
        let shown = self.get_decrypt_request(id).await?;
        let review = ReviewDecryptRequest {
            comment: comment.into(),
            content_sha256: shown.content_sha256,
        };
        let verb = if approve { "approve" } else { "deny" };
        self.send_request_json(&format!("/v1/decrypt-requests/{id}/{verb}"), &review)
            .await
    }

    /// Executes an approved request in coordinator-combine mode (the node opens the records).
    pub async fn execute_decrypt_request_by_node(
        &self,
        id: &str,
    ) -> Result<DecryptResponse, ClientError> {
        self.send_request_json(
            &format!("/v1/decrypt-requests/{id}/execute"),
            &ExecuteDecryptRequest::default(),
        )
        .await
    }

    /// Executes an approved request end to end: holders seal their partials to a fresh key of
    /// this client, which checks and combines them; no node learns the plaintexts.
    pub async fn execute_decrypt_request(&self, id: &str) -> Result<DecryptResponse, ClientError> {
        crate::e2e::execute(self, id).await
    }

    async fn send_request_json<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::Transport(format!("cannot encode the request: {e}")))?;
        self.call_with_nonce(reqwest::Method::POST, path, Some(bytes), &[], None)
            .await
    }
}
