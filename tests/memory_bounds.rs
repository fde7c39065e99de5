//! The memory bounds of a long-running node are settings that take effect: the store's page
//! cache, the replay cache (which evicts at its bound), and the preprocessed nonces of keys
//! that can no longer sign (dropped, not kept for their hour). Mechanisms, not timings: the
//! soak numbers are the bench's (`keyquorum bench --soak`).

mod common;

use api::Algorithm;
use common::{eventually, Harness};

#[test]
fn the_limits_bound_the_cache_the_replay_claims_and_the_presign_pools() {
    let h = Harness::start_with(3, |c| {
        c.limits.store_cache_bytes = 2 << 20;
        c.limits.replay_cache_entries = 32;
    });
    let one = h.cluster.node(1).unwrap();
    assert_eq!(one.store.cache_bytes(), 2 << 20);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    for i in 0..40 {
        h.rt.block_on(h.client(1).sign("sig", format!("m{i}").as_bytes()))
            .unwrap();
    }
    // Every request's nonce is live for the clock-skew window, yet the cache holds 32.
    assert_eq!(one.nonces.len(), 32);
    // The coordinator's pools fill in the background; its signers hold the nonces.
    eventually("node 1's presign pools fill", || {
        (keyquorum::signing::pool::held(&one) > 0).then_some(())
    });
    let presigned = |id: u16| {
        let node = h.cluster.node(id).unwrap();
        let n = keyquorum::signing::participant::presigned(&node)
            .0
            .lock()
            .len();
        n
    };
    assert!(presigned(2) + presigned(3) > 0);
    h.rt.block_on(h.client(1).retire_key("sig")).unwrap();
    eventually("every node knows the key is retired", || {
        (1..=3)
            .all(|id| !h.cluster.node(id).unwrap().keys.read().contains_key("sig"))
            .then_some(())
    });
    // Pruned on the node's 2-second expiry tick; called here too, so the test does not wait.
    keyquorum::signing::pool::prune(&one);
    for id in [2, 3] {
        keyquorum::signing::participant::prune_presigned(&h.cluster.node(id).unwrap());
    }
    assert_eq!(keyquorum::signing::pool::held(&one), 0);
    assert_eq!(presigned(2) + presigned(3), 0);
}
