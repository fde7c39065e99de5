//! The coordinator's record of what it proposed and how each proposal ended, kept on disk so
//! that it answers decision queries the same way after a restart (DESIGN.md §11). A proposal
//! moves from undecided to commit or abort exactly once (compare-and-swap), and the decision
//! is on disk before any signature of it leaves the node, so an honest coordinator never signs
//! an abort for an entry it certified, nor the reverse.

use serde::{Deserialize, Serialize};

use crate::node::Node;
use crate::state::admin_log::{AdminEntry, Certificate};
use crate::store::Store;

pub use crate::state::admin_log::Decision;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub seq: u64,
    pub entry_hash: String,
    /// Absent for an abort recorded on a query about an entry this node never proposed.
    pub entry: Option<AdminEntry>,
    pub decision: Decision,
    pub at_ms: u64,
}

fn key(seq: u64, entry_hash: &str) -> Vec<u8> {
    let mut k = seq.to_be_bytes().to_vec();
    k.extend_from_slice(entry_hash.as_bytes());
    k
}

/// Records `entry` as proposed and undecided, before any prepare is sent. Refused if this
/// (seq, entry) was ever recorded: it may have been aborted already.
pub fn propose(store: &Store, entry: &AdminEntry) -> anyhow::Result<()> {
    let proposal = Proposal {
        seq: entry.seq,
        entry_hash: entry.hash(),
        entry: Some(entry.clone()),
        decision: Decision::Undecided,
        at_ms: crate::auth::now_ms(),
    };
    let swapped = store.admin_proposals().compare_and_swap(
        key(entry.seq, &proposal.entry_hash),
        None as Option<&[u8]>,
        Some(serde_json::to_vec(&proposal)?),
    )?;
    if swapped.is_err() {
        anyhow::bail!("entry {} was proposed before", entry.seq);
    }
    store.admin_proposals().flush()?;
    Ok(())
}

pub fn get(store: &Store, seq: u64, entry_hash: &str) -> anyhow::Result<Option<Proposal>> {
    match store.admin_proposals().get(key(seq, entry_hash))? {
        Some(json) => Ok(Some(serde_json::from_slice(&json)?)),
        None => Ok(None),
    }
}

/// Decides the proposal of (seq, entry_hash) unless it is decided already; returns the
/// decision that holds, flushed to disk before it is returned. Without a record, only an
/// abort may be recorded: this node never sent prepares for it, so never certified it.
fn decide(
    store: &Store,
    seq: u64,
    entry_hash: &str,
    decision: Decision,
) -> anyhow::Result<Decision> {
    let k = key(seq, entry_hash);
    loop {
        let current = store.admin_proposals().get(&k)?;
        let existing: Option<Proposal> = match &current {
            Some(json) => Some(serde_json::from_slice(json)?),
            None => None,
        };
        match &existing {
            Some(p) if p.decision != Decision::Undecided => return Ok(p.decision.clone()),
            None if matches!(decision, Decision::Commit { .. }) => {
                anyhow::bail!("no proposal of entry {seq} to commit")
            }
            _ => {}
        }
        let next = Proposal {
            seq,
            entry_hash: entry_hash.to_string(),
            entry: existing.as_ref().and_then(|p| p.entry.clone()),
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

/// Records the certificate as the decision unless the proposal was aborted meanwhile.
pub fn commit(store: &Store, certificate: &Certificate) -> anyhow::Result<Decision> {
    decide(
        store,
        certificate.seq,
        &certificate.entry_hash,
        Decision::Commit {
            certificate: certificate.clone(),
        },
    )
}

/// Aborts the proposal of (seq, entry_hash) unless it was decided; the signature is returned
/// only once the record holds it.
pub fn abort(node: &Node, seq: u64, entry_hash: &str) -> anyhow::Result<Decision> {
    let signature = crate::state::admin_log::sign_abort(&node.identity, seq, entry_hash, node.id());
    decide(&node.store, seq, entry_hash, Decision::Abort { signature })
}

/// At start: a proposal left undecided by a crash can no longer gather votes; abort it so its
/// voters can release their votes.
pub fn abort_undecided(node: &Node) -> anyhow::Result<usize> {
    let pending: Vec<Proposal> = node
        .store
        .admin_proposals()
        .iter()
        .values()
        .map(|v| Ok(serde_json::from_slice::<Proposal>(&v?)?))
        .collect::<anyhow::Result<_>>()?;
    let mut aborted = 0;
    for p in pending.iter().filter(|p| p.decision == Decision::Undecided) {
        abort(node, p.seq, &p.entry_hash)?;
        aborted += 1;
    }
    Ok(aborted)
}
