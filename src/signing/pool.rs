//! A coordinator's pools of its signers' preprocessed nonce commitments (RFC 9591 §5.1: the
//! commit round may run before the message is known). With t signers' commitments at hand a
//! signature takes one round trip; the pools refill in the background, in batches, and live in
//! memory only, per generation of a key, so a restart or a refresh empties them and signing
//! falls back to two rounds meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use api::Excluded;
use parking_lot::Mutex;

use crate::node::{ActiveKey, Node};
use crate::peer::{PeerRequest, PeerResponse};
use crate::transport;

/// Commitments taken for one signature, by signer: (id, bytes) per message.
pub type Taken = BTreeMap<u16, Vec<(String, Vec<u8>)>>;

/// (key, generation session, signer) → its commitments (id, bytes), oldest first.
type Held = HashMap<(String, String, u16), VecDeque<(String, Vec<u8>)>>;

#[derive(Default)]
pub struct Pools {
    held: Mutex<Held>,
    /// Generations whose pools are being refilled now.
    refilling: Mutex<HashSet<String>>,
}

impl crate::sessions::RoleState for Pools {
    fn expire(&self, _: &crate::config::Timeouts) {}

    fn clear(&self) {
        self.held.lock().clear();
    }
}

fn pools(node: &Node) -> Arc<Pools> {
    node.sessions.of::<Pools>()
}

/// Takes `count` commitments from each of t signers of `active` whose pools hold that many
/// (this node first), or nothing when fewer than t do. Pools of the key's other generations
/// are dropped: their commitments can never sign again.
pub fn take(node: &Node, active: &ActiveKey, count: usize, excluded: &[Excluded]) -> Option<Taken> {
    let record = &active.record;
    let t = usize::from(record.threshold);
    let pools = pools(node);
    let mut held = pools.held.lock();
    let stale: Vec<_> = held
        .keys()
        .filter(|(k, s, _)| *k == record.name && *s != record.session)
        .cloned()
        .collect();
    for key in stale {
        if let Some(gone) = held.remove(&key) {
            let n = gone.len() as i64;
            node.metrics
                .add_presign_commitments(&node.config.members, key.2, -n);
        }
    }
    let mut ready: Vec<u16> = record
        .participants
        .iter()
        .copied()
        .filter(|p| excluded.iter().all(|e| e.node != *p))
        .filter(|p| {
            held.get(&(record.name.clone(), record.session.clone(), *p))
                .is_some_and(|q| q.len() >= count)
        })
        .collect();
    if ready.len() < t {
        return None;
    }
    ready.sort_by_key(|p| (*p != node.id(), *p));
    let mut taken = BTreeMap::new();
    for p in ready.into_iter().take(t) {
        let queue = held.get_mut(&(record.name.clone(), record.session.clone(), p))?;
        taken.insert(p, queue.drain(..count).collect::<Vec<_>>());
        node.metrics
            .add_presign_commitments(&node.config.members, p, -(count as i64));
    }
    Some(taken)
}

/// The generations this node may still sign with: the active ones and those they replaced.
pub(crate) fn live_generations(node: &Node) -> HashSet<(String, String)> {
    let active = node.keys.read();
    let previous = node.previous_keys.read();
    active
        .values()
        .chain(previous.values())
        .map(|k| (k.record.name.clone(), k.record.session.clone()))
        .collect()
}

/// Drops the pools of generations this node can no longer sign with (retired or replaced
/// keys): nothing else would, and a retired key is never asked to sign again.
pub fn prune(node: &Node) {
    let live = live_generations(node);
    let pools = pools(node);
    let mut held = pools.held.lock();
    held.retain(|(key, session, signer), queue| {
        let keep = live.contains(&(key.clone(), session.clone()));
        if !keep {
            node.metrics.add_presign_commitments(
                &node.config.members,
                *signer,
                -(queue.len() as i64),
            );
        }
        keep
    });
}

/// Commitments held in this node's pools, as a coordinator.
pub fn held(node: &Node) -> usize {
    pools(node).held.lock().values().map(VecDeque::len).sum()
}

/// Drops `signer`'s pool of `active`'s generation: it no longer holds those nonces.
pub fn forget(node: &Node, active: &ActiveKey, signer: u16) {
    let record = &active.record;
    let key = (record.name.clone(), record.session.clone(), signer);
    if let Some(gone) = pools(node).held.lock().remove(&key) {
        node.metrics
            .add_presign_commitments(&node.config.members, signer, -(gone.len() as i64));
    }
}

/// Refills, in the background, every signer's pool of `active` that fell to
/// `signing.presign_pool` − `signing.presign_batch` or below, up to `signing.presign_pool`, in
/// batches of `signing.presign_batch`.
pub fn spawn_refill(node: &Arc<Node>, active: &Arc<ActiveKey>) {
    let settings = &node.config.signing;
    if settings.presign_pool == 0 || settings.presign_batch == 0 {
        return;
    }
    if !pools(node)
        .refilling
        .lock()
        .insert(active.record.session.clone())
    {
        return;
    }
    let (node, active) = (node.clone(), active.clone());
    actix_web::rt::spawn(async move {
        let signers = active.record.participants.clone();
        futures::future::join_all(signers.iter().map(|p| refill(&node, &active, *p))).await;
        pools(&node).refilling.lock().remove(&active.record.session);
    });
}

/// Tops up `signer`'s pool; stops at the first refusal or silence (the next signature tries
/// again).
async fn refill(node: &Arc<Node>, active: &ActiveKey, signer: u16) {
    let record = &active.record;
    let pool_key = (record.name.clone(), record.session.clone(), signer);
    let (target, batch) = (
        node.config.signing.presign_pool as usize,
        node.config.signing.presign_batch,
    );
    // Only a pool down to its low-water mark is refilled, and in whole batches: topping up
    // after every signature would cost a round trip per signature for one commitment each.
    let low_water = target.saturating_sub(batch as usize);
    let mut first = true;
    loop {
        let level = pools(node)
            .held
            .lock()
            .get(&pool_key)
            .map_or(0, VecDeque::len);
        if level >= target || (first && level > low_water) {
            return;
        }
        first = false;
        let count = batch.min((target - level) as u32);
        let request = PeerRequest::SignPresign {
            key: record.name.clone(),
            key_session: record.session.clone(),
            count,
        };
        let answer = transport::call(node, signer, &crate::random_id(), &request, None).await;
        let Ok(PeerResponse::Presigned { ids, commitments }) = answer else {
            tracing::debug!(signer, key = %record.name, "no preprocessed commitments this time");
            return;
        };
        if ids.len() != commitments.len() || ids.is_empty() {
            return;
        }
        let added = ids.len() as i64;
        pools(node)
            .held
            .lock()
            .entry(pool_key.clone())
            .or_default()
            .extend(ids.into_iter().zip(commitments));
        node.metrics
            .add_presign_commitments(&node.config.members, signer, added);
    }
}
