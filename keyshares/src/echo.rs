//! The echo check of DESIGN.md §4.2, shared by the DKG ([`crate::dkg`]) and resharing
//! ([`crate::reshare`]), and the structured answer it gives when two participants disagree.
//!
//! An [`Echo`] maps each round-1 sender to the digest of the package received from it. The
//! digest is the plain SHA-256 of the package bytes: exactly the hash a node's peer envelope
//! signs over its payload, so the node can show, for every digest it echoes, the sender's own
//! signature over it (DESIGN.md §11 "Evidence-based blame").
//!
//! This crate cannot tell who lies when two echoes disagree: the sender may have signed two
//! packages (equivocation), or the echoer may misquote it. It has no signatures, so it does
//! not guess: it answers an [`EchoMismatch`] — who claims what about whom — and the node,
//! which holds the signed messages, settles it. A node that names the origin on a bare
//! mismatch would let one lying echoer frame any honest participant.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The digest of every round-1 package a participant received, by sender (DESIGN.md §4.2).
pub type Echo = BTreeMap<u16, [u8; 32]>;

/// The digest of a round-1 package: SHA-256 of its bytes, the hash the peer envelope that
/// carries it signs (see the module docs).
pub fn round1_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Two views of one origin's round-1 package that differ: `echoer` reports `theirs`, this
/// participant holds `ours` (`None` where one side has no entry: a malformed echo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoMismatch {
    pub echoer: u16,
    pub origin: u16,
    pub ours: Option<[u8; 32]>,
    pub theirs: Option<[u8; 32]>,
}

impl EchoMismatch {
    /// Whether the echo itself is malformed (an entry missing or unexpected): its echoer's
    /// fault alone, provable by the echo it signed.
    pub fn is_malformed(&self) -> bool {
        self.ours.is_none() || self.theirs.is_none()
    }
}

impl std::fmt::Display for EchoMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |d: &Option<[u8; 32]>| match d {
            Some(d) => d[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            None => "nothing".to_string(),
        };
        write!(
            f,
            "node {} echoes {} as node {}'s round-1 package, this node received {}",
            self.echoer,
            hex(&self.theirs),
            self.origin,
            hex(&self.ours)
        )
    }
}

/// Compares `echoer`'s echo with ours: every origin but the echoer itself (whose own package
/// it did not receive; an entry for it is ignored) must be in both, with the same digest.
pub fn compare(ours: &Echo, echoer: u16, theirs: &Echo) -> Result<(), EchoMismatch> {
    let origins = ours
        .keys()
        .chain(theirs.keys())
        .copied()
        .filter(|o| *o != echoer);
    for origin in origins {
        let (a, b) = (ours.get(&origin), theirs.get(&origin));
        if a != b {
            return Err(EchoMismatch {
                echoer,
                origin,
                ours: a.copied(),
                theirs: b.copied(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_who_claims_what_about_whom() {
        let ours = Echo::from([(1, [1; 32]), (2, [2; 32]), (3, [3; 32])]);
        let agreeing = Echo::from([(1, [1; 32]), (3, [3; 32])]);
        assert_eq!(compare(&ours, 2, &agreeing), Ok(()));
        let lying = Echo::from([(1, [1; 32]), (3, [9; 32])]);
        let m = compare(&ours, 2, &lying).unwrap_err();
        assert_eq!((m.echoer, m.origin), (2, 3));
        assert_eq!((m.ours, m.theirs), (Some([3; 32]), Some([9; 32])));
        assert!(!m.is_malformed());
        let short = Echo::from([(1, [1; 32])]);
        let m = compare(&ours, 2, &short).unwrap_err();
        assert!(m.is_malformed() && m.origin == 3);
        let own_included = Echo::from([(1, [1; 32]), (2, [7; 32]), (3, [3; 32])]);
        assert_eq!(compare(&ours, 2, &own_included), Ok(()));
    }
}
