//! End-to-end mode, coordinator side (DESIGN.md §6): ask holders for partials sealed to the
//! requester's `reply_to` key and relay them. This node cannot open them, so it cannot check
//! proofs: it asks `[decryption] extra_partials` holders beyond t when the key has them, and
//! the requester drops bad ones. What it can check it does: every holder answers every item,
//! and none refuses an item whose ephemeral point this node accepts (that is censorship).

use std::sync::Arc;

use api::{Excluded, HolderPartials, SealedItem};
use keyshares::decrypt::{check_ephemeral, Ciphertext, Scheme};

use super::gather::{gather, holder_order, Check};
use crate::auth::ClientRequest;
use crate::ceremony::coordinator::Cost;
use crate::error::ApiError;
use crate::node::Node;
use crate::peer::{PeerRequest, PeerResponse};

pub struct Relayed {
    pub holders: Vec<HolderPartials>,
    pub excluded: Vec<Excluded>,
    pub cost: Cost,
}

/// Which items every honest holder must answer with a sealed partial.
fn accepted(scheme: Scheme, items: &[Result<Ciphertext, String>]) -> Vec<bool> {
    items
        .iter()
        .map(|item| match item {
            Ok(ct) if ct.scheme() == scheme => ct
                .ephemeral()
                .is_ok_and(|e| check_ephemeral(scheme, e).is_ok()),
            _ => false,
        })
        .collect()
}

fn check_answer(accepted: &[bool], answer: PeerResponse) -> Result<Vec<SealedItem>, String> {
    let items = match answer {
        PeerResponse::ReplyPartials { items } => items,
        PeerResponse::Error { message, .. } => return Err(message),
        _ => return Err("answered with an unexpected message".into()),
    };
    if items.len() != accepted.len() {
        return Err(format!(
            "sent {} items for {} ciphertexts",
            items.len(),
            accepted.len()
        ));
    }
    for (i, (item, ok)) in items.iter().zip(accepted).enumerate() {
        match (&item.sealed, &item.error) {
            (Some(_), None) if *ok => {}
            (None, Some(e)) if *ok => {
                return Err(format!(
                    "refused item {i}, whose ephemeral point is valid: {e}"
                ))
            }
            (None, Some(_)) => {}
            _ => return Err(format!("sent a malformed item {i}")),
        }
    }
    Ok(items)
}

/// Gathers sealed partials for the client's signed `request` from t holders, and from up to
/// `extra_partials` more.
pub async fn relay(
    node: &Arc<Node>,
    key: &str,
    scheme: Scheme,
    items: &[Result<Ciphertext, String>],
    exclude: &[u16],
    request: &ClientRequest,
) -> Result<Relayed, ApiError> {
    let active = node
        .key(key)
        .ok_or_else(|| crate::keyview::no_share(node, key))?;
    let accepted = Arc::new(accepted(scheme, items));
    let check: Check<Vec<SealedItem>> = Arc::new(move |_, answer| check_answer(&accepted, answer));
    let t = usize::from(active.record.threshold);
    let wanted = t.saturating_add(usize::from(node.config.decryption.extra_partials));
    let order = holder_order(&active.record.participants, exclude);
    let request = PeerRequest::DecryptPartial {
        key: key.to_string(),
        key_session: active.record.session.clone(),
        request: request.clone(),
    };
    let gathered = gather(node, &crate::random_id(), request, order, t, wanted, check).await?;
    let mut holders: Vec<HolderPartials> = gathered
        .good
        .into_iter()
        .map(|(node, items)| HolderPartials { node, items })
        .collect();
    tamper(node, t, &mut holders);
    Ok(Relayed {
        holders,
        excluded: gathered.excluded,
        cost: gathered.cost,
    })
}

/// A compromised relay, for tests (`Faults::tamper_relay`).
fn tamper(node: &Node, t: usize, holders: &mut Vec<HolderPartials>) {
    match node.faults().tamper_relay {
        Some("duplicate") => {
            if let Some(first) = holders.first().cloned() {
                holders.push(first);
            }
        }
        Some("drop") => holders.truncate(t.saturating_sub(1)),
        _ => {}
    }
}
