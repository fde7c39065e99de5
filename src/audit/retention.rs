//! Retention: entries past the configured age or count leave the store, and a checkpoint —
//! the chain head at the cut, signed by the node like any head (DESIGN.md §11) — stands for
//! them, so a check of the store starts from it and an exported copy joins it at its seq.
//!
//! A compaction writes the checkpoint durably first and removes entries after, so a crash in
//! between leaves entries at or before the checkpoint; they still chain up to its hash, and
//! the next open removes them.

use api::{AuditEntry, AuditHead};

/// Where the checkpoint is kept in the trail's metadata tree.
pub const CHECKPOINT: &[u8] = b"checkpoint";
/// Where the last entry known exported (durably) is kept.
pub const EXPORTED: &[u8] = b"exported";

/// Entries removed per batch.
const BATCH: usize = 1024;

#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub entries: Option<u64>,
    pub secs: Option<u64>,
}

impl Retention {
    pub fn from_settings(settings: &crate::config::AuditSettings) -> Retention {
        Retention {
            entries: settings.retain_entries,
            secs: settings.retain_secs,
        }
    }

    pub fn is_on(&self) -> bool {
        self.entries.is_some() || self.secs.is_some()
    }

    /// The last entry retention lets go of, at `now_ms`, in a trail ending at `head`: entries
    /// are kept while within every bound set (0: nothing goes).
    pub fn cut(&self, entries: &sled::Tree, head: u64, now_ms: u64) -> anyhow::Result<u64> {
        if !self.is_on() {
            return Ok(0);
        }
        let mut cut = head;
        if let Some(keep) = self.entries {
            cut = cut.min(head.saturating_sub(keep));
        }
        if let Some(secs) = self.secs {
            let before = now_ms.saturating_sub(secs.saturating_mul(1000));
            let mut last_old = 0;
            for item in entries.iter() {
                let (_, json) = item?;
                let entry: AuditEntry = serde_json::from_slice(&json)?;
                if entry.seq > cut || time_ms(&entry.time)? >= before {
                    break;
                }
                last_old = entry.seq;
            }
            cut = cut.min(last_old);
        }
        Ok(cut)
    }
}

fn time_ms(rfc3339: &str) -> anyhow::Result<u64> {
    let t = humantime::parse_rfc3339(rfc3339)?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64)
}

pub fn checkpoint(meta: &sled::Tree) -> anyhow::Result<Option<AuditHead>> {
    Ok(match meta.get(CHECKPOINT)? {
        Some(json) => Some(serde_json::from_slice(&json)?),
        None => None,
    })
}

pub fn exported(meta: &sled::Tree) -> anyhow::Result<Option<u64>> {
    Ok(match meta.get(EXPORTED)? {
        Some(v) => Some(u64::from_be_bytes(v.as_ref().try_into()?)),
        None => None,
    })
}

/// Removes every entry up to `cut`, a batch at a time. `stop_after` (a test's crash point)
/// stops after that many batches; `Ok(false)` then says entries may remain.
pub fn remove_through(
    entries: &sled::Tree,
    cut: u64,
    stop_after: Option<usize>,
) -> anyhow::Result<bool> {
    let mut batches = 0;
    loop {
        if stop_after == Some(batches) {
            entries.flush()?;
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        let mut any = false;
        for key in entries.range(..=cut.to_be_bytes()).keys().take(BATCH) {
            batch.remove(key?);
            any = true;
        }
        if !any {
            break;
        }
        entries.apply_batch(batch)?;
        batches += 1;
    }
    entries.flush()?;
    Ok(true)
}
