//! End-to-end mode, requester side (DESIGN.md §6): open each holder's sealed partials, check
//! every DLEQ proof against the holder's verifying share, combine t valid partials per item
//! and open it. Holders whose partials fail, or who refuse an item whose ephemeral point is
//! valid, are named; a relay that mangles the answer's shape (a holder twice, a holder that
//! holds no share, the wrong number of items) is refused as a whole.
//!
//! Sans-IO: the caller fetches the key's public data and the relayed answer.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use rand_core::{CryptoRng, RngCore};

use super::prepared::{CheckedPartial, Coefficients, Combiner, Ephemeral, VerifyingShare};
use super::reply::{open_partial, reply_context};
use super::{Ciphertext, PartialDecryption, Scheme};

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
/// The random weights of the batched proof checks come from the OS.
pub fn open_answers(
    view: &KeyView,
    binding: Binding<'_>,
    reply_secret: &[u8; 32],
    ciphertexts: &[Result<Ciphertext, String>],
    answers: &[HolderAnswer],
) -> Result<Opened, RelayError> {
    open_answers_with(
        view,
        binding,
        reply_secret,
        ciphertexts,
        answers,
        &mut rand_core::OsRng,
    )
}

/// [`open_answers`] with the random weights of the batched proof checks from `rng`. Every
/// ephemeral point and verifying share is decoded once, and each holder's proofs are checked
/// in one batch (each alone only when the batch fails, to find the first bad one).
pub fn open_answers_with<R: RngCore + CryptoRng>(
    view: &KeyView,
    binding: Binding<'_>,
    reply_secret: &[u8; 32],
    ciphertexts: &[Result<Ciphertext, String>],
    answers: &[HolderAnswer],
    rng: &mut R,
) -> Result<Opened, RelayError> {
    check_shape(view, ciphertexts.len(), answers)?;
    let t = usize::from(view.threshold);
    let points: Vec<Result<Ephemeral, String>> = ciphertexts
        .iter()
        .map(|ct| {
            let ct = ct.as_ref().map_err(Clone::clone)?;
            let ephemeral = match ct.ephemeral() {
                Ok(e) if ct.scheme() == view.scheme => e,
                Ok(_) => return Err(format!("not a {} ciphertext", view.scheme)),
                Err(e) => return Err(e.to_string()),
            };
            // An invalid ephemeral point is refused by every honest holder: nobody to blame.
            Ephemeral::parse(view.scheme, ephemeral).map_err(|e| e.to_string())
        })
        .collect();
    let checked: Vec<HolderChecked> = answers
        .iter()
        .map(|answer| check_holder(view, binding, reply_secret, &points, answer, rng))
        .collect();
    let combiner = Combiner::new(view.scheme, &view.group_key).map_err(|e| e.to_string());
    let mut coefficients: BTreeMap<Vec<u16>, Result<Coefficients, String>> = BTreeMap::new();
    let mut contributors = std::collections::BTreeSet::new();
    let mut short = false;
    let mut results = Vec::with_capacity(ciphertexts.len());
    for (i, (ct, point)) in ciphertexts.iter().zip(&points).enumerate() {
        let (Ok(ct), Ok(_)) = (ct, point) else {
            results.push(Err(point.as_ref().err().cloned().unwrap_or_default()));
            continue;
        };
        // By holder id, as a map would order them; a holder found bad on this item or an
        // earlier one is not combined.
        let mut valid: Vec<(u16, &CheckedPartial)> = checked
            .iter()
            .filter_map(|h| Some((h.node, h.partials.get(i)?.as_ref()?)))
            .collect();
        valid.sort_by_key(|(node, _)| *node);
        if valid.len() < t {
            short = true;
            results.push(Err(format!(
                "only {} of the {t} valid partial decryptions needed",
                valid.len()
            )));
            continue;
        }
        valid.truncate(t);
        let ids: Vec<u16> = valid.iter().map(|(node, _)| *node).collect();
        contributors.extend(ids.iter().copied());
        let partials: Vec<&CheckedPartial> = valid.iter().map(|(_, p)| *p).collect();
        let lambdas = coefficients
            .entry(ids.clone())
            .or_insert_with(|| Coefficients::new(view.scheme, &ids).map_err(|e| e.to_string()));
        let opened = match (&combiner, &*lambdas) {
            (Ok(combiner), Ok(lambdas)) => combiner
                .open(lambdas, &partials, ct)
                .map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        results.push(opened);
    }
    let culprits = checked
        .into_iter()
        .filter_map(|h| Some((h.node, h.failure?)))
        .collect();
    Ok(Opened {
        results,
        contributors: contributors.into_iter().collect(),
        culprits,
        short,
    })
}

/// One holder's answer, checked: its verified partial for each item before its first bad
/// one, and why that one is bad.
struct HolderChecked {
    node: u16,
    /// By item; `None` where there is nothing usable.
    partials: Vec<Option<CheckedPartial>>,
    failure: Option<String>,
}

/// Opens a holder's sealed partials in item order up to its first refusal of a valid item or
/// unopenable partial, then checks their proofs in one batch: whatever precedes the first
/// failure is usable, as if the items were checked one by one.
fn check_holder<R: RngCore + CryptoRng>(
    view: &KeyView,
    binding: Binding<'_>,
    reply_secret: &[u8; 32],
    points: &[Result<Ephemeral, String>],
    answer: &HolderAnswer,
    rng: &mut R,
) -> HolderChecked {
    let mut partials: Vec<Option<CheckedPartial>> = points.iter().map(|_| None).collect();
    let mut failure: Option<(usize, String)> = None;
    let mut opened: Vec<(usize, PartialDecryption)> = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if point.is_err() {
            continue;
        }
        let context = reply_context(binding.key, binding.client, binding.nonce, answer.node, i);
        match &answer.items[i] {
            HolderItem::Error(e) => {
                failure = Some((i, format!("refused item {i}, a valid ciphertext: {e}")));
                break;
            }
            HolderItem::Sealed(sealed) => {
                match open_partial(view.scheme, reply_secret, &context, sealed) {
                    Some(p) => opened.push((i, p)),
                    None => {
                        let why = "sealed partial does not open with the reply key (tampered, or sealed to another key or request)";
                        failure = Some((i, format!("item {i}: {why}")));
                        break;
                    }
                }
            }
        }
    }
    let share = view
        .verifying_shares
        .get(&answer.node)
        .ok_or_else(|| "has no verifying share for this key".to_string())
        .and_then(|b| VerifyingShare::decode(view.scheme, b).map_err(|e| e.to_string()));
    let verified: Vec<Result<CheckedPartial, String>> = match &share {
        Ok(share) => {
            let items: Vec<(&Ephemeral, &PartialDecryption)> = opened
                .iter()
                .filter_map(|(i, p)| Some((points[*i].as_ref().ok()?, p)))
                .collect();
            CheckedPartial::verify_many(share, &items, rng)
                .into_iter()
                .map(|r| r.map_err(|e| format!("invalid partial decryption: {e}")))
                .collect()
        }
        Err(e) => opened.iter().map(|_| Err(e.clone())).collect(),
    };
    for ((i, _), result) in opened.iter().zip(verified) {
        if failure.as_ref().is_some_and(|(f, _)| f < i) {
            break;
        }
        match result {
            Ok(p) => partials[*i] = Some(p),
            Err(reason) => {
                failure = Some((*i, format!("item {i}: {reason}")));
                break;
            }
        }
    }
    HolderChecked {
        node: answer.node,
        partials,
        failure: failure.map(|(_, reason)| reason),
    }
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
