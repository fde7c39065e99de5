//! A typed async client for the client API.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{ClientKey, APPROVAL_HEADER};
use crate::types::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error body.
    #[error("HTTP {status}: {} ({})", body.message, body.error)]
    Api { status: u16, body: ErrorBody },
    /// No usable answer: connection refused, timeout, or a body that is not the contract's.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(_) => None,
        }
    }
}

/// One node's client API. Requests are signed with the client key when one is set (issue
/// #5: sign, decrypt, key creation and admin calls need it); the bearer token, when set, is
/// sent on the others.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    signer: Option<ClientKey>,
    /// The node's id, asked once: signed requests name the node they are addressed to.
    node: std::sync::Arc<std::sync::OnceLock<u16>>,
    http: reqwest::Client,
}

impl Client {
    /// `base` is the node's client URL, e.g. `http://127.0.0.1:7100`.
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        Self::with_timeout(base, token, Duration::from_secs(120))
    }

    pub fn with_timeout(base: impl Into<String>, token: Option<String>, timeout: Duration) -> Self {
        let base = base.into();
        // Without a CA file the builder has nothing to fail on but the TLS backend's set-up;
        // fall back to reqwest's defaults rather than panic, as before.
        Self::build(base.clone(), token.clone(), timeout, None).unwrap_or_else(|_| Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            signer: None,
            node: Default::default(),
            http: reqwest::Client::new(),
        })
    }

    /// A client for a node with TLS: it trusts only the CA certificate(s) in `ca_pem` (PEM, as
    /// `keyquorum cluster init --tls` writes to `tls/ca.crt`), not the system's roots.
    pub fn with_ca(
        base: impl Into<String>,
        token: Option<String>,
        ca_pem: &[u8],
    ) -> Result<Self, ClientError> {
        Self::build(base, token, Duration::from_secs(120), Some(ca_pem))
    }

    /// Any client: `ca_pem` as in [`Client::with_ca`], or `None` for plain HTTP / system roots.
    pub fn build(
        base: impl Into<String>,
        token: Option<String>,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            // Below the node's 5 s keep-alive: never reuse a connection the node is closing.
            .pool_idle_timeout(Duration::from_secs(4));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Transport(format!("CA file: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Transport(
                    "CA file holds no PEM certificate".into(),
                ));
            }
            builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Transport(format!("HTTP client: {e}")))?;
        Ok(Client {
            base: base.into().trim_end_matches('/').to_string(),
            token,
            signer: None,
            node: Default::default(),
            http,
        })
    }

    /// Signs every request with `key` from now on.
    pub fn with_signer(mut self, key: ClientKey) -> Self {
        self.signer = Some(key);
        self
    }

    pub fn signer(&self) -> Option<&ClientKey> {
        self.signer.as_ref()
    }

    /// The id of the node this client talks to (from `GET /v1/health`, asked once).
    pub async fn node_id(&self) -> Result<u16, ClientError> {
        match self.node.get() {
            Some(id) => Ok(*id),
            None => Ok(self.health().await?.node),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request: signed by this client's key (and each approver's) when set, else
    /// with the bearer token.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        approvers: &[ClientKey],
    ) -> Result<T, ClientError> {
        self.call_with_nonce(method, path_and_query, body, approvers, None)
            .await
    }

    /// [`Client::call`] signed with this `nonce` when given (end-to-end decryption binds the
    /// sealed partials to the nonce of its request).
    pub(crate) async fn call_with_nonce<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        approvers: &[ClientKey],
        nonce: Option<&str>,
    ) -> Result<T, ClientError> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let bytes = body.clone().unwrap_or_default();
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path_and_query}", self.base));
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        match (&self.signer, &self.token) {
            (Some(key), _) => {
                let node = self.node_id().await?;
                let sig = match nonce {
                    Some(nonce) => key.sign_request_at(
                        Some(node),
                        method.as_str(),
                        path,
                        &bytes,
                        crate::auth::now_ms(),
                        nonce,
                    ),
                    None => key.sign_request(Some(node), method.as_str(), path, &bytes),
                };
                req = req.header(reqwest::header::AUTHORIZATION, sig.to_header());
                // Each approval names this request: its requester and nonce.
                for approver in approvers {
                    let approval =
                        approver.approve(&sig.client, &sig.nonce, method.as_str(), path, &bytes);
                    req = req.header(APPROVAL_HEADER, approval.to_header());
                }
            }
            (None, Some(t)) => req = req.bearer_auth(t),
            (None, None) => {}
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Transport(format!("unexpected response body: {e}")))
        } else {
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                error: "http_error".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
                culprits: vec![],
            });
            Err(ClientError::Api {
                status: status.as_u16(),
                body,
            })
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(reqwest::Method::GET, path, None, &[]).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(reqwest::Method::POST, path, body, &[]).await
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
        approvers: &[ClientKey],
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::Transport(format!("cannot encode the request: {e}")))?;
        self.call(method, path, Some(bytes), approvers).await
    }

    /// Liveness. Sent without authentication (the endpoint needs none, and signing would
    /// need the node id this answer gives); remembers the node id.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let resp = self
            .http
            .get(format!("{}/v1/health", self.base))
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(ClientError::Transport(format!(
                "health: HTTP {}",
                resp.status().as_u16()
            )));
        }
        let health: Health = resp
            .json()
            .await
            .map_err(|e| ClientError::Transport(format!("unexpected health answer: {e}")))?;
        let _ = self.node.set(health.node);
        Ok(health)
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status").await
    }

    pub async fn create_key(&self, req: &CreateKeyRequest) -> Result<KeyInfo, ClientError> {
        self.post("/v1/keys", req).await
    }

    /// Every key the caller may read, page after page.
    pub async fn list_keys(&self) -> Result<KeyList, ClientError> {
        let mut all = KeyList {
            keys: Vec::new(),
            next: None,
        };
        let mut after = None;
        loop {
            let page = self.list_keys_page(after.as_deref(), 1000).await?;
            all.keys.extend(page.keys);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of keys, in name order after `after`.
    pub async fn list_keys_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<KeyList, ClientError> {
        let after = after
            .map(|a| format!("&after={}", percent_encode(a)))
            .unwrap_or_default();
        self.get(&format!("/v1/keys?limit={limit}{after}")).await
    }

    pub async fn get_key(&self, name: &str) -> Result<KeyInfo, ClientError> {
        self.get(&format!("/v1/keys/{name}")).await
    }

    /// Signs one message (raw bytes; the client encodes them).
    pub async fn sign(&self, key: &str, message: &[u8]) -> Result<SignResponse, ClientError> {
        let req = SignRequest {
            message: Some(b64(message)),
            batch: None,
        };
        self.post(&format!("/v1/keys/{key}/sign"), &req).await
    }

    pub async fn sign_batch(
        &self,
        key: &str,
        messages: &[Vec<u8>],
    ) -> Result<BatchSignResponse, ClientError> {
        let batch = messages
            .iter()
            .map(|m| SignItem { message: b64(m) })
            .collect();
        let req = SignRequest {
            message: None,
            batch: Some(batch),
        };
        self.post(&format!("/v1/keys/{key}/sign"), &req).await
    }

    pub async fn verify(
        &self,
        key: &str,
        message: &[u8],
        signature_hex: &str,
    ) -> Result<VerifyResponse, ClientError> {
        let req = VerifyRequest {
            message: b64(message),
            signature: signature_hex.to_string(),
        };
        self.post(&format!("/v1/keys/{key}/verify"), &req).await
    }

    /// Decrypts end to end (DESIGN.md §6): the holders seal their partials to a fresh key of
    /// this client, which checks every proof against the key's verifying shares, combines and
    /// opens; no node sees a plaintext. Holders whose partials fail are asked around (the
    /// request is sent again without them), reported to the node, and listed in `excluded`.
    pub async fn decrypt(
        &self,
        key: &str,
        req: &DecryptRequest,
    ) -> Result<DecryptResponse, ClientError> {
        crate::e2e::decrypt(self, key, req, &[]).await
    }

    /// [`Client::decrypt`] for a key whose policy makes decryptions wait for approvals: each
    /// approver signs the same request (`X-KQ-Approval`). Approvers normally sign on their own
    /// machines; this is the case where their keys are at hand.
    pub async fn decrypt_approved(
        &self,
        key: &str,
        req: &DecryptRequest,
        approvers: &[ClientKey],
    ) -> Result<DecryptResponse, ClientError> {
        crate::e2e::decrypt(self, key, req, approvers).await
    }

    /// One end-to-end round as the node answers it: `req` must name `reply_to`, and the request
    /// is signed with `nonce`.
    pub async fn decrypt_sealed(
        &self,
        key: &str,
        req: &DecryptRequest,
        approvers: &[ClientKey],
        nonce: &str,
    ) -> Result<DecryptResponse, ClientError> {
        let bytes = serde_json::to_vec(req)
            .map_err(|e| ClientError::Transport(format!("cannot encode the request: {e}")))?;
        self.call_with_nonce(
            reqwest::Method::POST,
            &format!("/v1/keys/{key}/decrypt"),
            Some(bytes),
            approvers,
            Some(nonce),
        )
        .await
    }

    /// Names holders whose end-to-end partials failed this client's checks; the node audits
    /// the report (`decrypt.report`).
    pub async fn report_decrypt(
        &self,
        key: &str,
        report: &DecryptReport,
    ) -> Result<ReportAccepted, ClientError> {
        self.post(&format!("/v1/keys/{key}/decrypt/report"), report)
            .await
    }

    /// Coordinator-combine mode: the node combines the partials and answers plaintexts, so it
    /// learns them (DESIGN.md §6); for clients that cannot combine.
    pub async fn decrypt_combined_by_node(
        &self,
        key: &str,
        req: &DecryptRequest,
    ) -> Result<DecryptResponse, ClientError> {
        self.post(&format!("/v1/keys/{key}/decrypt"), req).await
    }

    /// [`Client::decrypt_combined_by_node`] with approvals.
    pub async fn decrypt_combined_by_node_approved(
        &self,
        key: &str,
        req: &DecryptRequest,
        approvers: &[ClientKey],
    ) -> Result<DecryptResponse, ClientError> {
        self.send_json(
            reqwest::Method::POST,
            &format!("/v1/keys/{key}/decrypt"),
            req,
            approvers,
        )
        .await
    }

    /// New shares of the same key for every participant.
    pub async fn refresh_key(&self, key: &str) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/v1/keys/{key}/refresh"), &RefreshRequest {})
            .await
    }

    /// Rebuilds the share of participant `node` with the help of others.
    pub async fn repair_key(&self, key: &str, req: &RepairRequest) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/v1/keys/{key}/repair"), req).await
    }

    /// Shares the same key to a new committee and/or threshold.
    pub async fn reshare_key(
        &self,
        key: &str,
        req: &ReshareRequest,
    ) -> Result<KeyInfo, ClientError> {
        self.post(&format!("/v1/keys/{key}/reshare"), req).await
    }

    /// Retires the key: every share is erased, the public data stays readable.
    pub async fn retire_key(&self, key: &str) -> Result<KeyInfo, ClientError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/keys/{key}"),
            None,
            &[],
        )
        .await
    }

    pub async fn set_policy(&self, key: &str, policy: &KeyPolicy) -> Result<KeyInfo, ClientError> {
        self.send_json(
            reqwest::Method::PUT,
            &format!("/v1/keys/{key}/policy"),
            policy,
            &[],
        )
        .await
    }

    pub async fn list_clients(&self) -> Result<ClientList, ClientError> {
        self.get("/v1/clients").await
    }

    /// Registers a client, or replaces its key and roles, on every node.
    pub async fn put_client(&self, client: &ClientInfo) -> Result<ChangeApplied, ClientError> {
        self.post("/v1/clients", client).await
    }

    pub async fn remove_client(&self, name: &str) -> Result<ChangeApplied, ClientError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/clients/{name}"),
            None,
            &[],
        )
        .await
    }

    pub async fn audit(&self, after: Option<u64>, limit: u32) -> Result<AuditPage, ClientError> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.get(&format!("/v1/audit?limit={limit}{after}")).await
    }

    /// `GET /v1/audit/heads`.
    pub async fn audit_heads(&self) -> Result<AuditHeads, ClientError> {
        self.get("/v1/audit/heads").await
    }

    pub async fn seal(&self) -> Result<SealState, ClientError> {
        self.call(
            reqwest::Method::POST,
            "/v1/sys/seal",
            Some(b"{}".to_vec()),
            &[],
        )
        .await
    }

    pub async fn unseal(&self, passphrase: &str) -> Result<SealState, ClientError> {
        self.post(
            "/v1/sys/unseal",
            &UnsealRequest {
                passphrase: passphrase.to_string(),
            },
        )
        .await
    }

    pub async fn encrypt(
        &self,
        key: &str,
        req: &EncryptRequest,
    ) -> Result<EncryptResponse, ClientError> {
        self.post(&format!("/v1/keys/{key}/encrypt"), req).await
    }
}

/// Standard base64, the encoding of every byte field in the API.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a standard base64 field.
pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Percent-encodes a query value (key names are `[A-Za-z0-9._-]`, but a cursor is opaque).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
