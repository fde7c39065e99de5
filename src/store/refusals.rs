//! Ceremony refusals on disk (DESIGN.md §11): a durable promise never to confirm or commit a
//! ceremony, kept for as long as that ceremony could still be confirmed here and not a moment
//! less. Who decides how long is the ceremony's time window (`crate::ceremony::window`); the
//! store only keeps each promise until the instant it is given, and counts each asker's
//! promises so that one member asking for refusals of made-up ceremonies fills only its own
//! share of the table and can never push out a refusal that still matters.

use std::collections::HashMap;

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::generations::tx_error;
use super::{PendingGeneration, Store, StoreError, Tagged};

/// What became of a request to refuse a ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Promised, and remembered until its ceremony can no longer be confirmed here.
    Kept,
    /// Promised without remembering: the ceremony can no longer be confirmed here anyway.
    Closed,
    /// Not promised: the asker already holds as many live refusals as it may.
    AskerAtLimit,
}

/// The expiry index's key: refusals sorted by when they may be forgotten.
fn expiry_key(until_ms: u64, session: &str) -> Vec<u8> {
    let mut k = until_ms.to_be_bytes().to_vec();
    k.extend_from_slice(session.as_bytes());
    k
}

fn asker_of(index_value: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(index_value.get(..2)?.try_into().ok()?))
}

/// Live refusals per asker, counted from the expiry index at open.
pub(super) fn count_by_asker(expiry: &sled::Tree) -> Result<HashMap<u16, usize>, StoreError> {
    let mut counts = HashMap::new();
    for item in expiry.iter() {
        let (_, asker) = item?;
        if let Some(a) = asker_of(&asker) {
            *counts.entry(a).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

impl Store {
    /// Promises, durably, never to confirm or commit ceremony `session` of key `name`, on
    /// `asker`'s request. `until_ms` is when the ceremony can no longer be confirmed here
    /// (`None`: already so). Fails when this node already holds the ceremony's certificate
    /// or a pending result of it (then it is too late).
    pub fn refuse(
        &self,
        name: &str,
        session: &str,
        asker: u16,
        until_ms: Option<u64>,
    ) -> Result<Refused, StoreError> {
        // Held throughout, so an asker's count and its refusals on disk move together.
        let mut counts = self.refusals_by_asker.lock();
        self.forget_expired(crate::clock::now_ms(), &mut counts)?;
        if self.refusals.contains_key(session.as_bytes())? {
            return Ok(Refused::Kept);
        }
        let remembered = match until_ms {
            Some(_) if counts.get(&asker).copied().unwrap_or(0) >= self.refusals_per_asker => {
                return Ok(Refused::AskerAtLimit);
            }
            other => other,
        };
        let trees = (
            &self.refusals,
            &self.refusal_expiry,
            &self.certificates,
            &self.pending,
        );
        trees
            .transaction(|(refusals, expiry, certs, pending)| {
                if certs.get(session.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                if let Some(v) = pending.get(name.as_bytes())? {
                    let p: PendingGeneration = self
                        .read_tagged(Tagged::Pending, name.as_bytes(), &v)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    if p.statement.session == session {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                }
                if let Some(until) = remembered {
                    refusals.insert(session.as_bytes(), name.as_bytes())?;
                    expiry.insert(expiry_key(until, session), &asker.to_be_bytes())?;
                }
                Ok(())
            })
            .map_err(|e| tx_error("ceremony already confirmed here", e))?;
        let Some(_) = remembered else {
            return Ok(Refused::Closed);
        };
        *counts.entry(asker).or_insert(0) += 1;
        self.db.flush()?;
        Ok(Refused::Kept)
    }

    /// Forgets the refusals whose ceremonies can no longer be confirmed at `now_ms`.
    pub fn forget_expired_refusals(&self, now_ms: u64) -> Result<(), StoreError> {
        self.forget_expired(now_ms, &mut self.refusals_by_asker.lock())
    }

    fn forget_expired(
        &self,
        now_ms: u64,
        counts: &mut HashMap<u16, usize>,
    ) -> Result<(), StoreError> {
        let now = now_ms.to_be_bytes();
        for item in self.refusal_expiry.range(..now.as_slice()) {
            let (key, asker) = item?;
            self.refusals.remove(&key[8..])?;
            self.refusal_expiry.remove(&key)?;
            if let Some(n) = asker_of(&asker).and_then(|a| counts.get_mut(&a)) {
                *n = n.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// Refusals this node keeps.
    pub fn refusals(&self) -> usize {
        self.refusals.len()
    }

    pub fn is_refused(&self, session: &str) -> Result<bool, StoreError> {
        Ok(self.refusals.contains_key(session)?)
    }
}
