//! Replay protection: each (client, nonce) belongs to the one operation that first used it.
//! Retries of an operation carry the same operation id, so they pass; anything else with the
//! same nonce — a replayed request, or a compromised coordinator reusing one — is refused.

use std::collections::HashMap;

use parking_lot::Mutex;

struct Claim {
    coordinator: u16,
    operation: String,
    expires_at_ms: u64,
}

#[derive(Default)]
pub struct NonceCache {
    claims: Mutex<HashMap<(String, String), Claim>>,
}

impl NonceCache {
    /// Records the nonce for this operation, or says whose it is. Entries are kept until the
    /// request they came with is too old to pass the freshness check anyway.
    pub fn claim(
        &self,
        client: &str,
        nonce: &str,
        coordinator: u16,
        operation: &str,
        expires_at_ms: u64,
    ) -> Result<(), String> {
        let mut claims = self.claims.lock();
        let now = crate::clock::now_ms();
        if claims.len() > 4096 {
            claims.retain(|_, c| c.expires_at_ms >= now);
        }
        let key = (client.to_string(), nonce.to_string());
        match claims.get(&key) {
            Some(c) if c.expires_at_ms >= now => {
                if c.coordinator == coordinator && c.operation == operation {
                    Ok(())
                } else {
                    Err(format!(
                        "replayed request: nonce {nonce} of client {client} was already used"
                    ))
                }
            }
            _ => {
                claims.insert(
                    key,
                    Claim {
                        coordinator,
                        operation: operation.to_string(),
                        expires_at_ms,
                    },
                );
                Ok(())
            }
        }
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
        assert!(cache.claim("a", "n1", 1, "op2", later).is_err());
        assert!(cache.claim("a", "n1", 2, "op", later).is_err());
        cache.claim("b", "n1", 2, "op", later).unwrap();
    }
}
