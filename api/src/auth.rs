//! Signed client requests (README, "Access control"): the canonical form a client signs, the
//! header that carries the signature, approvals, and client key files.
//!
//! A request is signed over
//!
//! ```text
//! KQ-REQUEST-V2 \n CLIENT \n NODE \n METHOD \n PATH \n hex(SHA-256(body)) \n TIMESTAMP_MS \n NONCE
//! ```
//!
//! (lines joined by `\n`, no trailing newline; PATH without the query string; CLIENT the
//! client's registered name; NODE the id of the node the request is sent to, as
//! `GET /v1/health` tells) with the client's Ed25519 key, and travels as
//! `Authorization: KQ-Ed25519 client=NAME,node=ID,ts=TIMESTAMP_MS,nonce=NONCE,sig=HEX`.
//! Naming the client means a signature made with one client's key serves no other name;
//! naming the node means only that node can coordinate the request: a participant that saw it
//! cannot replay it as a coordinator to the nodes that did not.
//!
//! An approval of a decryption is signed by another client over
//!
//! ```text
//! KQ-APPROVAL-V1 \n APPROVER \n REQUESTER \n REQUEST-NONCE \n METHOD \n PATH \n hex(SHA-256(body)) \n TIMESTAMP_MS \n NONCE
//! ```
//!
//! and travels in an `X-KQ-Approval` header (one per approver) in the same format as
//! `Authorization`, with `node=*`: it approves one request of one requester (its nonce), on
//! whichever node, once. Its distinct first line means no request signature is an approval
//! and no approval is a request. Signatures are checked with `verify_strict` (RFC 8032 §5.1.7
//! plus the rejection of small-order keys and non-canonical encodings).

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `Authorization` scheme of a signed request.
pub const SCHEME: &str = "KQ-Ed25519";
/// The header that carries one approver's signature.
pub const APPROVAL_HEADER: &str = "x-kq-approval";

/// The first line of a request's canonical form.
pub const REQUEST_V2: &str = "KQ-REQUEST-V2";
/// The first line of an approval's canonical form.
pub const APPROVAL_V1: &str = "KQ-APPROVAL-V1";

/// The bytes a client signs for a request.
pub fn canonical_request(
    client: &str,
    node: Option<u16>,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: &str,
) -> Vec<u8> {
    let node = node.map_or("*".to_string(), |n| n.to_string());
    format!(
        "{REQUEST_V2}\n{client}\n{node}\n{}\n{}\n{}\n{timestamp_ms}\n{nonce}",
        method.to_ascii_uppercase(),
        path,
        hex::encode(Sha256::digest(body)),
    )
    .into_bytes()
}

/// What an approval approves: one request of one requester, named by its nonce.
#[derive(Debug, Clone, Copy)]
pub struct Approved<'a> {
    pub requester: &'a str,
    pub request_nonce: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// The bytes an approver signs.
pub fn canonical_approval(
    approver: &str,
    approved: &Approved<'_>,
    timestamp_ms: u64,
    nonce: &str,
) -> Vec<u8> {
    format!(
        "{APPROVAL_V1}\n{approver}\n{}\n{}\n{}\n{}\n{}\n{timestamp_ms}\n{nonce}",
        approved.requester,
        approved.request_nonce,
        approved.method.to_ascii_uppercase(),
        approved.path,
        hex::encode(Sha256::digest(approved.body)),
    )
    .into_bytes()
}

/// Checks an Ed25519 signature strictly (RFC 8032 plus small-order and canonicity checks).
fn verify_strict(public_key: &[u8; 32], message: &[u8], signature: &str) -> Result<(), ()> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| ())?;
    let bytes: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(())?;
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| ())
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
    /// The header value: `KQ-Ed25519 client=…,node=…,ts=…,nonce=…,sig=…`.
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

    /// Checks the signature of a request with the client's public key.
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), String> {
        self.check_signature_field()?;
        let message = canonical_request(
            &self.client,
            self.node,
            method,
            path,
            body,
            self.timestamp_ms,
            &self.nonce,
        );
        verify_strict(public_key, &message, &self.signature).map_err(|_| {
            format!(
                "the signature of client {} does not verify over this request",
                self.client
            )
        })
    }

    /// Checks the signature of an approval of `approved` with the approver's public key. An
    /// approval is addressed to no node (`node=*`).
    pub fn verify_approval(
        &self,
        public_key: &[u8; 32],
        approved: &Approved<'_>,
    ) -> Result<(), String> {
        self.check_signature_field()?;
        if self.node.is_some() {
            return Err(format!(
                "the approval of {} must be addressed to node=*",
                self.client
            ));
        }
        let message = canonical_approval(&self.client, approved, self.timestamp_ms, &self.nonce);
        verify_strict(public_key, &message, &self.signature).map_err(|_| {
            format!(
                "the approval of {} does not verify over this request of {} (nonce {})",
                self.client, approved.requester, approved.request_nonce
            )
        })
    }

    fn check_signature_field(&self) -> Result<(), String> {
        let ok = self.signature.len() == 128 && hex::decode(&self.signature).is_ok();
        if ok {
            Ok(())
        } else {
            Err("sig must be 64 bytes of hex".into())
        }
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
        let message = canonical_request(&self.name, node, method, path, body, timestamp_ms, nonce);
        RequestSignature {
            client: self.name.clone(),
            node,
            timestamp_ms,
            nonce: nonce.to_string(),
            signature: hex::encode(self.key.sign(&message).to_bytes()),
        }
    }

    /// Approves, now and with a fresh nonce, the request of `requester` whose nonce is
    /// `request_nonce`: an `X-KQ-Approval` header value's content.
    pub fn approve(
        &self,
        requester: &str,
        request_nonce: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> RequestSignature {
        let approved = Approved {
            requester,
            request_nonce,
            method,
            path,
            body,
        };
        self.approve_at(&approved, now_ms(), &random_nonce())
    }

    pub fn approve_at(
        &self,
        approved: &Approved<'_>,
        timestamp_ms: u64,
        nonce: &str,
    ) -> RequestSignature {
        let message = canonical_approval(&self.name, approved, timestamp_ms, nonce);
        RequestSignature {
            client: self.name.clone(),
            node: None,
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

    fn public_of(key: &ClientKey) -> [u8; 32] {
        hex::decode(key.public_hex()).unwrap().try_into().unwrap()
    }

    #[test]
    fn a_signature_serves_only_the_client_name_it_was_made_for() {
        // Two names registered with one key: the signature names its client.
        let key = ClientKey::generate("alice");
        let mut sig = key.sign_request(Some(1), "POST", "/v1/keys/k/sign", b"{}");
        sig.verify(&public_of(&key), "POST", "/v1/keys/k/sign", b"{}")
            .unwrap();
        sig.client = "mallory".into();
        assert!(sig
            .verify(&public_of(&key), "POST", "/v1/keys/k/sign", b"{}")
            .is_err());
    }

    #[test]
    fn an_approval_approves_one_request_of_one_requester() {
        let dpo = ClientKey::generate("dpo");
        let body = b"{\"ciphertexts\":[]}";
        let path = "/v1/keys/k/decrypt";
        let approval = dpo.approve("analyst", "nonce-of-the-request-1", "POST", path, body);
        assert_eq!(approval.node, None);
        let parsed = RequestSignature::from_header(&approval.to_header()).unwrap();
        let approved = Approved {
            requester: "analyst",
            request_nonce: "nonce-of-the-request-1",
            method: "POST",
            path,
            body,
        };
        parsed.verify_approval(&public_of(&dpo), &approved).unwrap();
        for other in [
            Approved {
                requester: "mallory",
                ..approved
            },
            Approved {
                request_nonce: "nonce-of-the-request-2",
                ..approved
            },
            Approved {
                path: "/v1/keys/j/decrypt",
                ..approved
            },
            Approved {
                body: b"{}",
                ..approved
            },
        ] {
            assert!(parsed.verify_approval(&public_of(&dpo), &other).is_err());
        }
        // A request signature is no approval, and an approval is no request.
        let request = dpo.sign_request(None, "POST", path, body);
        assert!(request
            .verify_approval(&public_of(&dpo), &approved)
            .is_err());
        assert!(parsed.verify(&public_of(&dpo), "POST", path, body).is_err());
        // An approval addressed to a node is refused.
        let mut addressed = parsed.clone();
        addressed.node = Some(1);
        let e = addressed
            .verify_approval(&public_of(&dpo), &approved)
            .unwrap_err();
        assert!(e.contains("node=*"), "{e}");
    }

    #[test]
    fn small_order_keys_verify_nothing() {
        // The identity point as public key and (R = identity, S = 0) as signature satisfy the
        // cofactorless equation of RFC 8032 for every message; `verify_strict` refuses them.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let forged = RequestSignature {
            client: "anyone".into(),
            node: Some(1),
            timestamp_ms: 1,
            nonce: "0123456789abcdef".into(),
            signature: hex::encode(sig),
        };
        let lax = VerifyingKey::from_bytes(&identity).unwrap();
        let message =
            canonical_request("anyone", Some(1), "POST", "/p", b"", 1, "0123456789abcdef");
        use ed25519_dalek::Verifier;
        assert!(lax
            .verify(&message, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok());
        assert!(forged.verify(&identity, "POST", "/p", b"").is_err());
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
