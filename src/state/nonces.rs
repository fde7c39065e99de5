//! Replay protection: each (client, nonce) belongs to the one operation that first used it.
//! Retries of an operation carry the same operation id, so they pass; anything else with the
//! same nonce — a replayed request, or a compromised coordinator reusing one — is refused.
//!
//! The cache is bounded: a claim leaves when its request is too old to pass the freshness check
//! anyway, and when the cache is full of live claims the ones expiring first leave early. The
//! node then refuses, as stale, every request that does not expire later than the last claim it
//! dropped, so a dropped nonce can never be replayed: under a flood, the freshness window
//! narrows instead of the protection.

use std::collections::{BTreeSet, HashMap};

use parking_lot::Mutex;

struct Claim {
    coordinator: u16,
    operation: String,
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The nonce belongs to another operation.
    Replayed(String),
    /// The request is no newer than claims the full cache dropped: sign it again.
    Stale(String),
}

type Key = (String, String);

#[derive(Default)]
struct Claims {
    by_key: HashMap<Key, Claim>,
    /// (expiry, key) of every claim: the order they leave in.
    by_expiry: BTreeSet<(u64, Key)>,
    /// The latest expiry of a live claim dropped because the cache was full.
    dropped_up_to_ms: u64,
}

pub struct NonceCache {
    capacity: usize,
    claims: Mutex<Claims>,
}

impl Default for NonceCache {
    fn default() -> Self {
        NonceCache::new(crate::config::Limits::default().replay_cache_entries)
    }
}

impl NonceCache {
    pub fn new(capacity: usize) -> NonceCache {
        NonceCache {
            capacity: capacity.max(1),
            claims: Mutex::default(),
        }
    }

    /// Claims held now.
    pub fn len(&self) -> usize {
        self.claims.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the nonce for this operation, or says why not. A claim is kept until
    /// `expires_at_ms`, when its request is too old to pass the freshness check anyway.
    pub fn claim(
        &self,
        client: &str,
        nonce: &str,
        coordinator: u16,
        operation: &str,
        expires_at_ms: u64,
    ) -> Result<(), Refused> {
        let mut claims = self.claims.lock();
        let now = crate::clock::now_ms();
        while let Some(first) = claims.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            let (_, key) = claims.by_expiry.pop_first().expect("just seen");
            claims.by_key.remove(&key);
        }
        let key = (client.to_string(), nonce.to_string());
        if let Some(c) = claims.by_key.get(&key) {
            return if c.coordinator == coordinator && c.operation == operation {
                Ok(())
            } else {
                Err(Refused::Replayed(format!(
                    "replayed request: nonce {nonce} of client {client} was already used"
                )))
            };
        }
        if expires_at_ms <= claims.dropped_up_to_ms {
            return Err(Refused::Stale(
                "the node's replay cache is full: requests this old are refused; sign it again"
                    .into(),
            ));
        }
        while claims.by_key.len() >= self.capacity {
            let Some((expiry, dropped)) = claims.by_expiry.pop_first() else {
                break;
            };
            claims.by_key.remove(&dropped);
            claims.dropped_up_to_ms = claims.dropped_up_to_ms.max(expiry);
        }
        if expires_at_ms <= claims.dropped_up_to_ms {
            return Err(Refused::Stale(
                "the node's replay cache is full: requests this old are refused; sign it again"
                    .into(),
            ));
        }
        claims.by_expiry.insert((expires_at_ms, key.clone()));
        claims.by_key.insert(
            key,
            Claim {
                coordinator,
                operation: operation.to_string(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_serves_one_operation_only() {
        let cache = NonceCache::default();
        let later = crate::clock::now_ms() + 60_000;
        cache.claim("a", "n1", 1, "op", later).unwrap();
        cache.claim("a", "n1", 1, "op", later).unwrap();
        assert!(matches!(
            cache.claim("a", "n1", 1, "op2", later),
            Err(Refused::Replayed(_))
        ));
        assert!(cache.claim("a", "n1", 2, "op", later).is_err());
        cache.claim("b", "n1", 2, "op", later).unwrap();
    }

    #[test]
    fn a_full_cache_drops_the_oldest_claims_and_refuses_requests_as_old() {
        let cache = NonceCache::new(16);
        let base = crate::clock::now_ms() + 60_000;
        for i in 0..40u64 {
            cache
                .claim("a", &format!("n{i}"), 1, "op", base + i)
                .unwrap();
            assert!(cache.len() <= 16);
        }
        assert_eq!(cache.len(), 16);
        // n0 was dropped: replaying it is refused as stale, not accepted.
        assert!(matches!(
            cache.claim("a", "n0", 1, "other", base),
            Err(Refused::Stale(_))
        ));
        // Every request no newer than the dropped claims is refused; a kept nonce is still
        // a replay; a newer request passes.
        assert!(matches!(
            cache.claim("b", "fresh", 1, "op", base + 23),
            Err(Refused::Stale(_))
        ));
        assert!(matches!(
            cache.claim("a", "n39", 1, "other", base + 39),
            Err(Refused::Replayed(_))
        ));
        cache.claim("b", "fresh", 1, "op", base + 100).unwrap();
        assert_eq!(cache.len(), 16);
        // Expired claims leave without narrowing anything.
        let expired = NonceCache::new(16);
        let past = crate::clock::now_ms() - 1;
        for i in 0..40 {
            expired.claim("a", &format!("n{i}"), 1, "op", past).unwrap();
        }
        assert_eq!(expired.len(), 1);
    }
}
