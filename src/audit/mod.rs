//! The audit trail: an append-only, hash-chained log of every ceremony, signing, decryption,
//! policy and client change this node took part in. Each entry's hash covers the entry and the
//! previous entry's hash, so editing or removing one breaks every link after it. Entries name
//! clients, keys and hashes of what was processed, never a secret or a plaintext.

pub mod cap;
pub mod heads;

use api::{AuditEntry, AuditHead};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::identity::Identity;
use crate::state::statement::Signers;

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

pub struct Audit {
    tree: sled::Tree,
    /// Signs every entry's (seq, hash): the node's identity key.
    identity: Identity,
    /// The latest signed heads of the peers.
    pub peers: heads::PeerHeads,
    /// (last sequence, last hash): appends are serialised so the chain never forks.
    head: Mutex<(u64, String)>,
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

impl Audit {
    /// `tree` holds the trail, `peer_heads` the peers' heads; `identity` signs entries.
    pub fn open(
        tree: sled::Tree,
        peer_heads: sled::Tree,
        identity: Identity,
    ) -> anyhow::Result<Audit> {
        let head = match tree.last()? {
            Some((_, json)) => {
                let last: AuditEntry = serde_json::from_slice(&json)?;
                (last.seq, last.hash)
            }
            None => (0, GENESIS.to_string()),
        };
        Ok(Audit {
            tree,
            identity,
            peers: heads::PeerHeads::new(peer_heads),
            head: Mutex::new(head),
        })
    }

    /// Appends an entry. Called before the answer of the operation leaves the node.
    pub fn append(&self, record: Record) -> anyhow::Result<u64> {
        let mut head = self.head.lock();
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
            .insert(entry.seq.to_be_bytes(), serde_json::to_vec(&entry)?)?;
        *head = (entry.seq, entry.hash);
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

    /// This node's signed head at entry `seq`, if the trail holds it.
    pub fn head_at(&self, seq: u64) -> anyhow::Result<Option<AuditHead>> {
        let Some(json) = self.tree.get(seq.to_be_bytes())? else {
            return Ok(None);
        };
        let entry: AuditEntry = serde_json::from_slice(&json)?;
        Ok(Some(AuditHead {
            node: self.identity.id,
            seq,
            signature: heads::sign(&self.identity, seq, &entry.hash),
            hash: entry.hash,
        }))
    }

    /// Up to `limit` entries after sequence `after`.
    pub fn page(&self, after: u64, limit: usize) -> anyhow::Result<Vec<AuditEntry>> {
        // Nothing comes after the last possible sequence number.
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.tree
            .range(first.to_be_bytes()..)
            .take(limit)
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }
}

/// What a check of a whole trail found intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    /// Entries at the start written before trails were signed (no signature).
    pub unsigned: u64,
    /// The last entry's hash (zeros for an empty trail).
    pub last_hash: String,
}

/// Checks a whole trail: the chain and, with `signer` (the node's id and the members' keys),
/// every entry's signature. Unsigned entries are accepted only before the first signed one.
/// `Err` names the first broken link.
pub fn verify_tree(tree: &sled::Tree, signer: Option<(u16, &Signers)>) -> Result<Verified, String> {
    let mut prev = GENESIS.to_string();
    let mut count = 0u64;
    let mut unsigned = 0u64;
    for item in tree.iter() {
        let (key, json) = item.map_err(|e| format!("reading the trail: {e}"))?;
        let seq = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| "an entry has a malformed sequence key".to_string())?;
        let entry: AuditEntry = serde_json::from_slice(&json)
            .map_err(|e| format!("entry {seq}: not a valid entry ({e})"))?;
        if entry.seq != seq || seq != count + 1 {
            return Err(format!(
                "entry {seq}: sequence breaks after entry {count} (expected {})",
                count + 1
            ));
        }
        if entry.prev_hash != prev {
            return Err(format!(
                "entry {seq}: prev_hash does not match the hash of entry {count}"
            ));
        }
        if entry_hash(&entry) != entry.hash {
            return Err(format!(
                "entry {seq}: contents do not match its hash (edited after it was written)"
            ));
        }
        if let Some((node, signers)) = signer {
            if entry.signature.is_empty() {
                if unsigned != count {
                    return Err(format!(
                        "entry {seq}: unsigned after signed entries (signature removed)"
                    ));
                }
                unsigned += 1;
            } else {
                heads::verify(signers, node, seq, &entry.hash, &entry.signature).map_err(|e| {
                    format!("entry {seq}: signature does not verify ({e}): edited or forged")
                })?;
            }
        }
        prev = entry.hash;
        count = seq;
    }
    Ok(Verified {
        entries: count,
        unsigned,
        last_hash: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_or_removed_entry_breaks_the_chain() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let identity = Identity::generate(1);
        let member = crate::config::Member {
            id: 1,
            name: "node-1".into(),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: identity.sign_public_hex(),
            seal_public_key: identity.seal_public_hex(),
        };
        let signers = Signers::new(&[member]).unwrap();
        let audit = Audit::open(
            db.open_tree("audit").unwrap(),
            db.open_tree("audit_heads").unwrap(),
            identity,
        )
        .unwrap();
        for action in ["sign", "decrypt", "client.put"] {
            audit
                .append(Record {
                    action,
                    role: "coordinator",
                    outcome: "ok",
                    ..Default::default()
                })
                .unwrap();
        }
        let tree = db.open_tree("audit").unwrap();
        assert_eq!(verify_tree(&tree, Some((1, &signers))).unwrap().entries, 3);
        assert_eq!(verify_tree(&tree, Some((1, &signers))).unwrap().unsigned, 0);
        let mut second: AuditEntry =
            serde_json::from_slice(&tree.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        second.outcome = "denied".into();
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&second).unwrap())
            .unwrap();
        assert!(verify_tree(&tree, None)
            .unwrap_err()
            .starts_with("entry 2: contents"));
        second.hash = entry_hash(&second);
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&second).unwrap())
            .unwrap();
        // Rehashed, its old signature no longer covers it.
        assert!(verify_tree(&tree, Some((1, &signers)))
            .unwrap_err()
            .starts_with("entry 2: signature"));
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&second).unwrap())
            .unwrap();
        assert!(verify_tree(&tree, None)
            .unwrap_err()
            .starts_with("entry 3: prev_hash"));
        tree.remove(2u64.to_be_bytes()).unwrap();
        assert!(verify_tree(&tree, None)
            .unwrap_err()
            .starts_with("entry 3: sequence"));
    }
}
