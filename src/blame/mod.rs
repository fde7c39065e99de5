//! Evidence-based blame (DESIGN.md §11, refining §4.5): a node is named only on proof it
//! signed, never on a count of who accuses whom.
//!
//! A participant that finds fault with a peer's message answers a [`Complaint`]: what is wrong
//! with which message, and whatever only it can add (the key of a sealed message it was sent).
//! The coordinator relayed every message of the protocol, each signed by its origin, so it
//! settles the complaint itself, on those signatures:
//!
//! - two different messages the accused signed for one step: the accused equivocated;
//! - a message the accused signed that fails a public check (a round-1 commitment, a share
//!   once revealed and checked against the signed commitment, GJKR's complaint phase): the
//!   accused is named;
//! - the message passes the check: the complaint was false, and its author is named;
//! - nothing can be checked (a bare accusation, a sealed blob that does not open under the
//!   key revealed for it): accuser and accused are both named, and the reason says so — one
//!   of the two misbehaved, and nobody can tell which.
//!
//! `crate::ceremony::blame` settles the complaints of key ceremonies, `crate::repair::blame`
//! those of repairs.

mod relayed;

pub use relayed::Relayed;

use api::Excluded;

pub use crate::peer::messages::Complaint;

/// One participant's answer against another.
#[derive(Debug, Clone)]
pub struct Accusation {
    pub accuser: u16,
    pub accused: u16,
    pub message: String,
    pub complaint: Option<Complaint>,
}

/// How an accusation was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `culprit` is proven at fault by what it signed.
    Proven { culprit: u16, reason: String },
    /// Nothing can be checked: both are named.
    Unverifiable {
        accuser: u16,
        accused: u16,
        reason: String,
    },
}

impl Verdict {
    /// The complaint was checked and is false: its author is named.
    pub fn false_complaint(a: &Accusation, why: &str) -> Verdict {
        Verdict::Proven {
            culprit: a.accuser,
            reason: format!("accused node {} falsely ({}): {why}", a.accused, a.message),
        }
    }

    /// The accused is proven at fault.
    pub fn proven(a: &Accusation, why: impl std::fmt::Display) -> Verdict {
        Verdict::Proven {
            culprit: a.accused,
            reason: format!("{why} (complaint of node {}, checked)", a.accuser),
        }
    }

    /// The accusation cannot be checked: `why` says what is missing.
    pub fn unverifiable(a: &Accusation, why: impl std::fmt::Display) -> Verdict {
        Verdict::Unverifiable {
            accuser: a.accuser,
            accused: a.accused,
            reason: format!(
                "unverifiable accusation, accuser and accused both named: node {} accuses node {} ({}); {why}",
                a.accuser, a.accused, a.message
            ),
        }
    }

    /// The nodes this verdict names.
    pub fn into_excluded(self) -> Vec<Excluded> {
        match self {
            Verdict::Proven { culprit, reason } => vec![Excluded {
                node: culprit,
                reason,
            }],
            Verdict::Unverifiable {
                accuser,
                accused,
                reason,
            } => vec![
                Excluded {
                    node: accuser,
                    reason: reason.clone(),
                },
                Excluded {
                    node: accused,
                    reason,
                },
            ],
        }
    }
}

/// Settles an accusation with no complaint to check: an accusation of oneself is believed,
/// any other names both.
pub fn bare(a: &Accusation) -> Verdict {
    if a.accuser == a.accused {
        Verdict::Proven {
            culprit: a.accuser,
            reason: a.message.clone(),
        }
    } else {
        Verdict::unverifiable(a, "it comes with no evidence")
    }
}

/// The message key of a [`Complaint::Sealed`], if well formed.
pub fn message_key(hex_key: &str) -> Option<keyshares::seal::MessageKey> {
    let bytes = zeroize::Zeroizing::new(hex::decode(hex_key).ok()?);
    keyshares::seal::MessageKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accusation(accuser: u16, accused: u16) -> Accusation {
        Accusation {
            accuser,
            accused,
            message: "bad share".into(),
            complaint: None,
        }
    }

    #[test]
    fn a_bare_accusation_names_both_and_says_so() {
        let named = bare(&accusation(1, 3)).into_excluded();
        let nodes: Vec<u16> = named.iter().map(|e| e.node).collect();
        assert_eq!(nodes, vec![1, 3]);
        assert!(
            named[0].reason.contains("both named"),
            "{}",
            named[0].reason
        );
        // Blaming oneself needs no evidence.
        let own = bare(&accusation(2, 2)).into_excluded();
        assert_eq!(own.iter().map(|e| e.node).collect::<Vec<_>>(), vec![2]);
    }
}
