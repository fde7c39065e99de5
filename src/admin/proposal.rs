//! The coordinator's record of what it proposed and how each proposal ended, kept on disk so
//! that it answers decision queries the same way after a restart (DESIGN.md §11). A proposal
//! moves from undecided to commit or abort exactly once (compare-and-swap), so an honest
//! coordinator never signs an abort for an entry it certified, nor the reverse.

use serde::{Deserialize, Serialize};

use super::entry::{AdminEntry, Certificate};
use crate::node::Node;
use crate::store::Store;

/// How a proposal ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Still collecting votes.
    Undecided,
    Commit {
        certificate: Certificate,
    },
    /// The coordinator's signed abort of the proposal.
    Abort {
        signature: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub entry: AdminEntry,
    pub decision: Decision,
    pub at_ms: u64,
}

fn key(seq: u64, entry_hash: &str) -> Vec<u8> {
    let mut k = seq.to_be_bytes().to_vec();
    k.extend_from_slice(entry_hash.as_bytes());
    k
}

/// Records `entry` as proposed and undecided, before any prepare is sent.
pub fn propose(store: &Store, entry: &AdminEntry) -> anyhow::Result<()> {
    let proposal = Proposal {
        entry: entry.clone(),
        decision: Decision::Undecided,
        at_ms: crate::auth::now_ms(),
    };
    store.admin_proposals().insert(
        key(entry.seq, &entry.hash()),
        serde_json::to_vec(&proposal)?,
    )?;
    store.admin_proposals().flush()?;
    Ok(())
}

pub fn get(store: &Store, seq: u64, entry_hash: &str) -> anyhow::Result<Option<Proposal>> {
    match store.admin_proposals().get(key(seq, entry_hash))? {
        Some(json) => Ok(Some(serde_json::from_slice(&json)?)),
        None => Ok(None),
    }
}

/// Decides the proposal of `entry` unless it is decided already; returns the decision that
/// holds (flushed to disk before it is returned, so before anyone sees a signature of it).
/// A proposal this node has no record of never got a vote from it as coordinator, so it may
/// only be aborted.
pub fn decide(store: &Store, entry: &AdminEntry, decision: Decision) -> anyhow::Result<Decision> {
    let k = key(entry.seq, &entry.hash());
    loop {
        let current = store.admin_proposals().get(&k)?;
        let existing: Option<Proposal> = match &current {
            Some(json) => Some(serde_json::from_slice(json)?),
            None => None,
        };
        match &existing {
            Some(p) if p.decision != Decision::Undecided => return Ok(p.decision.clone()),
            None if matches!(decision, Decision::Commit { .. }) => {
                anyhow::bail!("no proposal of entry {} to commit", entry.seq)
            }
            _ => {}
        }
        let next = Proposal {
            entry: entry.clone(),
            decision: decision.clone(),
            at_ms: existing.map_or_else(crate::auth::now_ms, |p| p.at_ms),
        };
        let swapped = store.admin_proposals().compare_and_swap(
            &k,
            current,
            Some(serde_json::to_vec(&next)?),
        )?;
        if swapped.is_ok() {
            store.admin_proposals().flush()?;
            return Ok(decision);
        }
    }
}

/// Aborts `entry`'s proposal unless it was decided: signs the abort, then records it; the
/// signature is returned only if the record holds it.
pub fn abort(node: &Node, entry: &AdminEntry) -> anyhow::Result<Decision> {
    let signature = super::entry::sign_abort(&node.identity, entry.seq, &entry.hash(), node.id());
    decide(&node.store, entry, Decision::Abort { signature })
}

/// At start: a proposal left undecided by a crash can no longer gather votes; abort it so its
/// voters can release their votes.
pub fn abort_undecided(node: &Node) -> anyhow::Result<usize> {
    let mut aborted = 0;
    let pending: Vec<Proposal> = node
        .store
        .admin_proposals()
        .iter()
        .values()
        .map(|v| Ok(serde_json::from_slice::<Proposal>(&v?)?))
        .collect::<anyhow::Result<_>>()?;
    for p in pending {
        if p.decision == Decision::Undecided {
            abort(node, &p.entry)?;
            aborted += 1;
        }
    }
    Ok(aborted)
}
