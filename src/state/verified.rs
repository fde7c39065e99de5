//! Client signatures this node has already verified. A coordinator checks a client's request
//! when it arrives and then, as a participant of the same operation, checks it again: the
//! second Ed25519 verification of identical bytes would prove nothing new. Each participant
//! still verifies for itself (nothing here is shared between nodes), and only a signature that
//! verified is remembered, by a digest of everything the verification depended on.

use std::collections::{HashSet, VecDeque};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// Most fingerprints remembered; the oldest go first. Retries of one operation and its
/// participant check follow the coordinator's within milliseconds, so a short memory suffices.
const CAPACITY: usize = 4096;

/// What one signature check took as input: the key, the signed fields and the signature.
pub struct SignedInput<'a> {
    pub public_key: &'a [u8; 32],
    /// The canonical message's fields, in order (method, path, client, node, …).
    pub fields: &'a [&'a [u8]],
    pub body: &'a [u8],
    pub signature: &'a str,
}

impl SignedInput<'_> {
    /// SHA-256 over every input, length-prefixed so that no two inputs share an encoding.
    fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keyquorum/verified-client-signature/v1\0");
        h.update(self.public_key);
        for field in self.fields {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        h.update(Sha256::digest(self.body));
        h.update((self.signature.len() as u64).to_be_bytes());
        h.update(self.signature.as_bytes());
        h.finalize().into()
    }
}

#[derive(Default)]
struct Memo {
    seen: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

/// Fingerprints of client signatures that verified at this node.
#[derive(Default)]
pub struct VerifiedSignatures(Mutex<Memo>);

impl VerifiedSignatures {
    /// Runs `verify` unless this exact input verified here before; remembers it if it passes.
    pub fn check<E>(
        &self,
        input: &SignedInput<'_>,
        verify: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let fingerprint = input.fingerprint();
        if self.0.lock().seen.contains(&fingerprint) {
            return Ok(());
        }
        verify()?;
        let mut memo = self.0.lock();
        if memo.seen.insert(fingerprint) {
            memo.order.push_back(fingerprint);
            if memo.order.len() > CAPACITY {
                if let Some(oldest) = memo.order.pop_front() {
                    memo.seen.remove(&oldest);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn input<'a>(key: &'a [u8; 32], fields: &'a [&'a [u8]], sig: &'a str) -> SignedInput<'a> {
        SignedInput {
            public_key: key,
            fields,
            body: b"{}",
            signature: sig,
        }
    }

    #[test]
    fn only_a_signature_that_verified_is_skipped_and_only_for_identical_input() {
        let memo = VerifiedSignatures::default();
        let calls = Cell::new(0);
        let pass = || {
            calls.set(calls.get() + 1);
            Ok::<(), ()>(())
        };
        let key = [7u8; 32];
        let fields: &[&[u8]] = &[b"POST", b"/v1/keys/k/sign"];
        // A failure is not remembered: the next check verifies again.
        assert!(memo.check(&input(&key, fields, "aa"), || Err(())).is_err());
        assert!(memo.check(&input(&key, fields, "aa"), || Err(())).is_err());
        memo.check(&input(&key, fields, "aa"), pass).unwrap();
        memo.check(&input(&key, fields, "aa"), pass).unwrap();
        assert_eq!(calls.get(), 1);
        // Another key, field, field split or signature is another input.
        let other_key = [8u8; 32];
        memo.check(&input(&other_key, fields, "aa"), pass).unwrap();
        let split: &[&[u8]] = &[b"POST/", b"v1/keys/k/sign"];
        memo.check(&input(&key, split, "aa"), pass).unwrap();
        memo.check(&input(&key, fields, "ab"), pass).unwrap();
        assert_eq!(calls.get(), 4);
        assert!(memo
            .check(&input(&key, &[b"POST", b"/v1/keys/j/sign"], "aa"), || Err(
                ()
            ))
            .is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let memo = VerifiedSignatures::default();
        let key = [1u8; 32];
        for i in 0..(CAPACITY + 10) {
            let sig = format!("{i}");
            memo.check(&input(&key, &[], &sig), || Ok::<(), ()>(()))
                .unwrap();
        }
        let inner = memo.0.lock();
        assert_eq!(inner.seen.len(), CAPACITY);
        assert_eq!(inner.order.len(), CAPACITY);
        // The oldest went first.
        drop(inner);
        let calls = Cell::new(0);
        memo.check(&input(&key, &[], "0"), || {
            calls.set(1);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(calls.get(), 1);
    }
}
