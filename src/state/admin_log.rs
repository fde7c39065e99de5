//! Admin log entries bound to their position, and the certificates that make one believed
//! (DESIGN.md §11): an entry names its seq and the hash of the entry before it; a certificate
//! is `q` members' signed votes for exactly that (seq, previous hash, entry hash, coordinator).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::request::ClientRequest;
use crate::state::statement::Signers;

/// The previous hash of entry 1: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a member signs to vote for an entry at a position.
pub const VOTE_DOMAIN: &str = "keyquorum/admin/vote";
/// What a coordinator signs to give up an entry it proposed.
pub const ABORT_DOMAIN: &str = "keyquorum/admin/abort";

const ENTRY_DOMAIN: &[u8] = b"keyquorum/admin/entry/v1\0";

/// One change of the admin log at its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEntry {
    pub seq: u64,
    /// Hex SHA-256 of the entry at `seq - 1` ([`GENESIS_HASH`] for entry 1).
    pub prev_hash: String,
    pub request: ClientRequest,
}

impl AdminEntry {
    /// SHA-256 (hex) over the domain, then seq, previous hash and the request's canonical JSON
    /// (its serde encoding, fields in declaration order), each length-prefixed so that no two
    /// entries share an encoding.
    pub fn hash(&self) -> String {
        let request = serde_json::to_vec(&self.request).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(ENTRY_DOMAIN);
        for part in [
            &self.seq.to_be_bytes()[..],
            self.prev_hash.as_bytes(),
            &request,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }

    /// The (client, nonce) that makes the signed request unique: applied at most once.
    pub fn client_nonce(&self) -> (String, String) {
        let sig = &self.request.authorization;
        (sig.client.clone(), sig.nonce.clone())
    }
}

/// The position a node's log has reached: the last applied entry's seq and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    pub fn genesis() -> Head {
        Head {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }

    /// Whether `entry` is the next one after this head.
    pub fn chains(&self, entry: &AdminEntry) -> Result<(), String> {
        if entry.seq != self.seq + 1 {
            return Err(format!(
                "entry {} does not follow this node's head {}",
                entry.seq, self.seq
            ));
        }
        if entry.prev_hash != self.hash {
            return Err(format!(
                "entry {} names previous hash {}, this node's entry {} is {}",
                entry.seq, entry.prev_hash, self.seq, self.hash
            ));
        }
        Ok(())
    }
}

/// The fields of a vote statement.
pub fn vote_fields(seq: u64, prev_hash: &str, entry_hash: &str, coordinator: u16) -> Vec<Vec<u8>> {
    vec![
        seq.to_be_bytes().to_vec(),
        prev_hash.as_bytes().to_vec(),
        entry_hash.as_bytes().to_vec(),
        coordinator.to_be_bytes().to_vec(),
    ]
}

/// The fields of an abort statement.
pub fn abort_fields(seq: u64, entry_hash: &str, coordinator: u16) -> Vec<Vec<u8>> {
    vec![
        seq.to_be_bytes().to_vec(),
        entry_hash.as_bytes().to_vec(),
        coordinator.to_be_bytes().to_vec(),
    ]
}

fn refs(fields: &[Vec<u8>]) -> Vec<&[u8]> {
    fields.iter().map(Vec::as_slice).collect()
}

/// This node's vote for `entry` as proposed by `coordinator`.
pub fn sign_vote(
    identity: &crate::identity::Identity,
    entry: &AdminEntry,
    coordinator: u16,
) -> String {
    let fields = vote_fields(entry.seq, &entry.prev_hash, &entry.hash(), coordinator);
    crate::state::statement::sign(identity, VOTE_DOMAIN, &refs(&fields))
}

/// Checks member `voter`'s vote for (seq, prev_hash, entry_hash, coordinator).
pub fn verify_vote(
    signers: &Signers,
    voter: u16,
    seq: u64,
    prev_hash: &str,
    entry_hash: &str,
    coordinator: u16,
    signature: &str,
) -> Result<(), String> {
    let fields = vote_fields(seq, prev_hash, entry_hash, coordinator);
    signers.verify(voter, VOTE_DOMAIN, &refs(&fields), signature)
}

/// The coordinator's signed abort of the entry with `entry_hash` at `seq`.
pub fn sign_abort(
    identity: &crate::identity::Identity,
    seq: u64,
    entry_hash: &str,
    coordinator: u16,
) -> String {
    let fields = abort_fields(seq, entry_hash, coordinator);
    crate::state::statement::sign(identity, ABORT_DOMAIN, &refs(&fields))
}

pub fn verify_abort(
    signers: &Signers,
    seq: u64,
    entry_hash: &str,
    coordinator: u16,
    signature: &str,
) -> Result<(), String> {
    let fields = abort_fields(seq, entry_hash, coordinator);
    signers.verify(coordinator, ABORT_DOMAIN, &refs(&fields), signature)
}

/// At least `q` members' votes for one entry at one position: the evidence that the entry
/// is committed. A map, so that a voter counts once; on the wire a list of (voter, signature)
/// pairs, and a list naming a voter twice is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub seq: u64,
    pub prev_hash: String,
    pub entry_hash: String,
    pub coordinator: u16,
    #[serde(with = "vote_list")]
    pub votes: BTreeMap<u16, String>,
}

/// Votes as a JSON list: integer map keys do not survive serde's internally tagged enums
/// (the peer messages), which buffer them as strings.
mod vote_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Vote {
        node: u16,
        signature: String,
    }

    pub fn serialize<S: Serializer>(
        votes: &BTreeMap<u16, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<Vote> = votes
            .iter()
            .map(|(node, signature)| Vote {
                node: *node,
                signature: signature.clone(),
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, String>, D::Error> {
        let mut votes = BTreeMap::new();
        for v in Vec::<Vote>::deserialize(d)? {
            if votes.insert(v.node, v.signature).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "node {} votes twice in the certificate",
                    v.node
                )));
            }
        }
        Ok(votes)
    }
}

impl Certificate {
    /// Checks that at least `quorum` distinct members signed this certificate's statement.
    pub fn verify(&self, signers: &Signers, quorum: usize) -> Result<(), String> {
        let mut valid = 0usize;
        let mut bad = Vec::new();
        for (voter, signature) in &self.votes {
            match verify_vote(
                signers,
                *voter,
                self.seq,
                &self.prev_hash,
                &self.entry_hash,
                self.coordinator,
                signature,
            ) {
                Ok(()) => valid += 1,
                Err(e) => bad.push(e),
            }
        }
        if valid < quorum {
            return Err(format!(
                "the certificate of entry {} has {valid} valid votes, {quorum} needed{}",
                self.seq,
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", bad.join("; "))
                }
            ));
        }
        Ok(())
    }

    /// Checks that this certificate is for exactly `entry`, with `quorum` valid votes.
    pub fn verify_for(
        &self,
        entry: &AdminEntry,
        signers: &Signers,
        quorum: usize,
    ) -> Result<(), String> {
        if self.seq != entry.seq || self.prev_hash != entry.prev_hash {
            return Err(format!(
                "the certificate is for position {} after {}, the entry is at {} after {}",
                self.seq, self.prev_hash, entry.seq, entry.prev_hash
            ));
        }
        if self.entry_hash != entry.hash() {
            return Err(format!(
                "the certificate of entry {} is for another entry",
                entry.seq
            ));
        }
        self.verify(signers, quorum)
    }
}

/// An applied entry with the certificate that made it believed, as the log stores and serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedEntry {
    pub entry: AdminEntry,
    pub certificate: Certificate,
}

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

/// The node's place in the admin log, and whether it has caught up since it started.
pub struct AdminState {
    /// The last applied entry; its lock also serialises applying and voting, so a vote is
    /// always judged against the head it names.
    pub(crate) head: Mutex<Head>,
    pub(crate) seq: AtomicU64,
    /// One proposal at a time from this node as coordinator.
    pub(crate) proposing: tokio::sync::Mutex<()>,
    caught_up: AtomicBool,
    /// Peers whose log head this node has reached since it started.
    heard: Mutex<BTreeSet<u16>>,
}

impl AdminState {
    /// The state of a node whose log ends at `head`.
    pub fn new(head: Head) -> AdminState {
        AdminState {
            seq: AtomicU64::new(head.seq),
            head: Mutex::new(head),
            proposing: tokio::sync::Mutex::new(()),
            caught_up: AtomicBool::new(false),
            heard: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    pub fn head(&self) -> Head {
        self.head.lock().clone()
    }

    /// Whether this node has heard the log heads of enough peers since it started that any
    /// quorum includes one of them, and applied what they had (DESIGN.md §11).
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::SeqCst)
    }

    /// Records that this node reached `peer`'s head; returns whether it is now caught up.
    pub(crate) fn heard(&self, peer: u16, needed: usize) -> bool {
        let mut heard = self.heard.lock();
        heard.insert(peer);
        if heard.len() >= needed {
            self.caught_up.store(true, Ordering::SeqCst);
        }
        self.caught_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    use crate::state::statement::test_members as members;

    fn entry(seq: u64, prev_hash: &str, nonce: &str) -> AdminEntry {
        let key = api::ClientKey::generate("admin");
        let mut authorization = key.sign_request(Some(1), "DELETE", "/v1/clients/eve", b"");
        authorization.nonce = nonce.into();
        AdminEntry {
            seq,
            prev_hash: prev_hash.into(),
            request: ClientRequest {
                operation: "op".into(),
                admin_seq: seq - 1,
                method: "DELETE".into(),
                path: "/v1/clients/eve".into(),
                body: vec![],
                authorization,
                approvals: vec![],
            },
        }
    }

    fn certify(ids: &[Identity], voters: &[u16], entry: &AdminEntry, coord: u16) -> Certificate {
        Certificate {
            seq: entry.seq,
            prev_hash: entry.prev_hash.clone(),
            entry_hash: entry.hash(),
            coordinator: coord,
            votes: voters
                .iter()
                .map(|v| (*v, sign_vote(&ids[usize::from(*v) - 1], entry, coord)))
                .collect(),
        }
    }

    #[test]
    fn the_hash_binds_seq_previous_hash_and_request() {
        let first = entry(1, GENESIS_HASH, "nonce-aaaaaaaaaaaaaaaa");
        let h = first.hash();
        assert_eq!(h.len(), 64);
        assert_eq!(h, first.clone().hash(), "deterministic");
        let mut moved = first.clone();
        moved.seq = 2;
        assert_ne!(moved.hash(), h);
        let mut other_prev = first.clone();
        other_prev.prev_hash = "11".repeat(32);
        assert_ne!(other_prev.hash(), h);
        let mut other_request = first.clone();
        other_request.request.path = "/v1/clients/eva".into();
        assert_ne!(other_request.hash(), h);

        // The chain: entry 2 follows entry 1 only when it names entry 1's hash.
        let mut head = Head::genesis();
        assert!(head.chains(&first).is_ok());
        head = Head {
            seq: 1,
            hash: h.clone(),
        };
        assert!(head.chains(&entry(2, &h, "nonce-bbbbbbbbbbbbbbbb")).is_ok());
        assert!(head
            .chains(&entry(2, GENESIS_HASH, "nonce-bbbbbbbbbbbbbbbb"))
            .is_err());
        assert!(head
            .chains(&entry(3, &h, "nonce-bbbbbbbbbbbbbbbb"))
            .is_err());
        assert!(head.chains(&first).is_err(), "an old entry does not chain");
    }

    #[test]
    fn a_certificate_needs_quorum_votes_of_distinct_members_for_exactly_its_entry() {
        let (ids, signers) = members(4);
        let e = entry(1, GENESIS_HASH, "nonce-aaaaaaaaaaaaaaaa");
        let cert = certify(&ids, &[1, 2, 3], &e, 1);
        assert!(cert.verify_for(&e, &signers, 3).is_ok());
        // Too few votes.
        assert!(cert.verify_for(&e, &signers, 4).is_err());
        assert!(certify(&ids, &[1, 2], &e, 1)
            .verify_for(&e, &signers, 3)
            .is_err());
        // Wrong seq or previous hash: for another position.
        let mut moved = e.clone();
        moved.seq = 2;
        assert!(cert.verify_for(&moved, &signers, 3).is_err());
        let mut reprev = e.clone();
        reprev.prev_hash = "11".repeat(32);
        assert!(cert.verify_for(&reprev, &signers, 3).is_err());
        // A certificate relabelled for another position: the votes no longer verify.
        let mut relabelled = cert.clone();
        relabelled.seq = 2;
        assert!(relabelled.verify(&signers, 1).is_err());
        // Votes for another entry.
        let other = entry(1, GENESIS_HASH, "nonce-cccccccccccccccc");
        let mut swapped = certify(&ids, &[1, 2, 3], &other, 1);
        swapped.entry_hash = e.hash();
        assert!(swapped.verify_for(&e, &signers, 3).is_err());
        // Another coordinator's name on the votes.
        let mut recoordinated = cert.clone();
        recoordinated.coordinator = 2;
        assert!(recoordinated.verify(&signers, 1).is_err());
        // A duplicated voter counts once: the map keeps one entry per voter.
        let sig = cert.votes[&1].clone();
        let json = format!(
            "{{\"seq\":1,\"prev_hash\":\"{GENESIS_HASH}\",\"entry_hash\":\"{}\",\
             \"coordinator\":1,\"votes\":[{{\"node\":1,\"signature\":\"{sig}\"}},\
             {{\"node\":1,\"signature\":\"{sig}\"}}]}}",
            e.hash()
        );
        let err = serde_json::from_str::<Certificate>(&json).unwrap_err();
        assert!(err.to_string().contains("votes twice"), "{err}");
        // The certificate survives the peer messages' encoding.
        let request = crate::peer::PeerRequest::AdminCommit {
            entry: e.clone(),
            certificate: cert.clone(),
        };
        let back: crate::peer::PeerRequest =
            serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
        let crate::peer::PeerRequest::AdminCommit { certificate, .. } = back else {
            panic!("decoded as another message");
        };
        assert_eq!(certificate, cert);
        // A non-member's vote, or a member's vote under another member's id, does not count.
        let mut outsider = certify(&ids, &[1, 2], &e, 1);
        let stranger = Identity::generate(9);
        outsider.votes.insert(9, sign_vote(&stranger, &e, 1));
        assert!(outsider.verify_for(&e, &signers, 3).is_err());
        let mut borrowed = certify(&ids, &[1, 2], &e, 1);
        borrowed.votes.insert(3, borrowed.votes[&1].clone());
        assert!(borrowed.verify_for(&e, &signers, 3).is_err());
    }

    #[test]
    fn an_abort_verifies_only_for_its_coordinator_seq_and_entry() {
        let (ids, signers) = members(3);
        let e = entry(1, GENESIS_HASH, "nonce-aaaaaaaaaaaaaaaa");
        let sig = sign_abort(&ids[0], 1, &e.hash(), 1);
        assert!(verify_abort(&signers, 1, &e.hash(), 1, &sig).is_ok());
        assert!(verify_abort(&signers, 2, &e.hash(), 1, &sig).is_err());
        assert!(verify_abort(&signers, 1, GENESIS_HASH, 1, &sig).is_err());
        assert!(verify_abort(&signers, 1, &e.hash(), 2, &sig).is_err());
    }
}
