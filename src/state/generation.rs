//! Key generations as certified state (DESIGN.md §11, atomic commit).
//!
//! A ceremony (creation, refresh, reshare) commits exactly when every member has signed the
//! same [`GenerationStatement`] — which each does only after its pending share is sealed on
//! disk. The signatures together are the [`GenerationCertificate`]: whoever holds it may
//! activate the generation and hand it to others, so a silent coordinator cannot leave the
//! cluster split. A [`Refusal`] is the opposite evidence: a member (or the coordinator, the only
//! node that collects the signatures) that never signed and never will, so the certificate
//! cannot exist and pending shares of that ceremony may be discarded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::statement::{self, Signers};
use crate::identity::Identity;

const CONFIRM: &str = "keyquorum/generation/confirm";
const REFUSE: &str = "keyquorum/generation/refuse";
const ACK: &str = "keyquorum/generation/ack";

/// What every member of a ceremony signs once it holds the result sealed on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationStatement {
    pub key: String,
    pub generation: u32,
    /// The ceremony's session id; the key record names it too.
    pub session: String,
    pub coordinator: u16,
    /// Every member of the ceremony, sorted: all of them must sign.
    pub members: Vec<u16>,
    /// Hex SHA-256 of the resulting key record (public keys, committee, threshold, …).
    pub record_sha256: String,
    /// Hex SHA-256 of the ceremony's spec (policy and previous record included).
    pub spec_sha256: String,
}

impl GenerationStatement {
    fn fields(&self) -> Vec<Vec<u8>> {
        let members: Vec<u8> = self.members.iter().flat_map(|m| m.to_be_bytes()).collect();
        vec![
            self.key.as_bytes().to_vec(),
            self.generation.to_be_bytes().to_vec(),
            self.session.as_bytes().to_vec(),
            self.coordinator.to_be_bytes().to_vec(),
            members,
            self.record_sha256.as_bytes().to_vec(),
            self.spec_sha256.as_bytes().to_vec(),
        ]
    }

    pub fn sign(&self, identity: &Identity) -> String {
        let fields = self.fields();
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        statement::sign(identity, CONFIRM, &refs)
    }

    pub fn verify(&self, signers: &Signers, signer: u16, signature: &str) -> Result<(), String> {
        let fields = self.fields();
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        signers.verify(signer, CONFIRM, &refs, signature)
    }
}

/// Proof that a ceremony committed: every member's signature over one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationCertificate {
    pub statement: GenerationStatement,
    #[serde(with = "by_node")]
    pub signatures: BTreeMap<u16, String>,
}

/// Signatures by node as a list of `[node, signature]` pairs: the peer messages are
/// internally tagged enums, through which serde cannot read integer map keys from JSON.
pub mod by_node {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &BTreeMap<u16, String>, s: S) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, String>, D::Error> {
        let pairs = Vec::<(u16, String)>::deserialize(d)?;
        let len = pairs.len();
        let map: BTreeMap<u16, String> = pairs.into_iter().collect();
        if map.len() != len {
            return Err(serde::de::Error::custom("a node appears twice"));
        }
        Ok(map)
    }
}

impl GenerationCertificate {
    /// Checks that exactly the statement's members signed it, each validly.
    pub fn verify(&self, signers: &Signers) -> Result<(), String> {
        let signed: Vec<u16> = self.signatures.keys().copied().collect();
        let mut members = self.statement.members.clone();
        members.sort_unstable();
        members.dedup();
        if members.len() != self.statement.members.len() || members.is_empty() {
            return Err("the certificate's member list is empty or repeats a node".into());
        }
        if signed != members {
            return Err(format!(
                "the certificate is signed by nodes {signed:?}, its members are {members:?}"
            ));
        }
        for (signer, signature) in &self.signatures {
            self.statement.verify(signers, *signer, signature)?;
        }
        Ok(())
    }
}

/// A signed promise that `signer` holds no certificate of ceremony `session` and will never
/// contribute one: it never confirmed (a member) or never assembled one (the coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub key: String,
    pub session: String,
    pub signer: u16,
    pub signature: String,
}

impl Refusal {
    pub fn sign(identity: &Identity, key: &str, session: &str) -> Refusal {
        Refusal {
            key: key.to_string(),
            session: session.to_string(),
            signer: identity.id,
            signature: statement::sign(identity, REFUSE, &[key.as_bytes(), session.as_bytes()]),
        }
    }

    /// Checks the signature, and that it refuses the ceremony `pending` describes on behalf of
    /// one of those whose refusal makes its certificate impossible.
    pub fn proves_aborted(
        &self,
        signers: &Signers,
        pending: &GenerationStatement,
    ) -> Result<(), String> {
        if self.key != pending.key || self.session != pending.session {
            return Err("the refusal is for another ceremony".into());
        }
        if !(pending.members.contains(&self.signer) || pending.coordinator == self.signer) {
            return Err(format!(
                "node {} is neither a member nor the coordinator of the ceremony",
                self.signer
            ));
        }
        signers.verify(
            self.signer,
            REFUSE,
            &[self.key.as_bytes(), self.session.as_bytes()],
            &self.signature,
        )
    }
}

/// `signer` activated (or moved past) generation `session` of `key`: once every member has
/// said so, nobody needs the share it replaced.
pub fn sign_ack(identity: &Identity, key: &str, session: &str) -> String {
    statement::sign(identity, ACK, &[key.as_bytes(), session.as_bytes()])
}

pub fn verify_ack(
    signers: &Signers,
    signer: u16,
    key: &str,
    session: &str,
    signature: &str,
) -> Result<(), String> {
    signers.verify(
        signer,
        ACK,
        &[key.as_bytes(), session.as_bytes()],
        signature,
    )
}

/// Whether `acks` holds a valid acknowledgement of `certificate` from each of its members.
pub fn all_acknowledged(
    signers: &Signers,
    certificate: &GenerationCertificate,
    acks: &BTreeMap<u16, String>,
) -> bool {
    let s = &certificate.statement;
    s.members.iter().all(|m| {
        acks.get(m)
            .is_some_and(|sig| verify_ack(signers, *m, &s.key, &s.session, sig).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::statement::test_members as cluster;

    fn statement(members: Vec<u16>) -> GenerationStatement {
        GenerationStatement {
            key: "k".into(),
            generation: 1,
            session: "s1".into(),
            coordinator: 1,
            members,
            record_sha256: "aa".into(),
            spec_sha256: "bb".into(),
        }
    }

    #[test]
    fn a_certificate_needs_every_member_and_nothing_else() {
        let (ids, signers) = cluster(4);
        let s = statement(vec![1, 2, 3]);
        let sigs: BTreeMap<u16, String> = ids[..3].iter().map(|i| (i.id, s.sign(i))).collect();
        let cert = GenerationCertificate {
            statement: s.clone(),
            signatures: sigs.clone(),
        };
        assert!(cert.verify(&signers).is_ok());

        let mut missing = cert.clone();
        missing.signatures.remove(&3);
        assert!(missing.verify(&signers).is_err());

        let mut extra = cert.clone();
        extra.signatures.insert(4, s.sign(&ids[3]));
        assert!(extra.verify(&signers).is_err());

        // A signature moved onto another statement (another record) does not verify.
        let mut other = cert.clone();
        other.statement.record_sha256 = "cc".into();
        assert!(other.verify(&signers).is_err());

        // Node 2's signature under node 3's name.
        let mut swapped = cert.clone();
        swapped.signatures.insert(3, sigs[&2].clone());
        assert!(swapped.verify(&signers).is_err());

        let mut repeated = cert;
        repeated.statement.members = vec![1, 2, 2];
        assert!(repeated.verify(&signers).is_err());
    }

    #[test]
    fn a_refusal_counts_only_from_a_member_or_the_coordinator_of_that_ceremony() {
        let (ids, signers) = cluster(4);
        let s = statement(vec![2, 3]);
        assert!(Refusal::sign(&ids[1], "k", "s1")
            .proves_aborted(&signers, &s)
            .is_ok());
        // Node 1 coordinates without being a member.
        assert!(Refusal::sign(&ids[0], "k", "s1")
            .proves_aborted(&signers, &s)
            .is_ok());
        assert!(Refusal::sign(&ids[3], "k", "s1")
            .proves_aborted(&signers, &s)
            .is_err());
        assert!(Refusal::sign(&ids[1], "k", "s2")
            .proves_aborted(&signers, &s)
            .is_err());
        let mut forged = Refusal::sign(&ids[3], "k", "s1");
        forged.signer = 2;
        assert!(forged.proves_aborted(&signers, &s).is_err());
    }

    #[test]
    fn acknowledgements_close_a_generation_only_when_all_members_sent_one() {
        let (ids, signers) = cluster(3);
        let s = statement(vec![1, 2, 3]);
        let cert = GenerationCertificate {
            statement: s.clone(),
            signatures: ids.iter().map(|i| (i.id, s.sign(i))).collect(),
        };
        let mut acks: BTreeMap<u16, String> = ids[..2]
            .iter()
            .map(|i| (i.id, sign_ack(i, "k", "s1")))
            .collect();
        assert!(!all_acknowledged(&signers, &cert, &acks));
        acks.insert(3, sign_ack(&ids[2], "k", "s0"));
        assert!(!all_acknowledged(&signers, &cert, &acks));
        acks.insert(3, sign_ack(&ids[2], "k", "s1"));
        assert!(all_acknowledged(&signers, &cert, &acks));
    }
}
