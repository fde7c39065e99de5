//! Signed audit heads (DESIGN.md §11, "believe a certificate, never a peer's word"): a node
//! signs every entry's (seq, hash) with its identity key, and records the latest signed head
//! each peer showed it. Another hash at the same seq (fork) cannot come from an append-only
//! trail: it is kept as evidence, both heads signed by that peer. A head older than the one
//! recorded proves nothing by itself (answers cross on the wire); the caller asks the peer
//! for the recorded entry, which an honest peer still holds.

use api::{AuditConflict, AuditHead, RecordedHead};

use crate::identity::Identity;
use crate::state::statement::{self, Signers};

/// Domain of the statement `(node, seq, hash)` an entry's signature covers.
pub const DOMAIN: &str = "keyquorum/audit-head/v1";

fn fields(node: u16, seq: u64, hash: &str) -> [Vec<u8>; 3] {
    [
        node.to_be_bytes().to_vec(),
        seq.to_be_bytes().to_vec(),
        hash.as_bytes().to_vec(),
    ]
}

/// The node's signature over its head at `seq`.
pub fn sign(identity: &Identity, seq: u64, hash: &str) -> String {
    let f = fields(identity.id, seq, hash);
    statement::sign(identity, DOMAIN, &[&f[0], &f[1], &f[2]])
}

/// Checks that `node` signed the head (`seq`, `hash`).
pub fn verify(
    signers: &Signers,
    node: u16,
    seq: u64,
    hash: &str,
    signature: &str,
) -> Result<(), String> {
    let f = fields(node, seq, hash);
    signers.verify(node, DOMAIN, &[&f[0], &f[1], &f[2]], signature)
}

/// What a newly seen head says about the one recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The same head.
    Consistent,
    /// A later head, now recorded; `previous` was recorded before. Whether the new trail
    /// extends it is for the caller to ask the peer (its entry at `previous.seq`).
    Advanced { previous: AuditHead },
    /// An older head than the one recorded, which stays recorded: the peer must still hold
    /// `recorded`, and the caller asks it.
    Older { recorded: AuditHead },
    /// The first conflict with the recorded head, now stored; report it.
    Conflict(AuditConflict),
    /// A conflict, but not the first: already reported.
    Known,
}

/// The latest signed head of each peer: node id (big-endian) → JSON [`RecordedHead`].
pub struct PeerHeads {
    tree: sled::Tree,
    /// One observation at a time: two answers crossing must not record the older last.
    updating: parking_lot::Mutex<()>,
}

impl PeerHeads {
    pub fn new(tree: sled::Tree) -> PeerHeads {
        PeerHeads {
            tree,
            updating: parking_lot::Mutex::new(()),
        }
    }

    pub fn get(&self, node: u16) -> anyhow::Result<Option<RecordedHead>> {
        Ok(match self.tree.get(node.to_be_bytes())? {
            Some(json) => Some(serde_json::from_slice(&json)?),
            None => None,
        })
    }

    pub fn list(&self) -> anyhow::Result<Vec<RecordedHead>> {
        self.tree
            .iter()
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }

    /// Records `head` of a peer once its signature verifies (`Err` otherwise), and compares
    /// it with the head recorded before.
    pub fn observe(&self, signers: &Signers, head: &AuditHead) -> anyhow::Result<Seen> {
        verify(signers, head.node, head.seq, &head.hash, &head.signature)
            .map_err(anyhow::Error::msg)?;
        let _one = self.updating.lock();
        let Some(mut recorded) = self.get(head.node)? else {
            self.put(&RecordedHead {
                head: head.clone(),
                conflict: None,
            })?;
            return Ok(Seen::Consistent);
        };
        match head.seq.cmp(&recorded.head.seq) {
            std::cmp::Ordering::Less => Ok(Seen::Older {
                recorded: recorded.head,
            }),
            std::cmp::Ordering::Greater => {
                let previous = std::mem::replace(&mut recorded.head, head.clone());
                self.put(&recorded)?;
                Ok(Seen::Advanced { previous })
            }
            std::cmp::Ordering::Equal if head.hash == recorded.head.hash => Ok(Seen::Consistent),
            std::cmp::Ordering::Equal => {
                let previous = recorded.head.clone();
                self.record_conflict("fork", &previous, head)
            }
        }
    }

    /// Stores the first conflict of a peer: `recorded` and `seen`, both signed by it, cannot
    /// belong to one append-only trail. The recorded head stays as it is.
    pub fn conflict(
        &self,
        kind: &'static str,
        recorded: &AuditHead,
        seen: &AuditHead,
    ) -> anyhow::Result<Seen> {
        let _one = self.updating.lock();
        self.record_conflict(kind, recorded, seen)
    }

    fn record_conflict(
        &self,
        kind: &'static str,
        recorded: &AuditHead,
        seen: &AuditHead,
    ) -> anyhow::Result<Seen> {
        let Some(mut stored) = self.get(recorded.node)? else {
            return Ok(Seen::Known);
        };
        if stored.conflict.is_some() {
            return Ok(Seen::Known);
        }
        let conflict = AuditConflict {
            kind: kind.to_string(),
            recorded: recorded.clone(),
            seen: seen.clone(),
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        stored.conflict = Some(conflict.clone());
        self.put(&stored)?;
        Ok(Seen::Conflict(conflict))
    }

    fn put(&self, recorded: &RecordedHead) -> anyhow::Result<()> {
        self.tree.insert(
            recorded.head.node.to_be_bytes(),
            serde_json::to_vec(recorded)?,
        )?;
        self.tree.flush()?;
        Ok(())
    }
}

/// Checks a trail against a head of its node that a peer recorded: the trail must hold an
/// entry at that seq with that hash. `entry_hash` gives the stored hash at a seq.
pub fn check_against(
    recorded: &AuditHead,
    last_seq: u64,
    entry_hash: impl Fn(u64) -> Option<String>,
) -> Result<(), String> {
    if recorded.seq == 0 {
        return Ok(());
    }
    if recorded.seq > last_seq {
        return Err(format!(
            "a peer recorded this node's signed head at entry {}, but the trail ends at entry {last_seq} (truncated or rolled back)",
            recorded.seq
        ));
    }
    match entry_hash(recorded.seq) {
        Some(h) if h == recorded.hash => Ok(()),
        _ => Err(format!(
            "entry {}: its hash differs from the signed head a peer recorded (rewritten)",
            recorded.seq
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(identity: &Identity) -> crate::config::Member {
        crate::config::Member {
            id: identity.id,
            name: format!("node-{}", identity.id),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: identity.sign_public_hex(),
            seal_public_key: identity.seal_public_hex(),
        }
    }

    fn head(identity: &Identity, seq: u64, hash: &str) -> AuditHead {
        AuditHead {
            node: identity.id,
            seq,
            hash: hash.into(),
            signature: sign(identity, seq, hash),
        }
    }

    #[test]
    fn a_fork_is_reported_once_an_older_head_is_no_evidence_and_a_forged_head_refused() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let heads = PeerHeads::new(db.open_tree("h").unwrap());
        let two = Identity::generate(2);
        let signers = Signers::new(&[member(&two)]).unwrap();
        let seen = |h: &AuditHead| heads.observe(&signers, h).unwrap();
        assert_eq!(seen(&head(&two, 3, "c")), Seen::Consistent);
        assert_eq!(
            seen(&head(&two, 5, "e")),
            Seen::Advanced {
                previous: head(&two, 3, "c")
            }
        );
        assert_eq!(seen(&head(&two, 5, "e")), Seen::Consistent);
        // An answer that crossed a later one: the later stays recorded, to be asked for.
        assert_eq!(
            seen(&head(&two, 4, "d")),
            Seen::Older {
                recorded: head(&two, 5, "e")
            }
        );
        assert_eq!(heads.get(2).unwrap().unwrap().conflict, None);
        let Seen::Conflict(c) = seen(&head(&two, 5, "x")) else {
            panic!("a fork was not reported");
        };
        assert_eq!(
            (c.kind.as_str(), c.recorded.seq, c.seen.seq),
            ("fork", 5, 5)
        );
        assert_eq!(seen(&head(&two, 5, "y")), Seen::Known);
        let mut forged = head(&two, 9, "i");
        forged.hash = "j".into();
        assert!(heads.observe(&signers, &forged).is_err());
        assert_eq!(heads.get(2).unwrap().unwrap().head.seq, 5);
    }
}
