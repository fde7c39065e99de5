//! The votes this node signed and has not yet seen decided, kept on disk (DESIGN.md §11: a
//! node signs at most one entry per seq and persists that before it signs). A vote is
//! released only with evidence: the seq's certificate, or its coordinator's signed abort.

use serde::{Deserialize, Serialize};

use crate::state::admin_log::AdminEntry;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub entry: AdminEntry,
    pub coordinator: u16,
    /// Wall-clock milliseconds when signed: an old vote makes the node ask its coordinator.
    pub at_ms: u64,
}

impl Vote {
    /// Whether this vote is for exactly `entry` from `coordinator`.
    pub fn is_for(&self, entry_hash: &str, coordinator: u16) -> bool {
        self.coordinator == coordinator && self.entry.hash() == entry_hash
    }
}

/// The vote held at `seq`, if any. An unreadable record is treated as held for nothing
/// readable: it still blocks another vote at that seq until released.
pub fn held(store: &Store, seq: u64) -> anyhow::Result<Option<Vote>> {
    match store.admin_votes().get(seq.to_be_bytes())? {
        Some(json) => Ok(Some(serde_json::from_slice(&json)?)),
        None => Ok(None),
    }
}

/// Persists the vote (flushed) before its signature leaves the node.
pub fn hold(store: &Store, vote: &Vote) -> anyhow::Result<()> {
    store
        .admin_votes()
        .insert(vote.entry.seq.to_be_bytes(), serde_json::to_vec(vote)?)?;
    store.admin_votes().flush()?;
    Ok(())
}

fn abort_key(seq: u64, entry_hash: &str) -> Vec<u8> {
    let mut key = seq.to_be_bytes().to_vec();
    key.extend_from_slice(entry_hash.as_bytes());
    key
}

/// The signed abort of `vote`'s entry by its coordinator, kept (before the vote goes) as
/// evidence against any certificate of that entry the same coordinator shows later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aborted {
    pub coordinator: u16,
    pub signature: String,
}

/// Releases `vote` on its coordinator's abort, keeping the abort first.
pub fn release_aborted(store: &Store, vote: &Vote, signature: &str) -> anyhow::Result<()> {
    let aborted = Aborted {
        coordinator: vote.coordinator,
        signature: signature.to_string(),
    };
    store.admin_aborts().insert(
        abort_key(vote.entry.seq, &vote.entry.hash()),
        serde_json::to_vec(&aborted)?,
    )?;
    store.admin_aborts().flush()?;
    release(store, vote.entry.seq)
}

/// The abort this node released a vote on, for entry `entry_hash` at `seq`.
pub fn aborted(store: &Store, seq: u64, entry_hash: &str) -> anyhow::Result<Option<Aborted>> {
    match store.admin_aborts().get(abort_key(seq, entry_hash))? {
        Some(json) => Ok(Some(serde_json::from_slice(&json)?)),
        None => Ok(None),
    }
}

pub fn release(store: &Store, seq: u64) -> anyhow::Result<()> {
    store.admin_votes().remove(seq.to_be_bytes())?;
    store.admin_votes().flush()?;
    Ok(())
}

/// Releases every vote at or below `seq`: those positions are decided.
pub fn release_through(store: &Store, seq: u64) -> anyhow::Result<()> {
    let decided: Vec<sled::IVec> = store
        .admin_votes()
        .range(..=seq.to_be_bytes())
        .keys()
        .collect::<Result<_, _>>()?;
    for key in decided {
        store.admin_votes().remove(key)?;
    }
    Ok(())
}

/// Every vote held, oldest seq first.
pub fn all(store: &Store) -> anyhow::Result<Vec<Vote>> {
    store
        .admin_votes()
        .iter()
        .values()
        .map(|v| Ok(serde_json::from_slice(&v?)?))
        .collect()
}
