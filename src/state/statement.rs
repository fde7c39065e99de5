//! Signed statements (DESIGN.md §11): a node's identity key over a domain-separated list of
//! fields. Unlike a peer envelope, a statement is addressed to nobody and carries no freshness:
//! it is evidence that any member can check at any time, e.g. inside a certificate.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::config::Member;
use crate::identity::Identity;

const PREFIX: &[u8] = b"keyquorum/statement/v1\0";

/// The bytes a statement's signature covers: the prefix, then the domain and every field,
/// each length-prefixed so that no two statements share an encoding.
fn encode(domain: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    buf.extend_from_slice(PREFIX);
    for part in std::iter::once(domain.as_bytes()).chain(fields.iter().copied()) {
        buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
        buf.extend_from_slice(part);
    }
    buf
}

/// This node's signature (hex) over the statement `domain(fields…)`.
pub fn sign(identity: &Identity, domain: &str, fields: &[&[u8]]) -> String {
    hex::encode(identity.sign(&encode(domain, fields)))
}

/// The members' statement-verifying keys, by node id.
#[derive(Clone)]
pub struct Signers {
    keys: BTreeMap<u16, VerifyingKey>,
}

impl Signers {
    pub fn new(members: &[Member]) -> anyhow::Result<Signers> {
        let mut keys = BTreeMap::new();
        for m in members {
            let bytes: [u8; 32] = hex::decode(&m.sign_public_key)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("member {}: sign key must be 32 bytes", m.id))?;
            keys.insert(m.id, VerifyingKey::from_bytes(&bytes)?);
        }
        Ok(Signers { keys })
    }

    /// Checks that member `signer` signed `domain(fields…)`; strict verification, so a
    /// signature has one valid encoding only.
    pub fn verify(
        &self,
        signer: u16,
        domain: &str,
        fields: &[&[u8]],
        signature_hex: &str,
    ) -> Result<(), String> {
        let key = self
            .keys
            .get(&signer)
            .ok_or_else(|| format!("node {signer} is not a cluster member"))?;
        let bytes: [u8; 64] = hex::decode(signature_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("the signature of node {signer} is not 64 bytes of hex"))?;
        key.verify_strict(&encode(domain, fields), &Signature::from_bytes(&bytes))
            .map_err(|_| format!("the signature of node {signer} does not verify"))
    }

    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.keys.keys().copied()
    }
}

/// n fresh identities and the signers that verify them, for unit tests of certificates.
#[cfg(test)]
pub(crate) fn test_members(n: u16) -> (Vec<Identity>, Signers) {
    let ids: Vec<Identity> = (1..=n).map(Identity::generate).collect();
    let members: Vec<Member> = ids
        .iter()
        .map(|id| Member {
            id: id.id,
            name: format!("node-{}", id.id),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: id.sign_public_hex(),
            seal_public_key: id.seal_public_hex(),
        })
        .collect();
    let signers = Signers::new(&members).unwrap();
    (ids, signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_verifies_only_as_signed() {
        let one = Identity::generate(1);
        let two = Identity::generate(2);
        let member = |id: &Identity| Member {
            id: id.id,
            name: format!("node-{}", id.id),
            peer_url: String::new(),
            client_url: String::new(),
            sign_public_key: id.sign_public_hex(),
            seal_public_key: id.seal_public_hex(),
        };
        let signers = Signers::new(&[member(&one), member(&two)]).unwrap();
        let sig = sign(&one, "test", &[b"a", b"bc"]);
        assert!(signers.verify(1, "test", &[b"a", b"bc"], &sig).is_ok());
        // Another signer, domain, field split, or an unknown member: refused.
        assert!(signers.verify(2, "test", &[b"a", b"bc"], &sig).is_err());
        assert!(signers.verify(1, "other", &[b"a", b"bc"], &sig).is_err());
        assert!(signers.verify(1, "test", &[b"ab", b"c"], &sig).is_err());
        assert!(signers.verify(3, "test", &[b"a", b"bc"], &sig).is_err());
        assert!(signers.verify(1, "test", &[b"a", b"bc"], "zz").is_err());
    }
}
