//! End-to-end mode, requester side (DESIGN.md §6): open each holder's sealed partials, check
//! every DLEQ proof against the holder's verifying share, combine t valid partials per item
//! and open it. Holders whose partials fail, or who refuse an item whose ephemeral point is
//! valid, are named; a relay that mangles the answer's shape (a holder twice, a holder that
//! holds no share, the wrong number of items) is refused as a whole.
//!
//! Sans-IO: the caller fetches the key's public data and the relayed answer.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::reply::{open_partial, reply_context};
use super::{
    check_ephemeral, combine_and_open, verify_partial, Ciphertext, PartialDecryption, Scheme,
};

/// The public data of a decryption key, as `GET /v1/keys/{name}` gives it.
#[derive(Clone, Debug)]
pub struct KeyView {
    pub scheme: Scheme,
    /// The FROST group verifying key (Edwards point for HPKE keys, SEC1 for secp256k1).
    pub group_key: Vec<u8>,
    pub threshold: u16,
    /// Each holder's verifying share Y_i.
    pub verifying_shares: BTreeMap<u16, Vec<u8>>,
}

/// What the sealed partials are bound to: the key name, the client and the request's nonce.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub key: &'a str,
    pub client: &'a str,
    pub nonce: &'a str,
}

/// One holder's answer for one item.
#[derive(Clone, Debug)]
pub enum HolderItem {
    Sealed(Vec<u8>),
    Error(String),
}

/// One holder's answers for every item, as relayed.
#[derive(Clone, Debug)]
pub struct HolderAnswer {
    pub node: u16,
    pub items: Vec<HolderItem>,
}

/// The relayed answer is malformed as a whole: only the relay can have done that.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    #[error("the answer names holder {0} twice")]
    DuplicateHolder(u16),
    #[error("the answer names node {0}, which holds no share of this key")]
    NotAHolder(u16),
    #[error("holder {node} has {got} items for {expected} ciphertexts")]
    ItemCount {
        node: u16,
        got: usize,
        expected: usize,
    },
}

/// The outcome of an end-to-end decryption.
#[derive(Debug)]
pub struct Opened {
    /// One per ciphertext: the plaintext, or why it could not be opened.
    pub results: Vec<Result<Zeroizing<Vec<u8>>, String>>,
    /// Holders whose partials were combined, for at least one item.
    pub contributors: Vec<u16>,
    /// Holders that sent an invalid partial or refused a valid item, with the first reason.
    pub culprits: BTreeMap<u16, String>,
    /// Some item had fewer than t valid partials: ask again, excluding the culprits.
    pub short: bool,
}

/// Checks and combines the relayed answers for `ciphertexts` (each parsed, or why not).
pub fn open_answers(
    view: &KeyView,
    binding: Binding<'_>,
    reply_secret: &[u8; 32],
    ciphertexts: &[Result<Ciphertext, String>],
    answers: &[HolderAnswer],
) -> Result<Opened, RelayError> {
    check_shape(view, ciphertexts.len(), answers)?;
    let t = usize::from(view.threshold);
    let mut culprits: BTreeMap<u16, String> = BTreeMap::new();
    let mut contributors = std::collections::BTreeSet::new();
    let mut short = false;
    let mut results = Vec::with_capacity(ciphertexts.len());
    for (i, ct) in ciphertexts.iter().enumerate() {
        let ct = match ct {
            Ok(ct) => ct,
            Err(e) => {
                results.push(Err(e.clone()));
                continue;
            }
        };
        let ephemeral = match ct.ephemeral() {
            Ok(e) if ct.scheme() == view.scheme => e,
            Ok(_) => {
                results.push(Err(format!("not a {} ciphertext", view.scheme)));
                continue;
            }
            Err(e) => {
                results.push(Err(e.to_string()));
                continue;
            }
        };
        // An invalid ephemeral point is refused by every honest holder: nobody to blame.
        if let Err(e) = check_ephemeral(view.scheme, ephemeral) {
            results.push(Err(e.to_string()));
            continue;
        }
        let mut valid: BTreeMap<u16, PartialDecryption> = BTreeMap::new();
        for answer in answers {
            if culprits.contains_key(&answer.node) {
                continue;
            }
            let context = reply_context(binding.key, binding.client, binding.nonce, answer.node, i);
            let checked = match &answer.items[i] {
                HolderItem::Error(e) => Err(format!("refused item {i}, a valid ciphertext: {e}")),
                HolderItem::Sealed(sealed) => {
                    check_partial(view, reply_secret, &context, answer.node, ephemeral, sealed)
                        .map_err(|e| format!("item {i}: {e}"))
                }
            };
            match checked {
                Ok(p) => {
                    valid.insert(answer.node, p);
                }
                Err(reason) => {
                    culprits.insert(answer.node, reason);
                }
            }
        }
        // A holder found bad on a later item is not combined on this one either.
        valid.retain(|node, _| !culprits.contains_key(node));
        if valid.len() < t {
            short = true;
            results.push(Err(format!(
                "only {} of the {t} valid partial decryptions needed",
                valid.len()
            )));
            continue;
        }
        let chosen: BTreeMap<u16, PartialDecryption> = valid.into_iter().take(t).collect();
        contributors.extend(chosen.keys().copied());
        results.push(combine_and_open(&view.group_key, &chosen, ct).map_err(|e| e.to_string()));
    }
    Ok(Opened {
        results,
        contributors: contributors.into_iter().collect(),
        culprits,
        short,
    })
}

fn check_shape(view: &KeyView, items: usize, answers: &[HolderAnswer]) -> Result<(), RelayError> {
    let mut seen = std::collections::BTreeSet::new();
    for answer in answers {
        if !seen.insert(answer.node) {
            return Err(RelayError::DuplicateHolder(answer.node));
        }
        if !view.verifying_shares.contains_key(&answer.node) {
            return Err(RelayError::NotAHolder(answer.node));
        }
        if answer.items.len() != items {
            return Err(RelayError::ItemCount {
                node: answer.node,
                got: answer.items.len(),
                expected: items,
            });
        }
    }
    Ok(())
}

fn check_partial(
    view: &KeyView,
    reply_secret: &[u8; 32],
    context: &[u8],
    node: u16,
    ephemeral: &[u8],
    sealed: &[u8],
) -> Result<PartialDecryption, String> {
    let partial = open_partial(view.scheme, reply_secret, context, sealed)
        .ok_or("sealed partial does not open with the reply key (tampered, or sealed to another key or request)")?;
    let share = view
        .verifying_shares
        .get(&node)
        .ok_or("has no verifying share for this key")?;
    verify_partial(view.scheme, share, ephemeral, &partial)
        .map_err(|e| format!("invalid partial decryption: {e}"))?;
    Ok(partial)
}
