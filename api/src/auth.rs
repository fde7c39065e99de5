//! Signed client requests (issue #5): the canonical form a client signs, the header that
//! carries the signature, and client key files.
//!
//! A request is signed over
//!
//! ```text
//! KQ-REQUEST-V1 \n NODE \n METHOD \n PATH \n hex(SHA-256(body)) \n TIMESTAMP_MS \n NONCE
//! ```
//!
//! (lines joined by `\n`, no trailing newline; PATH without the query string; NODE the id of
//! the node the request is sent to, as `GET /v1/health` tells) with the client's Ed25519 key,
//! and travels as `Authorization: KQ-Ed25519 client=NAME,node=ID,ts=TIMESTAMP_MS,nonce=NONCE,sig=HEX`.
//! Naming the node means only that node can coordinate the request: a participant that saw it
//! cannot replay it as a coordinator to the nodes that did not. An approval of a decryption
//! is the same signature made by another client over the same method, path and body with
//! NODE `*` (approvers need not know where the request will be sent), in an `X-KQ-Approval`
//! header (one per approver).

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `Authorization` scheme of a signed request.
pub const SCHEME: &str = "KQ-Ed25519";
/// The header that carries one approver's signature.
pub const APPROVAL_HEADER: &str = "x-kq-approval";

/// The bytes a client signs.
pub fn canonical_request(
    node: Option<u16>,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: &str,
) -> Vec<u8> {
    let node = node.map_or("*".to_string(), |n| n.to_string());
    format!(
        "KQ-REQUEST-V1\n{node}\n{}\n{}\n{}\n{timestamp_ms}\n{nonce}",
        method.to_ascii_uppercase(),
        path,
        hex::encode(Sha256::digest(body)),
    )
    .into_bytes()
}

/// One client's signature over a request, as carried in a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSignature {
    pub client: String,
    /// The node the request is addressed to; `None` (`*`) for approvals.
    pub node: Option<u16>,
    pub timestamp_ms: u64,
    /// 16 to 64 characters of `[A-Za-z0-9_-]`, never reused by the client.
    pub nonce: String,
    /// Hex, 64-byte Ed25519 signature over [`canonical_request`].
    pub signature: String,
}

impl RequestSignature {
    /// The header value: `KQ-Ed25519 client=…,ts=…,nonce=…,sig=…`.
    pub fn to_header(&self) -> String {
        let node = self.node.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{SCHEME} client={},node={node},ts={},nonce={},sig={}",
            self.client, self.timestamp_ms, self.nonce, self.signature
        )
    }

    /// Parses a header value; the error says what is wrong with it.
    pub fn from_header(value: &str) -> Result<RequestSignature, String> {
        let rest = value
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("the signature header must start with '{SCHEME} '"))?;
        let (mut client, mut node, mut ts, mut nonce, mut sig) = (None, None, None, None, None);
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not key=value"))?;
            let slot = match k {
                "client" => &mut client,
                "node" => &mut node,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                other => return Err(format!("unknown signature field '{other}'")),
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(format!("signature field '{k}' appears twice"));
            }
        }
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("'{k}' is missing"));
        let nonce = need(nonce, "nonce")?;
        let nonce_ok = (16..=64).contains(&nonce.len())
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err("nonce must be 16 to 64 characters of [A-Za-z0-9_-]".into());
        }
        let node = match need(node, "node")?.as_str() {
            "*" => None,
            n => Some(
                n.parse()
                    .map_err(|_| "node must be a node id or *".to_string())?,
            ),
        };
        Ok(RequestSignature {
            client: need(client, "client")?,
            node,
            timestamp_ms: need(ts, "ts")?
                .parse()
                .map_err(|_| "ts must be milliseconds since the Unix epoch".to_string())?,
            nonce,
            signature: need(sig, "sig")?,
        })
    }

    /// Checks the signature with the client's public key.
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), String> {
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| format!("client {} has an invalid public key", self.client))?;
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("sig must be 64 bytes of hex")?;
        let message = canonical_request(
            self.node,
            method,
            path,
            body,
            self.timestamp_ms,
            &self.nonce,
        );
        key.verify(&message, &ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| {
                format!(
                    "the signature of client {} does not verify over this request",
                    self.client
                )
            })
    }
}

/// A client's identity: its name in the cluster's registry and its Ed25519 signing key.
#[derive(Clone)]
pub struct ClientKey {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKey({}, {})", self.name, self.public_hex())
    }
}

/// The JSON of a client key file (private: mode 0600).
#[derive(Serialize, Deserialize)]
struct KeyFile {
    client: String,
    secret_key: String,
    public_key: String,
}

impl ClientKey {
    pub fn generate(name: impl Into<String>) -> ClientKey {
        ClientKey {
            name: name.into(),
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The key file's JSON text.
    pub fn to_file_text(&self) -> String {
        let secret = zeroize::Zeroizing::new(hex::encode(self.key.to_bytes()));
        let file = KeyFile {
            client: self.name.clone(),
            secret_key: secret.to_string(),
            public_key: self.public_hex(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }

    pub fn from_file_text(text: &str) -> Result<ClientKey, String> {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| format!("not a client key file: {e}"))?;
        let secret = zeroize::Zeroizing::new(
            hex::decode(&file.secret_key).map_err(|_| "secret_key is not hex".to_string())?,
        );
        let bytes: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| "secret_key must be 32 bytes".to_string())?;
        let key = SigningKey::from_bytes(&bytes);
        if hex::encode(key.verifying_key().as_bytes()) != file.public_key {
            return Err("public_key does not match secret_key".into());
        }
        Ok(ClientKey {
            name: file.client,
            key,
        })
    }

    pub fn load(path: &Path) -> Result<ClientKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read client key {}: {e}", path.display()))?;
        Self::from_file_text(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Signs a request to `node` (`None`: an approval, for any node) now, with a fresh
    /// random nonce.
    pub fn sign_request(
        &self,
        node: Option<u16>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> RequestSignature {
        self.sign_request_at(node, method, path, body, now_ms(), &random_nonce())
    }

    pub fn sign_request_at(
        &self,
        node: Option<u16>,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp_ms: u64,
        nonce: &str,
    ) -> RequestSignature {
        let message = canonical_request(node, method, path, body, timestamp_ms, nonce);
        RequestSignature {
            client: self.name.clone(),
            node,
            timestamp_ms,
            nonce: nonce.to_string(),
            signature: hex::encode(self.key.sign(&message).to_bytes()),
        }
    }
}

/// Wall-clock time in milliseconds, as request signatures carry it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 128 random bits as 32 hex characters.
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_over_what_was_signed() {
        let key = ClientKey::generate("alice");
        let public: [u8; 32] = hex::decode(key.public_hex()).unwrap().try_into().unwrap();
        let sig = key.sign_request(
            Some(2),
            "post",
            "/v1/keys/k/sign",
            b"{\"message\":\"aGk=\"}",
        );
        let parsed = RequestSignature::from_header(&sig.to_header()).unwrap();
        assert_eq!(parsed, sig);
        parsed
            .verify(
                &public,
                "POST",
                "/v1/keys/k/sign",
                b"{\"message\":\"aGk=\"}",
            )
            .unwrap();
        for (method, path, body) in [
            ("GET", "/v1/keys/k/sign", &b"{\"message\":\"aGk=\"}"[..]),
            ("POST", "/v1/keys/j/sign", b"{\"message\":\"aGk=\"}"),
            ("POST", "/v1/keys/k/sign", b"{\"message\":\"aGl=\"}"),
        ] {
            assert!(parsed.verify(&public, method, path, body).is_err());
        }
        let mut other_time = parsed.clone();
        other_time.timestamp_ms += 1;
        let mut other_node = parsed.clone();
        other_node.node = Some(3);
        for altered in [other_time, other_node] {
            assert!(altered
                .verify(
                    &public,
                    "POST",
                    "/v1/keys/k/sign",
                    b"{\"message\":\"aGk=\"}"
                )
                .is_err());
        }
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        for (header, needle) in [
            ("Bearer abc", "must start with"),
            (
                "KQ-Ed25519 client=a,node=1,ts=1,sig=00",
                "'nonce' is missing",
            ),
            (
                "KQ-Ed25519 client=a,ts=1,nonce=0123456789abcdef,sig=00",
                "'node' is missing",
            ),
            (
                "KQ-Ed25519 client=a,node=1,ts=x,nonce=0123456789abcdef,sig=00",
                "ts must be",
            ),
            (
                "KQ-Ed25519 client=a,node=x,ts=1,nonce=0123456789abcdef,sig=00",
                "node must be",
            ),
            (
                "KQ-Ed25519 client=a,node=1,ts=1,nonce=short,sig=00",
                "nonce must be",
            ),
            ("KQ-Ed25519 client=a,client=b", "appears twice"),
            ("KQ-Ed25519 who=a", "unknown signature field"),
        ] {
            let e = RequestSignature::from_header(header).unwrap_err();
            assert!(e.contains(needle), "{header}: {e}");
        }
    }

    #[test]
    fn key_files_round_trip_and_reject_mismatched_halves() {
        let key = ClientKey::generate("ops");
        let back = ClientKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(back.public_hex(), key.public_hex());
        assert_eq!(back.name, "ops");
        let other = ClientKey::generate("ops");
        let mut file: serde_json::Value = serde_json::from_str(&key.to_file_text()).unwrap();
        file["public_key"] = other.public_hex().into();
        assert!(ClientKey::from_file_text(&file.to_string()).is_err());
    }
}
