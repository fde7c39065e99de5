//! A typed async client for the client API.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// One node's client API.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
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
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
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
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health").await
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status").await
    }

    pub async fn create_key(&self, req: &CreateKeyRequest) -> Result<KeyInfo, ClientError> {
        self.post("/v1/keys", req).await
    }

    pub async fn list_keys(&self) -> Result<KeyList, ClientError> {
        self.get("/v1/keys").await
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

    pub async fn decrypt(
        &self,
        key: &str,
        req: &DecryptRequest,
    ) -> Result<DecryptResponse, ClientError> {
        self.post(&format!("/v1/keys/{key}/decrypt"), req).await
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
