//! The audit trail: an append-only, hash-chained log of every ceremony, signing, decryption,
//! policy and client change this node took part in. Each entry's hash covers the entry and the
//! previous entry's hash, so editing or removing one breaks every link after it. Entries name
//! clients, keys and hashes of what was processed, never a secret or a plaintext.

pub mod cap;
pub mod chain;
pub mod export;
pub mod heads;
pub mod retention;

use api::{AuditEntry, AuditHead};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use chain::Verified;

use crate::identity::Identity;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry says; the trail adds sequence, time and hashes.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub client: Option<String>,
    pub action: &'static str,
    pub key: Option<String>,
    pub role: &'static str,
    pub details: serde_json::Value,
    pub outcome: &'static str,
    pub culprits: Vec<u16>,
}

/// One line of an exported trail: the entry as stored, and the node whose trail it is (whose
/// identity key signed it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedEntry {
    pub node: u16,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The trees a trail lives in.
pub struct Trees {
    /// Big-endian seq → JSON entry.
    pub entries: sled::Tree,
    /// The peers' latest signed heads.
    pub peer_heads: sled::Tree,
    /// The retention checkpoint and the export's durable position.
    pub meta: sled::Tree,
}

pub struct Audit {
    tree: sled::Tree,
    meta: sled::Tree,
    /// Signs every entry's (seq, hash): the node's identity key.
    identity: Identity,
    /// The latest signed heads of the peers.
    pub peers: heads::PeerHeads,
    /// (last sequence, last hash): appends are serialised so the chain never forks.
    head: Mutex<(u64, String)>,
    /// Where entries are streamed as they are written; `None` when export is off.
    export: Option<export::Exporter>,
    retention: retention::Retention,
}

/// An entry as stored: without `prev_hash`, which is the previous entry's `hash` (kept once,
/// not twice; the entry's own hash still covers it, so the chain is as strong). Entries
/// written before this form keep theirs, and a stored `prev_hash` is taken as it is.
fn stored_form(entry: &AuditEntry) -> anyhow::Result<Vec<u8>> {
    let mut compact = entry.clone();
    compact.prev_hash.clear();
    Ok(serde_json::to_vec(&compact)?)
}

/// Reads a stored entry, its `prev_hash` given by `prev` when the stored form left it out.
fn read_stored(
    json: &[u8],
    prev: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<AuditEntry> {
    let mut entry: AuditEntry = serde_json::from_slice(json)?;
    if entry.prev_hash.is_empty() {
        entry.prev_hash = prev()?;
    }
    Ok(entry)
}

/// The hash of an entry: SHA-256 over its JSON with `hash` and `signature` empty.
pub fn entry_hash(entry: &AuditEntry) -> String {
    let mut unhashed = entry.clone();
    unhashed.hash.clear();
    unhashed.signature.clear();
    let json = serde_json::to_vec(&unhashed).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores the entries of the export file at `path` that follow `head`, each checked to be
/// this node's own (its signature) and linked to the one before; returns the new head.
fn restore_from_export(
    tree: &sled::Tree,
    identity: &Identity,
    path: &std::path::Path,
    head: (u64, String),
) -> anyhow::Result<(u64, String)> {
    let (mut seq, mut hash) = head;
    for exported in export::tail_after(path, seq) {
        let entry = exported.entry;
        let own = exported.node == identity.id
            && entry.seq == seq + 1
            && entry.prev_hash == hash
            && entry_hash(&entry) == entry.hash
            && heads::sign(identity, entry.seq, &entry.hash) == entry.signature;
        if !own {
            // Not a continuation of this trail: left for `audit verify --file` to report.
            break;
        }
        tree.insert(entry.seq.to_be_bytes(), stored_form(&entry)?)?;
        tracing::warn!(
            seq = entry.seq,
            "audit entry restored from the export: the store had lost it"
        );
        (seq, hash) = (entry.seq, entry.hash);
    }
    tree.flush()?;
    Ok((seq, hash))
}

impl Audit {
    /// Opens the trail in `trees`; `identity` signs entries. Finishes a compaction a crash
    /// interrupted, and exports what was stored but not yet exported.
    pub fn open(
        trees: Trees,
        identity: Identity,
        settings: &crate::config::AuditSettings,
    ) -> anyhow::Result<Audit> {
        let Trees {
            entries: tree,
            peer_heads,
            meta,
        } = trees;
        let checkpoint = retention::checkpoint(&meta)?;
        if let Some(cp) = &checkpoint {
            retention::remove_through(&tree, cp.seq, None)?;
        }
        let head = match (tree.last()?, &checkpoint) {
            (Some((_, json)), _) => {
                let last: AuditEntry = serde_json::from_slice(&json)?;
                (last.seq, last.hash)
            }
            (None, Some(cp)) => (cp.seq, cp.hash.clone()),
            (None, None) => (0, GENESIS.to_string()),
        };
        // Killed within the store's flush interval, the node may have lost its last entries
        // while the export file holds them: they come back from its own signed copy, so the
        // copy and the store never hold two different entries at one seq.
        let head = match &settings.export_file {
            Some(path) => restore_from_export(&tree, &identity, path, head)?,
            None => head,
        };
        let compacted = checkpoint.as_ref().map_or(0, |cp| cp.seq);
        // Never exported before: the whole stored trail is exported now. The file itself knows
        // how far it got since the point last recorded.
        let in_file = settings
            .export_file
            .as_deref()
            .filter(|_| !settings.export_stdout)
            .and_then(export::last_in_file);
        let exported = retention::exported(&meta)?
            .unwrap_or(0)
            .max(in_file.unwrap_or(0))
            .max(compacted)
            .min(head.0);
        let export = export::Exporter::open(identity.id, settings, exported)?;
        let audit = Audit {
            tree,
            meta,
            identity,
            peers: heads::PeerHeads::new(peer_heads),
            head: Mutex::new(head),
            export,
            retention: retention::Retention::from_settings(settings),
        };
        if let Some(export) = &audit.export {
            audit.catch_up(export)?;
            audit.record_exported(export)?;
        }
        Ok(audit)
    }

    /// Exports the entries stored after the last one exported.
    fn catch_up(&self, export: &export::Exporter) -> anyhow::Result<()> {
        let from = export.exported() + 1;
        let mut prev: Option<String> = None;
        for item in self.tree.range(from.to_be_bytes()..) {
            let json = item?.1;
            let entry = read_stored(&json, || match prev.take() {
                Some(p) => Ok(p),
                None => self.hash_before(from),
            })?;
            prev = Some(entry.hash.clone());
            export.write(&entry)?;
        }
        Ok(())
    }

    /// Makes the export durable and records how far it reached: what retention may remove.
    fn record_exported(&self, export: &export::Exporter) -> anyhow::Result<u64> {
        let exported = export.sync()?;
        self.meta
            .insert(retention::EXPORTED, &exported.to_be_bytes())?;
        self.meta.flush()?;
        Ok(exported)
    }

    /// Appends an entry, and exports it when export is on. Called before the answer of the
    /// operation leaves the node: an `Err` means the operation must not answer.
    pub fn append(&self, record: Record) -> anyhow::Result<u64> {
        let mut head = self.head.lock();
        if let Some(export) = &self.export {
            if export.exported() < head.0 {
                self.catch_up(export)?;
            }
        }
        let mut entry = AuditEntry {
            seq: head.0 + 1,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            prev_hash: head.1.clone(),
            client: record.client.map(cap::text),
            action: record.action.to_string(),
            key: record.key.map(cap::text),
            role: record.role.to_string(),
            details: cap::json(record.details),
            outcome: record.outcome.to_string(),
            culprits: record.culprits,
            hash: String::new(),
            signature: String::new(),
        };
        entry.hash = entry_hash(&entry);
        entry.signature = heads::sign(&self.identity, entry.seq, &entry.hash);
        self.tree
            .insert(entry.seq.to_be_bytes(), stored_form(&entry)?)?;
        *head = (entry.seq, entry.hash.clone());
        // Stored, so the chain moves on even if the export fails; the export catches up
        // before the next entry.
        if let Some(export) = &self.export {
            export.write(&entry)?;
        }
        Ok(head.0)
    }

    /// This node's signed head: its last entry's seq and hash.
    pub fn head(&self) -> AuditHead {
        let (seq, hash) = self.head.lock().clone();
        AuditHead {
            node: self.identity.id,
            seq,
            signature: heads::sign(&self.identity, seq, &hash),
            hash,
        }
    }

    /// This node's signed head at entry `seq`, if the trail holds it. For an entry compacted
    /// away, the checkpoint that stands for it: its seq tells the asker which.
    pub fn head_at(&self, seq: u64) -> anyhow::Result<Option<AuditHead>> {
        let Some(json) = self.tree.get(seq.to_be_bytes())? else {
            return Ok(self.checkpoint()?.filter(|cp| seq <= cp.seq));
        };
        let entry: AuditEntry = serde_json::from_slice(&json)?;
        Ok(Some(AuditHead {
            node: self.identity.id,
            seq,
            signature: heads::sign(&self.identity, seq, &entry.hash),
            hash: entry.hash,
        }))
    }

    /// The signed head at the last retention cut, if entries were compacted.
    pub fn checkpoint(&self) -> anyhow::Result<Option<AuditHead>> {
        retention::checkpoint(&self.meta)
    }

    /// The last entry written to the export, when export is on.
    pub fn exported(&self) -> Option<u64> {
        self.export.as_ref().map(|e| e.exported())
    }

    /// The export, for tests that make it fail.
    #[doc(hidden)]
    pub fn exporter(&self) -> Option<&export::Exporter> {
        self.export.as_ref()
    }

    /// Applies retention at `now_ms`: removes the entries it lets go of that were exported
    /// (when export is on), after a signed checkpoint at the cut is stored. Returns the new
    /// cut, if it moved.
    pub fn compact(&self, now_ms: u64) -> anyhow::Result<Option<u64>> {
        self.compact_until_crash(now_ms, None)
    }

    /// [`Audit::compact`] with a crash point for tests: stops after `stop_after` batches of
    /// removals, as a node killed mid-compaction would.
    #[doc(hidden)]
    pub fn compact_until_crash(
        &self,
        now_ms: u64,
        stop_after: Option<usize>,
    ) -> anyhow::Result<Option<u64>> {
        let exported = match &self.export {
            Some(export) => self.record_exported(export)?,
            None => u64::MAX,
        };
        if !self.retention.is_on() {
            return Ok(None);
        }
        let head = self.head.lock().0;
        let cut = self.retention.cut(&self.tree, head, now_ms)?.min(exported);
        let compacted = self.checkpoint()?.map_or(0, |cp| cp.seq);
        if cut <= compacted {
            return Ok(None);
        }
        let Some(json) = self.tree.get(cut.to_be_bytes())? else {
            anyhow::bail!("audit entry {cut} is missing: the trail cannot be compacted");
        };
        let entry: AuditEntry = serde_json::from_slice(&json)?;
        let checkpoint = AuditHead {
            node: self.identity.id,
            seq: cut,
            signature: heads::sign(&self.identity, cut, &entry.hash),
            hash: entry.hash,
        };
        // Durable before anything it stands for is removed.
        self.meta
            .insert(retention::CHECKPOINT, serde_json::to_vec(&checkpoint)?)?;
        self.meta.flush()?;
        retention::remove_through(&self.tree, cut, stop_after)?;
        Ok(Some(cut))
    }

    /// Up to `limit` entries after sequence `after`.
    pub fn page(&self, after: u64, limit: usize) -> anyhow::Result<Vec<AuditEntry>> {
        // Nothing comes after the last possible sequence number.
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        // Entries at or before the checkpoint are leftovers of an interrupted compaction.
        let first = first.max(self.checkpoint()?.map_or(0, |cp| cp.seq + 1));
        let mut page: Vec<AuditEntry> = Vec::new();
        for item in self.tree.range(first.to_be_bytes()..).take(limit) {
            let (key, json) = item?;
            let seq = u64::from_be_bytes(key.as_ref().try_into()?);
            let entry = read_stored(&json, || match page.last() {
                Some(p) => Ok(p.hash.clone()),
                None => self.hash_before(seq),
            })?;
            page.push(entry);
        }
        Ok(page)
    }

    /// The hash of the entry before `seq`: stored, or the checkpoint's, or genesis.
    fn hash_before(&self, seq: u64) -> anyhow::Result<String> {
        if seq <= 1 {
            return Ok(GENESIS.to_string());
        }
        if let Some(json) = self.tree.get((seq - 1).to_be_bytes())? {
            let entry: AuditEntry = serde_json::from_slice(&json)?;
            return Ok(entry.hash);
        }
        match self.checkpoint()? {
            Some(cp) if cp.seq == seq - 1 => Ok(cp.hash),
            _ => anyhow::bail!("audit entry {} is missing", seq - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chain::{verify_exported, verify_store, Line};
    use super::*;
    use crate::config::AuditSettings;
    use crate::state::statement::Signers;

    struct Trail {
        db: sled::Db,
        audit: Audit,
        signers: Signers,
    }

    /// One key for every open of a test's trail, kept beside its database as a node keeps it.
    fn identity(db: &std::path::Path) -> Identity {
        let path = db.parent().unwrap().join("identity.json");
        if !path.exists() {
            Identity::generate(1).save(&path).unwrap();
        }
        Identity::load(&path).unwrap()
    }

    fn open(dir: &std::path::Path, settings: &AuditSettings) -> Trail {
        // sled's flusher lets go of a dropped database's lock a moment later.
        let mut tries = 0;
        let db = loop {
            match sled::open(dir) {
                Ok(db) => break db,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let me = identity(dir);
        let member = crate::config::Member {
            id: 1,
            name: "node-1".into(),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: me.sign_public_hex(),
            seal_public_key: me.seal_public_hex(),
        };
        let trees = Trees {
            entries: db.open_tree("audit").unwrap(),
            peer_heads: db.open_tree("audit_heads").unwrap(),
            meta: db.open_tree("audit_meta").unwrap(),
        };
        Trail {
            audit: Audit::open(trees, me, settings).unwrap(),
            signers: Signers::new(&[member]).unwrap(),
            db,
        }
    }

    impl Trail {
        fn append(&self, n: usize) {
            for _ in 0..n {
                self.audit.append(sign_record()).unwrap();
            }
        }
        fn tree(&self) -> sled::Tree {
            self.db.open_tree("audit").unwrap()
        }
        fn verify(&self) -> Result<Verified, String> {
            verify_store(
                &self.tree(),
                self.audit.checkpoint().unwrap().as_ref(),
                Some((1, &self.signers)),
            )
        }
        fn stored(&self) -> Vec<u64> {
            self.audit
                .page(0, usize::MAX)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        }
    }

    fn sign_record() -> Record {
        Record {
            action: "sign",
            role: "coordinator",
            outcome: "ok",
            ..Default::default()
        }
    }

    fn lines_of(paths: &[std::path::PathBuf]) -> Vec<Line> {
        paths
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .enumerate()
                    .map(|(i, l)| Line {
                        source: p.display().to_string(),
                        number: i + 1,
                        text: l.to_string(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn an_edited_or_removed_entry_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let t = open(&dir.path().join("db"), &AuditSettings::default());
        t.append(3);
        let tree = t.tree();
        let verify = |signed: bool| {
            let signer = Some((1, &t.signers)).filter(|_| signed);
            verify_store(&tree, None, signer)
        };
        assert_eq!(verify(true).unwrap().entries, 3);
        assert_eq!(verify(true).unwrap().unsigned, 0);
        let mut second: AuditEntry =
            serde_json::from_slice(&tree.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        second.outcome = "denied".into();
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&second).unwrap())
            .unwrap();
        assert!(verify(false).unwrap_err().starts_with("entry 2: contents"));
        // Stored without what entry 1 holds: an editor rehashing it must put it back.
        assert!(second.prev_hash.is_empty());
        second.prev_hash = t.audit.page(0, 1).unwrap()[0].hash.clone();
        second.hash = entry_hash(&second);
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&second).unwrap())
            .unwrap();
        // Rehashed, its old signature no longer covers it, and entry 3's hash covers the old
        // hash of entry 2.
        assert!(verify(true).unwrap_err().starts_with("entry 2: signature"));
        assert!(verify(false).unwrap_err().starts_with("entry 3: contents"));
        // A predecessor's hash is stored once: entries after the first link to it.
        let page = t.audit.page(0, 10).unwrap();
        assert_eq!(page[2].prev_hash, page[1].hash);
        assert!(verify(false).is_err());
        tree.remove(2u64.to_be_bytes()).unwrap();
        assert!(verify(false).unwrap_err().starts_with("entry 3: sequence"));
    }

    #[test]
    fn retention_by_count_keeps_verification_across_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let settings = AuditSettings {
            retain_entries: Some(3),
            ..Default::default()
        };
        let t = open(&dir.path().join("db"), &settings);
        t.append(10);
        assert_eq!(t.audit.compact(crate::clock::now_ms()).unwrap(), Some(7));
        assert_eq!(t.stored(), [8, 9, 10]);
        let v = t.verify().unwrap();
        assert_eq!((v.checkpoint, v.first, v.entries), (Some(7), 8, 10));
        // Nothing more to let go of until more is written.
        assert_eq!(t.audit.compact(crate::clock::now_ms()).unwrap(), None);
        t.append(2);
        assert_eq!(t.audit.compact(crate::clock::now_ms()).unwrap(), Some(9));
        assert_eq!(t.verify().unwrap().entries, 12);
        // A peer asking for a compacted entry is shown the checkpoint that stands for it.
        let at = t.audit.head_at(3).unwrap().unwrap();
        assert_eq!(at.seq, 9);
        assert!(t.audit.head_at(13).unwrap().is_none());
        // The checkpoint is evidence: edited, it no longer verifies, and an entry after it
        // must link to its hash.
        let meta = t.db.open_tree("audit_meta").unwrap();
        let mut cp = t.audit.checkpoint().unwrap().unwrap();
        cp.hash = "ab".repeat(32);
        meta.insert(retention::CHECKPOINT, serde_json::to_vec(&cp).unwrap())
            .unwrap();
        let e = t.verify().unwrap_err();
        assert!(e.starts_with("the checkpoint at entry 9"), "{e}");
        let e = verify_store(&t.tree(), Some(&cp), None).unwrap_err();
        assert!(e.starts_with("entry 10: contents"), "{e}");
    }

    #[test]
    fn retention_by_age_lets_go_only_of_old_entries() {
        let dir = tempfile::tempdir().unwrap();
        let settings = AuditSettings {
            retain_secs: Some(60),
            ..Default::default()
        };
        let t = open(&dir.path().join("db"), &settings);
        t.append(4);
        let now = crate::clock::now_ms();
        assert_eq!(t.audit.compact(now).unwrap(), None);
        assert_eq!(t.audit.compact(now + 120_000).unwrap(), Some(4));
        assert!(t.stored().is_empty());
        // The head survives in the checkpoint: the chain continues from it, after a restart too.
        drop(t);
        let t = open(&dir.path().join("db"), &settings);
        assert_eq!(t.audit.head().seq, 4);
        t.append(1);
        let v = t.verify().unwrap();
        assert_eq!((v.checkpoint, v.entries), (Some(4), 5));
    }

    #[test]
    fn nothing_unexported_is_compacted_and_the_export_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export/audit.jsonl");
        let settings = AuditSettings {
            export_file: Some(file.clone()),
            retain_entries: Some(0),
            ..Default::default()
        };
        let t = open(&dir.path().join("db"), &settings);
        t.append(5);
        let export = t.audit.exporter().unwrap();
        export.set_failing(true);
        // The trail cannot be fully written: the operation must not answer.
        assert!(t.audit.append(sign_record()).is_err());
        assert!(t.audit.append(sign_record()).is_err());
        assert_eq!(t.audit.exported(), Some(5));
        assert_eq!(t.audit.compact(crate::clock::now_ms()).unwrap(), Some(5));
        assert_eq!(t.stored(), [6]);
        export.set_failing(false);
        t.append(1);
        assert_eq!(t.audit.exported(), Some(7));
        assert_eq!(t.audit.compact(crate::clock::now_ms()).unwrap(), Some(7));
        assert!(t.stored().is_empty());
        let (node, v) = verify_exported(lines_of(&[file]), Some(&t.signers), None).unwrap();
        assert_eq!((node, v.first, v.entries), (1, 1, 7));
    }

    #[test]
    fn entries_the_store_lost_in_a_crash_come_back_from_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let settings = AuditSettings {
            export_file: Some(file.clone()),
            ..Default::default()
        };
        let db_dir = dir.path().join("db");
        let lose = |seqs: &[u64]| {
            let t = open(&db_dir, &AuditSettings::default());
            for seq in seqs {
                t.tree().remove(seq.to_be_bytes()).unwrap();
            }
            t.db.flush().unwrap();
        };
        let t = open(&db_dir, &settings);
        t.append(5);
        drop(t);
        // Killed before the store flushed its last two entries; the export had them.
        lose(&[4, 5]);
        let t = open(&db_dir, &settings);
        assert_eq!(t.audit.head().seq, 5);
        assert_eq!(t.stored(), [1, 2, 3, 4, 5]);
        t.append(1);
        assert_eq!(t.verify().unwrap().entries, 6);
        let (_, v) = verify_exported(
            lines_of(std::slice::from_ref(&file)),
            Some(&t.signers),
            None,
        )
        .unwrap();
        assert_eq!(v.entries, 6);
        drop(t);
        // A line edited in the copy is not taken back: the store continues without it, and
        // the copy then shows two different entries at that seq.
        lose(&[6]);
        let text = std::fs::read_to_string(&file).unwrap();
        let last = text.lines().last().unwrap();
        std::fs::write(
            &file,
            text.replace(last, &last.replace("\"ok\"", "\"denied\"")),
        )
        .unwrap();
        let t = open(&db_dir, &settings);
        assert_eq!(t.audit.head().seq, 5);
        t.append(1);
        let e = verify_exported(lines_of(&[file]), None, None).unwrap_err();
        assert!(e.starts_with("entry 6"), "{e}");
    }

    #[test]
    fn a_restart_in_the_middle_of_a_compaction_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = AuditSettings {
            retain_entries: Some(10),
            ..Default::default()
        };
        let t = open(&dir.path().join("db"), &settings);
        t.append(2600);
        // Crash after the checkpoint and one batch of removals, then after the checkpoint
        // alone: what is left before the cut still chains up to it.
        let cut = t
            .audit
            .compact_until_crash(crate::clock::now_ms(), Some(1))
            .unwrap();
        assert_eq!(cut, Some(2590));
        let left: Vec<u64> = t
            .tree()
            .iter()
            .keys()
            .map(|k| u64::from_be_bytes(k.unwrap().as_ref().try_into().unwrap()))
            .collect();
        assert_eq!((left[0], left.len()), (1025, 2600 - 1024));
        assert_eq!(t.stored(), (2591..=2600).collect::<Vec<_>>());
        assert_eq!(t.verify().unwrap().entries, 2600);
        drop(t);
        let t = open(&dir.path().join("db"), &settings);
        assert_eq!(t.stored(), (2591..=2600).collect::<Vec<_>>());
        // The first entry after the cut links to the checkpoint.
        let checkpoint = t.audit.checkpoint().unwrap().unwrap();
        assert_eq!(t.audit.page(0, 1).unwrap()[0].prev_hash, checkpoint.hash);
        t.append(5);
        assert_eq!(
            t.audit
                .compact_until_crash(crate::clock::now_ms(), Some(0))
                .unwrap(),
            Some(2595)
        );
        assert_eq!(t.verify().unwrap().entries, 2605);
        drop(t);
        let t = open(&dir.path().join("db"), &settings);
        let v = t.verify().unwrap();
        assert_eq!((v.checkpoint, v.first, v.entries), (Some(2595), 2596, 2605));
    }

    #[test]
    fn an_exported_copy_verifies_across_rotations_and_names_an_edited_entry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let settings = AuditSettings {
            export_file: Some(file.clone()),
            export_rotate_bytes: 4096,
            ..Default::default()
        };
        let t = open(&dir.path().join("db"), &settings);
        t.append(40);
        drop(t);
        // A restart re-exports from the last durable point: repeats count once.
        let t = open(&dir.path().join("db"), &settings);
        t.append(2);
        let mut files: Vec<_> = export::rotated(&file).into_iter().map(|(_, p)| p).collect();
        assert!(files.len() >= 3, "{files:?}");
        files.push(file.clone());
        let (_, v) = verify_exported(lines_of(&files), Some(&t.signers), Some(1)).unwrap();
        assert_eq!((v.first, v.entries), (1, 42));
        // Another node's key does not verify these lines.
        assert!(verify_exported(lines_of(&files), Some(&t.signers), Some(2)).is_err());
        // A missing rotated file is a gap.
        let e = verify_exported(lines_of(&files[1..]), None, None);
        assert!(e.is_ok(), "a copy may start later: {e:?}");
        let mut gap = files.clone();
        gap.remove(1);
        let e = verify_exported(lines_of(&gap), None, None).unwrap_err();
        assert!(e.contains("sequence breaks"), "{e}");
        // One entry edited in the copy: named.
        let text = std::fs::read_to_string(&files[1]).unwrap();
        let line = text.lines().nth(2).unwrap();
        let mut edited: ExportedEntry = serde_json::from_str(line).unwrap();
        let seq = edited.entry.seq;
        edited.entry.outcome = "denied".into();
        std::fs::write(
            &files[1],
            text.replace(line, &serde_json::to_string(&edited).unwrap()),
        )
        .unwrap();
        let e = verify_exported(lines_of(&files), None, None).unwrap_err();
        assert!(
            e.starts_with(&format!("entry {seq}: contents do not match")),
            "{e}"
        );
    }
}
