//! Signed peer envelopes: every protocol message between nodes is one (DESIGN.md §1).
//!
//! An envelope names its sender, its recipient, the session it belongs to and its kind, and
//! carries a timestamp and a random message id; the sender's Ed25519 identity key signs all of
//! that together with the SHA-256 of the payload. A receiver accepts it only if the sender is a
//! member, the signature verifies, it is addressed to the receiver, it is fresh, and its message
//! id has not been seen before ([`ReplayGuard`]). Secrets inside a payload are additionally
//! sealed to the recipient (`keyshares::seal`).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::Identity;

const DOMAIN: &[u8] = b"keyquorum/peer/v1\0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub from: u16,
    pub to: u16,
    pub session: String,
    pub kind: String,
    pub sent_at_ms: u64,
    /// 16 random bytes, hex.
    pub msg_id: String,
    /// Base64.
    pub payload: String,
    /// Hex, Ed25519 over [`Envelope::signed_bytes`].
    pub signature: String,
}

/// An envelope without its payload, only the payload's SHA-256: enough to check the
/// sender's signature, so a node can pass on proof of what a peer sent it (an echo quotes
/// the round-1 messages it received this way, DESIGN.md §4.2, §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub from: u16,
    pub to: u16,
    pub session: String,
    pub kind: String,
    pub sent_at_ms: u64,
    pub msg_id: String,
    /// Hex.
    pub payload_sha256: String,
    /// Hex, the envelope's signature.
    pub signature: String,
}

impl Receipt {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(160);
        buf.extend_from_slice(DOMAIN);
        buf.extend_from_slice(&self.from.to_be_bytes());
        buf.extend_from_slice(&self.to.to_be_bytes());
        put_str(&mut buf, &self.session);
        put_str(&mut buf, &self.kind);
        buf.extend_from_slice(&self.sent_at_ms.to_be_bytes());
        put_str(&mut buf, &self.msg_id);
        // A digest that is not 32 bytes of hex signs nothing anyone could have signed.
        let digest = hex::decode(&self.payload_sha256).unwrap_or_default();
        buf.extend_from_slice(&digest);
        buf
    }

    /// The payload digest, if well formed.
    pub fn digest(&self) -> Option<[u8; 32]> {
        hex::decode(&self.payload_sha256).ok()?.try_into().ok()
    }
}

/// Why an envelope was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("sender {0} is not a cluster member")]
    UnknownSender(u16),
    #[error("message is addressed to node {to}, not to node {me}")]
    WrongRecipient { to: u16, me: u16 },
    #[error("bad signature from node {0}")]
    BadSignature(u16),
    #[error("message is {0} ms away from this node's clock (stale or replayed)")]
    Stale(u64),
    #[error("replayed message {0}")]
    Replayed(String),
    #[error("message belongs to session {got}, expected {expected}")]
    WrongSession { got: String, expected: String },
    #[error("expected a {expected} message, got {got}")]
    WrongKind { got: String, expected: String },
    #[error("malformed message: {0}")]
    Malformed(String),
}

pub use crate::clock::now_ms;

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

impl Envelope {
    /// What the signature covers: every field but the signature, the payload by its hash,
    /// length-prefixed so that no two envelopes share an encoding.
    fn signed_bytes(&self, payload: &[u8]) -> Vec<u8> {
        self.receipt_of(Sha256::digest(payload).into())
            .signed_bytes()
    }

    /// This envelope with its payload replaced by the payload's SHA-256: what its signature
    /// covers, so it proves as much as the envelope, in constant size.
    pub fn receipt(&self) -> Result<Receipt, EnvelopeError> {
        Ok(self.receipt_of(Sha256::digest(self.payload_bytes()?).into()))
    }

    fn receipt_of(&self, payload_sha256: [u8; 32]) -> Receipt {
        Receipt {
            from: self.from,
            to: self.to,
            session: self.session.clone(),
            kind: self.kind.clone(),
            sent_at_ms: self.sent_at_ms,
            msg_id: self.msg_id.clone(),
            payload_sha256: hex::encode(payload_sha256),
            signature: self.signature.clone(),
        }
    }

    /// Builds and signs an envelope from `identity` to `to`.
    pub fn sign(
        identity: &Identity,
        to: u16,
        session: &str,
        kind: &str,
        payload: &[u8],
    ) -> Envelope {
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let mut env = Envelope {
            from: identity.id,
            to,
            session: session.to_string(),
            kind: kind.to_string(),
            sent_at_ms: now_ms(),
            msg_id: hex::encode(id),
            payload: base64::engine::general_purpose::STANDARD.encode(payload),
            signature: String::new(),
        };
        env.signature = hex::encode(identity.sign(&env.signed_bytes(payload)));
        env
    }

    pub fn payload_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.payload)
            .map_err(|e| EnvelopeError::Malformed(format!("payload: {e}")))
    }

    /// Checks the signature against `sender_key` and returns the payload. Freshness, replay,
    /// recipient and session are the [`Verifier`]'s job.
    fn verify_signature(&self, sender_key: &VerifyingKey) -> Result<Vec<u8>, EnvelopeError> {
        let payload = self.payload_bytes()?;
        let sig_bytes =
            hex::decode(&self.signature).map_err(|_| EnvelopeError::BadSignature(self.from))?;
        let sig = Signature::from_slice(&sig_bytes)
            .map_err(|_| EnvelopeError::BadSignature(self.from))?;
        sender_key
            .verify_strict(&self.signed_bytes(&payload), &sig)
            .map_err(|_| EnvelopeError::BadSignature(self.from))?;
        Ok(payload)
    }
}

/// Remembers message ids until they could no longer pass the freshness check.
pub struct ReplayGuard {
    state: Mutex<SeenIds>,
    window_ms: u64,
}

#[derive(Default)]
struct SeenIds {
    /// (sender, message id) → the message's own timestamp.
    seen: HashMap<(u16, String), u64>,
    last_prune_ms: u64,
}

impl ReplayGuard {
    pub fn new(window: Duration) -> Self {
        ReplayGuard {
            state: Mutex::new(SeenIds::default()),
            window_ms: window.as_millis() as u64,
        }
    }

    fn check(&self, env: &Envelope) -> Result<(), EnvelopeError> {
        let now = now_ms();
        let skew = now.abs_diff(env.sent_at_ms);
        if skew > self.window_ms {
            return Err(EnvelopeError::Stale(skew));
        }
        let mut state = self.state.lock();
        // An id only needs remembering while its timestamp is fresh; forget older ones, at most
        // once a second so that the cost stays constant per message under load.
        if now.saturating_sub(state.last_prune_ms) > 1_000 {
            let oldest = now.saturating_sub(self.window_ms);
            state.seen.retain(|_, sent| *sent >= oldest);
            state.last_prune_ms = now;
        }
        match state.seen.entry((env.from, env.msg_id.clone())) {
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(EnvelopeError::Replayed(env.msg_id.clone()))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(env.sent_at_ms);
                Ok(())
            }
        }
    }
}

/// Verifies envelopes against the cluster membership.
pub struct EnvelopeVerifier {
    me: u16,
    keys: HashMap<u16, VerifyingKey>,
    replay: ReplayGuard,
}

impl EnvelopeVerifier {
    pub fn new(
        me: u16,
        members: &[crate::config::Member],
        window: Duration,
    ) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for m in members {
            let bytes: [u8; 32] = hex::decode(&m.sign_public_key)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("member {}: sign key must be 32 bytes", m.id))?;
            keys.insert(m.id, VerifyingKey::from_bytes(&bytes)?);
        }
        Ok(EnvelopeVerifier {
            me,
            keys,
            replay: ReplayGuard::new(window),
        })
    }

    /// Accepts an envelope addressed to this node: member sender, valid signature, fresh, not
    /// seen before, and (when given) of the expected session and kind. Returns the payload.
    pub fn open(
        &self,
        env: &Envelope,
        session: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let key = self
            .keys
            .get(&env.from)
            .ok_or(EnvelopeError::UnknownSender(env.from))?;
        if env.to != self.me {
            return Err(EnvelopeError::WrongRecipient {
                to: env.to,
                me: self.me,
            });
        }
        if let Some(expected) = session {
            if env.session != expected {
                return Err(EnvelopeError::WrongSession {
                    got: env.session.clone(),
                    expected: expected.into(),
                });
            }
        }
        if let Some(expected) = kind {
            if env.kind != expected {
                return Err(EnvelopeError::WrongKind {
                    got: env.kind.clone(),
                    expected: expected.into(),
                });
            }
        }
        // Signature before the replay record, so forged ids cannot poison the replay cache.
        let payload = env.verify_signature(key)?;
        self.replay.check(env)?;
        Ok(payload)
    }

    /// Checks an envelope another node received and passed on as evidence of what its sender
    /// said: member sender, valid signature, and the sender, recipient, session and kind the
    /// evidence must have. Not fresh or unseen: it is a copy, not a message to this node.
    pub fn check_forwarded(
        &self,
        env: &Envelope,
        from: u16,
        to: u16,
        session: &str,
        kind: &str,
    ) -> Result<Vec<u8>, EnvelopeError> {
        if env.from != from || env.to != to || env.session != session || env.kind != kind {
            return Err(EnvelopeError::Malformed(format!(
                "expected a {kind} from node {from} to node {to} in session {session}"
            )));
        }
        let key = self
            .keys
            .get(&env.from)
            .ok_or(EnvelopeError::UnknownSender(env.from))?;
        env.verify_signature(key)
    }
}

impl EnvelopeVerifier {
    /// Checks a receipt another node passed on: signed by `from`, for `to`, of the session and
    /// kind it must have. Returns the payload digest the sender signed.
    pub fn check_receipt(
        &self,
        receipt: &Receipt,
        from: u16,
        to: u16,
        session: &str,
        kind: &str,
    ) -> Result<[u8; 32], EnvelopeError> {
        if receipt.from != from
            || receipt.to != to
            || receipt.session != session
            || receipt.kind != kind
        {
            return Err(EnvelopeError::Malformed(format!(
                "expected a receipt of a {kind} from node {from} to node {to} in session {session}"
            )));
        }
        let digest = receipt
            .digest()
            .ok_or_else(|| EnvelopeError::Malformed("payload digest".into()))?;
        let key = self
            .keys
            .get(&from)
            .ok_or(EnvelopeError::UnknownSender(from))?;
        let sig = hex::decode(&receipt.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(EnvelopeError::BadSignature(from))?;
        key.verify_strict(&receipt.signed_bytes(), &sig)
            .map_err(|_| EnvelopeError::BadSignature(from))?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Member;

    fn member(identity: &Identity) -> Member {
        Member {
            id: identity.id,
            name: format!("node-{}", identity.id),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: identity.sign_public_hex(),
            seal_public_key: identity.seal_public_hex(),
        }
    }

    #[test]
    fn a_small_order_member_key_verifies_no_envelope() {
        // The identity point as a member's key and (R = identity, S = 0) as signature satisfy
        // RFC 8032's cofactorless equation for any message; `verify_strict` refuses them.
        let a = Identity::generate(1);
        let b = Identity::generate(2);
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let weak = Member {
            sign_public_key: hex::encode(identity_point),
            ..member(&Identity::generate(3))
        };
        let members = [member(&a), member(&b), weak];
        let at_b = EnvelopeVerifier::new(2, &members, Duration::from_secs(60)).unwrap();
        let mut env = Envelope::sign(&a, 2, "s1", "dkg.start", b"forged");
        env.from = 3;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        env.signature = hex::encode(sig);
        assert_eq!(
            at_b.open(&env, Some("s1"), None),
            Err(EnvelopeError::BadSignature(3))
        );
    }

    #[test]
    fn envelopes_are_bound_to_sender_recipient_session_and_used_once() {
        let a = Identity::generate(1);
        let b = Identity::generate(2);
        let mallory = Identity::generate(3);
        let members = [member(&a), member(&b)];
        let at_b = EnvelopeVerifier::new(2, &members, Duration::from_secs(60)).unwrap();

        let env = Envelope::sign(&a, 2, "s1", "dkg.start", b"hello");
        assert_eq!(
            at_b.open(&env, Some("s1"), Some("dkg.start")).unwrap(),
            b"hello"
        );
        assert_eq!(
            at_b.open(&env, Some("s1"), None),
            Err(EnvelopeError::Replayed(env.msg_id.clone()))
        );

        let other_session = Envelope::sign(&a, 2, "s2", "dkg.start", b"hello");
        assert!(matches!(
            at_b.open(&other_session, Some("s1"), None),
            Err(EnvelopeError::WrongSession { .. })
        ));

        let to_a = Envelope::sign(&a, 1, "s1", "dkg.start", b"hello");
        assert!(matches!(
            at_b.open(&to_a, None, None),
            Err(EnvelopeError::WrongRecipient { .. })
        ));

        let mut tampered = Envelope::sign(&a, 2, "s1", "dkg.start", b"hello");
        tampered.payload = base64::engine::general_purpose::STANDARD.encode(b"hellO");
        assert_eq!(
            at_b.open(&tampered, None, None),
            Err(EnvelopeError::BadSignature(1))
        );

        let forged = Envelope::sign(&mallory, 2, "s1", "dkg.start", b"hello");
        assert_eq!(
            at_b.open(&forged, None, None),
            Err(EnvelopeError::UnknownSender(3))
        );
        let mut impersonating = forged.clone();
        impersonating.from = 1;
        assert_eq!(
            at_b.open(&impersonating, None, None),
            Err(EnvelopeError::BadSignature(1))
        );

        let mut stale = Envelope::sign(&a, 2, "s1", "dkg.start", b"x");
        stale.sent_at_ms -= 10 * 60 * 1000;
        let stale = {
            // Re-sign with the old timestamp so only freshness fails.
            let payload = stale.payload_bytes().unwrap();
            stale.signature = hex::encode(a.sign(&stale.signed_bytes(&payload)));
            stale
        };
        assert!(matches!(
            at_b.open(&stale, None, None),
            Err(EnvelopeError::Stale(_))
        ));
    }

    #[test]
    fn a_forwarded_envelope_is_checked_for_its_signature_and_binding_only() {
        let a = Identity::generate(1);
        let b = Identity::generate(2);
        let c = Identity::generate(3);
        let members = [member(&a), member(&b), member(&c)];
        let at_c = EnvelopeVerifier::new(3, &members, Duration::from_secs(60)).unwrap();
        let env = Envelope::sign(&a, 2, "s1", "repair.delta", b"evidence");
        // Node 3 checks what node 1 told node 2, as often as it is shown it.
        for _ in 0..2 {
            let payload = at_c.check_forwarded(&env, 1, 2, "s1", "repair.delta");
            assert_eq!(payload.unwrap(), b"evidence");
        }
        for (from, to, session, kind) in [
            (2, 2, "s1", "repair.delta"),
            (1, 3, "s1", "repair.delta"),
            (1, 2, "s2", "repair.delta"),
            (1, 2, "s1", "repair.value"),
        ] {
            let checked = at_c.check_forwarded(&env, from, to, session, kind);
            assert!(matches!(checked, Err(EnvelopeError::Malformed(_))));
        }
        let mut altered = env.clone();
        altered.payload = base64::engine::general_purpose::STANDARD.encode(b"other");
        assert_eq!(
            at_c.check_forwarded(&altered, 1, 2, "s1", "repair.delta"),
            Err(EnvelopeError::BadSignature(1))
        );
    }

    #[test]
    fn a_receipt_proves_what_its_sender_signed_and_nothing_else() {
        let a = Identity::generate(1);
        let b = Identity::generate(2);
        let members = [member(&a), member(&b)];
        let at_b = EnvelopeVerifier::new(2, &members, Duration::from_secs(60)).unwrap();
        let env = Envelope::sign(&a, 2, "s1", "dkg.round1.package", b"package");
        let receipt = env.receipt().unwrap();
        let digest: [u8; 32] = Sha256::digest(b"package").into();
        let check = |r: &Receipt| at_b.check_receipt(r, 1, 2, "s1", "dkg.round1.package");
        assert_eq!(check(&receipt), Ok(digest));
        // A misquoted digest, sender or recipient fails.
        let mut misquoted = receipt.clone();
        misquoted.payload_sha256 = hex::encode(Sha256::digest(b"other"));
        assert_eq!(check(&misquoted), Err(EnvelopeError::BadSignature(1)));
        let mut moved = receipt.clone();
        moved.to = 1;
        assert!(check(&moved).is_err());
        assert!(at_b
            .check_receipt(&receipt, 1, 2, "s2", "dkg.round1.package")
            .is_err());
    }
}
