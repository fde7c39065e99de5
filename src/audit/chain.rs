//! Checking a hash chain of entries, wherever they come from: the store (from genesis or from a
//! signed checkpoint at a retention cut) or exported JSON-lines files. `Err` names the first
//! entry that breaks.

use std::collections::BTreeMap;

use api::{AuditEntry, AuditHead};

use super::{entry_hash, heads, ExportedEntry, GENESIS};
use crate::state::statement::Signers;

/// What a check of a trail found intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The last entry's seq (the checkpoint's when nothing follows it).
    pub entries: u64,
    /// The first entry checked.
    pub first: u64,
    /// Entries at the start written before trails were signed (no signature).
    pub unsigned: u64,
    /// The last entry's hash (zeros for an empty trail).
    pub last_hash: String,
    /// The signed checkpoint the check started from, when entries before it were compacted.
    pub checkpoint: Option<u64>,
}

/// Walks entries in order, each linked to the one before.
pub struct Chain<'a> {
    prev_seq: u64,
    prev_hash: String,
    first: Option<u64>,
    signer: Option<(u16, &'a Signers)>,
    signed_seen: bool,
    unsigned: u64,
}

impl<'a> Chain<'a> {
    /// A chain whose next entry is `seq + 1`, linked to `hash`.
    pub fn after(seq: u64, hash: &str, signer: Option<(u16, &'a Signers)>) -> Chain<'a> {
        Chain {
            prev_seq: seq,
            prev_hash: hash.to_string(),
            first: None,
            signer,
            // After a cut, the entries before were signed or not: either may follow.
            signed_seen: false,
            unsigned: 0,
        }
    }

    pub fn genesis(signer: Option<(u16, &'a Signers)>) -> Chain<'a> {
        Self::after(0, GENESIS, signer)
    }

    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), String> {
        let seq = entry.seq;
        let expected = self.prev_seq + 1;
        if seq != expected {
            return Err(format!(
                "entry {seq}: sequence breaks after entry {} (expected {expected})",
                self.prev_seq
            ));
        }
        if entry.prev_hash != self.prev_hash {
            return Err(format!(
                "entry {seq}: prev_hash does not match the hash of entry {}",
                self.prev_seq
            ));
        }
        if entry_hash(entry) != entry.hash {
            return Err(format!(
                "entry {seq}: contents do not match its hash (edited after it was written)"
            ));
        }
        if let Some((node, signers)) = self.signer {
            if entry.signature.is_empty() {
                if self.signed_seen {
                    return Err(format!(
                        "entry {seq}: unsigned after signed entries (signature removed)"
                    ));
                }
                self.unsigned += 1;
            } else {
                heads::verify(signers, node, seq, &entry.hash, &entry.signature).map_err(|e| {
                    format!("entry {seq}: signature does not verify ({e}): edited or forged")
                })?;
                self.signed_seen = true;
            }
        }
        self.first.get_or_insert(seq);
        self.prev_seq = seq;
        self.prev_hash = entry.hash.clone();
        Ok(())
    }

    pub fn finish(self, checkpoint: Option<u64>) -> Verified {
        Verified {
            entries: self.prev_seq,
            first: self.first.unwrap_or(self.prev_seq + 1),
            unsigned: self.unsigned,
            last_hash: self.prev_hash,
            checkpoint,
        }
    }
}

/// Checks a trail in the store: from genesis, or from its signed checkpoint when entries were
/// compacted.
pub fn verify_store(
    entries: &sled::Tree,
    checkpoint: Option<&AuditHead>,
    signer: Option<(u16, &Signers)>,
) -> Result<Verified, String> {
    if let (Some(cp), Some((node, signers))) = (checkpoint, signer) {
        heads::verify(signers, node, cp.seq, &cp.hash, &cp.signature).map_err(|e| {
            format!(
                "the checkpoint at entry {}: signature does not verify ({e}): edited or forged",
                cp.seq
            )
        })?;
    }
    let mut chain: Option<Chain> = None;
    // Entries at or before the checkpoint are ones a compaction interrupted by a crash left
    // behind (the next open removes them): the checkpoint, signed, stands for them.
    let after = checkpoint.map_or(0, |cp| cp.seq);
    for item in entries.range((after + 1).to_be_bytes()..) {
        let (key, json) = item.map_err(|e| format!("reading the trail: {e}"))?;
        let seq = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| "an entry has a malformed sequence key".to_string())?;
        let mut entry: AuditEntry = serde_json::from_slice(&json)
            .map_err(|e| format!("entry {seq}: not a valid entry ({e})"))?;
        if entry.seq != seq {
            return Err(format!("entry {seq}: stored under another sequence"));
        }
        let chain = chain.get_or_insert_with(|| match checkpoint {
            Some(cp) => Chain::after(cp.seq, &cp.hash, signer),
            None => Chain::genesis(signer),
        });
        // The stored form leaves out what the previous entry holds; the entry's hash
        // covers it, so a rewritten predecessor shows in this entry's hash.
        if entry.prev_hash.is_empty() {
            entry.prev_hash = chain.prev_hash.clone();
        }
        chain.push(&entry)?;
    }
    let chain = chain.unwrap_or_else(|| match checkpoint {
        Some(cp) => Chain::after(cp.seq, &cp.hash, signer),
        None => Chain::genesis(signer),
    });
    Ok(chain.finish(checkpoint.map(|cp| cp.seq)))
}

/// One line of an exported file, where it was read.
pub struct Line {
    pub source: String,
    pub number: usize,
    pub text: String,
}

/// Checks exported entries (from one or more files, in any order, rotated files included):
/// sorted by seq, an entry exported twice (a restart re-exports from its last recorded point)
/// counts once, two different entries at one seq are a break. A copy that does not start at
/// entry 1 is checked from its first entry on. With `signers`, every signature is checked
/// against the key of the node the lines name; `node` (when given) must be that node.
pub fn verify_exported(
    lines: impl IntoIterator<Item = Line>,
    signers: Option<&Signers>,
    node: Option<u16>,
) -> Result<(u16, Verified), String> {
    let mut by_seq: BTreeMap<u64, ExportedEntry> = BTreeMap::new();
    let mut exporter: Option<u16> = node;
    for line in lines {
        if line.text.trim().is_empty() {
            continue;
        }
        let exported: ExportedEntry = serde_json::from_str(&line.text).map_err(|e| {
            format!(
                "{} line {}: not an exported audit entry ({e})",
                line.source, line.number
            )
        })?;
        let seq = exported.entry.seq;
        match exporter {
            Some(n) if n != exported.node => {
                return Err(format!(
                    "entry {seq} ({} line {}): exported by node {}, not node {n}",
                    line.source, line.number, exported.node
                ))
            }
            _ => exporter = Some(exported.node),
        }
        match by_seq.get(&seq) {
            Some(seen) if *seen != exported => {
                return Err(format!(
                    "entry {seq} ({} line {}): two different entries with this sequence (edited or forked)",
                    line.source, line.number
                ));
            }
            Some(_) => {}
            None => {
                by_seq.insert(seq, exported);
            }
        }
    }
    let node = exporter.ok_or("no exported entries in the files")?;
    let signer = signers.map(|s| (node, s));
    let mut chain: Option<Chain> = None;
    for exported in by_seq.values() {
        let entry = &exported.entry;
        let chain = chain.get_or_insert_with(|| {
            if entry.seq == 1 {
                Chain::genesis(signer)
            } else {
                Chain::after(entry.seq - 1, &entry.prev_hash, signer)
            }
        });
        chain.push(entry)?;
    }
    let chain = chain.ok_or("no exported entries in the files")?;
    Ok((node, chain.finish(None)))
}
