//! Atomic key generations (DESIGN.md §11): a fault at every cut point of a refresh, reshare,
//! key creation or repair ends, once the fault clears, with every node on one generation and
//! the key signing — checked with ed25519-dalek, an implementation we did not write.

mod common;

use std::time::{Duration, Instant};

use api::{Algorithm, KeyInfo, RepairRequest};
use common::keys::*;
use common::Harness;

/// Polls `done` until it holds, for at most 20 s (the reconciler runs every 300 ms here).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every node in `nodes` is on `generation` of `key` with nothing pending and the same
/// public data, and no node keeps the replaced share any more.
fn settled_on(h: &Harness, nodes: &[u16], key: &str, generation: u32) -> bool {
    let infos: Vec<KeyInfo> = nodes
        .iter()
        .filter_map(|n| h.rt.block_on(h.client(*n).get_key(key)).ok())
        .collect();
    infos.len() == nodes.len()
        && infos
            .iter()
            .all(|i| i.generation == generation && i.pending_generation.is_none())
        && infos.windows(2).all(|w| w[0] == w[1])
        && nodes.iter().all(|n| {
            h.cluster
                .node(*n)
                .is_some_and(|node| node.previous_keys.read().get(key).is_none())
        })
}

fn signs_everywhere(h: &Harness, via: &[u16], key: &KeyInfo) {
    for n in via {
        let message = format!("signed through node {n}");
        let signed = sign(h, *n, &key.name, message.as_bytes());
        assert!(
            verifies(key, message.as_bytes(), &signed.signature),
            "node {n}"
        );
    }
}

fn refresh(h: &Harness, via: u16, key: &str) -> Result<KeyInfo, api::ClientError> {
    h.rt.block_on(h.client(via).refresh_key(key))
}

/// The partition: a 3-of-4 refresh whose commit never reaches node 4 and whose close
/// reaches nobody. It commits; node 4, in doubt, signs on the old generation meanwhile (the
/// others still hold it), then settles from its peers as soon as it can reach them.
#[test]
fn a_commit_lost_to_one_member_and_a_lost_close_lose_nothing() {
    let h = Harness::start(4);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 3, None)
        .unwrap();
    set_faults(&h, 4, &|f| {
        f.unresponsive_kinds.insert("dkg.commit");
        f.unresponsive_kinds.insert("dkg.close");
    });
    for n in 2..=3 {
        set_faults(&h, n, &|f| {
            f.unresponsive_kinds.insert("dkg.close");
        });
    }
    // Node 4 cannot settle from anyone yet: the peers do not answer its questions.
    for n in 1..=3 {
        set_faults(&h, n, &|f| {
            f.unresponsive_kinds.insert("generation.status");
        });
    }
    let refreshed = refresh(&h, 1, "manifests").unwrap();
    assert_eq!(refreshed.generation, 1);
    assert_eq!(refreshed.public_key, key.public_key);

    // In doubt: node 4 holds generation 1 sealed, still signs with generation 0.
    let four = info(&h, 4, "manifests");
    assert_eq!((four.generation, four.pending_generation), (0, Some(1)));
    assert_eq!(info(&h, 2, "manifests").generation, 1);
    assert!(h
        .cluster
        .node(2)
        .unwrap()
        .previous_keys
        .read()
        .contains_key("manifests"));
    // Node 4 coordinates on generation 0, which nodes 1–3 kept; node 1 on generation 1 with
    // nodes 2 and 3.
    signs_everywhere(&h, &[4, 1], &key);
    // `GET /v1/status` (and so `keyquorum status`) shows the holders disagreeing.
    let status = h.rt.block_on(h.client(2).status()).unwrap();
    let views: Vec<(u16, u32, Option<u32>, bool)> = status
        .unsettled_keys
        .iter()
        .filter(|k| k.key == "manifests")
        .map(|k| (k.node, k.generation, k.pending_generation, k.keeps_previous))
        .collect();
    assert_eq!(
        views,
        vec![
            (2, 1, None, true),
            (1, 1, None, true),
            (3, 1, None, true),
            (4, 0, Some(1), false)
        ]
    );

    for n in 1..=4 {
        set_faults(&h, n, &|f| f.unresponsive_kinds.clear());
    }
    eventually("every node on generation 1, the old shares erased", || {
        settled_on(&h, &[1, 2, 3, 4], "manifests", 1)
    });
    signs_everywhere(&h, &[1, 2, 3, 4], &key);
    let status = h.rt.block_on(h.client(2).status()).unwrap();
    assert!(
        status.unsettled_keys.is_empty(),
        "{:?}",
        status.unsettled_keys
    );
}

/// A signer in doubt that a coordinator on the new generation asks settles with it first,
/// with no reconciler tick to help (they are ten minutes apart here).
#[test]
fn a_signer_in_doubt_settles_with_the_coordinator_that_asks_it() {
    let h = Harness::start_with(3, |c| c.timeouts.reconcile_ms = 600_000);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 3, None)
        .unwrap();
    set_faults(&h, 3, &|f| {
        f.unresponsive_kinds.insert("dkg.commit");
    });
    refresh(&h, 1, "manifests").unwrap();
    assert_eq!(info(&h, 3, "manifests").pending_generation, Some(1));
    // Node 1's commit still cannot reach node 3 (its reconciler retries at once, and could
    // otherwise win the race): node 2, on generation 1, needs node 3 (3-of-3), and node 3
    // settles with node 2 first.
    signs_everywhere(&h, &[2], &key);
    let three = info(&h, 3, "manifests");
    assert_eq!((three.generation, three.pending_generation), (1, None));
    let trail = h.rt.block_on(h.client(3).audit(None, 1000)).unwrap();
    let activated = trail
        .entries
        .iter()
        .find(|e| e.action == "key.refresh" && e.role == "participant")
        .expect("node 3 audited the activation");
    assert_eq!(
        activated.details["via"], "node 2",
        "{:?}",
        activated.details
    );
    set_faults(&h, 3, &|f| f.unresponsive_kinds.clear());
}

/// The coordinator stops dead after it collected every confirmation, before it committed:
/// restarted, it refuses the ceremony, and every member discards what it sealed.
#[test]
fn a_coordinator_stopped_before_its_commit_aborts_what_it_started_after_a_restart() {
    let mut h = Harness::start(3);
    let key = two_of_three(&h, "manifests");
    set_faults(&h, 1, &|f| f.halt_coordinator_at = Some("confirmations"));
    // The peers cannot ask node 1 until it is back.
    set_faults(&h, 1, &|f| {
        f.unresponsive_kinds.insert("generation.status");
    });
    let (status, _) = Harness::expect_api_error(refresh(&h, 1, "manifests"));
    assert_eq!(status, 503);
    assert_eq!(info(&h, 2, "manifests").pending_generation, Some(1));
    // In doubt, nodes 2 and 3 still sign on generation 0.
    signs_everywhere(&h, &[2], &key);

    h.cluster.stop(1);
    h.cluster.start(1).unwrap();
    eventually("everyone back on generation 0", || {
        settled_on(&h, &[1, 2, 3], "manifests", 0)
    });
    signs_everywhere(&h, &[1, 2, 3], &key);
    // And the key renews again.
    assert_eq!(refresh(&h, 2, "manifests").unwrap().generation, 1);
}

/// The coordinator stops dead right after storing the certificate: it committed, so after a
/// restart it hands the certificate to every member.
#[test]
fn a_coordinator_stopped_after_its_commit_finishes_it_after_a_restart() {
    let mut h = Harness::start(3);
    let key = two_of_three(&h, "manifests");
    set_faults(&h, 1, &|f| f.halt_coordinator_at = Some("commit"));
    set_faults(&h, 1, &|f| {
        f.unresponsive_kinds.insert("generation.status");
    });
    let (status, _) = Harness::expect_api_error(refresh(&h, 1, "manifests"));
    assert_eq!(status, 503);
    h.cluster.stop(1);
    h.cluster.start(1).unwrap();
    eventually("everyone on generation 1", || {
        settled_on(&h, &[1, 2, 3], "manifests", 1)
    });
    signs_everywhere(&h, &[1, 2, 3], &key);
}

/// A member that sealed its result and confirmed, but whose answer never arrived: the
/// coordinator aborts, the abort is lost too, and the member learns of it by asking.
#[test]
fn a_lost_confirmation_and_a_lost_abort_end_on_the_old_generation() {
    let h = Harness::start(3);
    let key = two_of_three(&h, "manifests");
    set_faults(&h, 3, &|f| {
        f.lost_answers.insert("dkg.round2");
        f.unresponsive_kinds.insert("dkg.abort");
    });
    let (status, body) = Harness::expect_api_error(refresh(&h, 1, "manifests"));
    assert!(matches!(status, 502 | 503), "{status}: {}", body.message);
    set_faults(&h, 3, &|f| {
        f.lost_answers.clear();
        f.unresponsive_kinds.clear();
    });
    eventually("everyone back on generation 0", || {
        settled_on(&h, &[1, 2, 3], "manifests", 0)
    });
    signs_everywhere(&h, &[1, 2, 3], &key);
}

/// A member killed after it stored its pending share (it never saw the commit) comes back in
/// doubt and settles from its peers.
#[test]
fn a_member_killed_after_sealing_its_share_settles_after_a_restart() {
    let mut h = Harness::start(3);
    let key = two_of_three(&h, "manifests");
    set_faults(&h, 3, &|f| {
        f.unresponsive_kinds.insert("dkg.commit");
        f.unresponsive_kinds.insert("dkg.close");
    });
    refresh(&h, 1, "manifests").unwrap();
    h.cluster.stop(3);
    // Down, node 3 holds generation 1 only on disk; nodes 1 and 2 keep generation 0 for it.
    assert!(h
        .cluster
        .node(1)
        .unwrap()
        .previous_keys
        .read()
        .contains_key("manifests"));
    h.cluster.start(3).unwrap();
    eventually("everyone on generation 1", || {
        settled_on(&h, &[1, 2, 3], "manifests", 1)
    });
    signs_everywhere(&h, &[1, 2, 3], &key);
}

/// A reshare to a new member whose commit is lost: the new member settles and signs.
#[test]
fn a_reshare_whose_commit_misses_the_new_member_completes() {
    let h = Harness::start(4);
    let key = two_of_three(&h, "manifests");
    set_faults(&h, 4, &|f| {
        f.unresponsive_kinds.insert("dkg.commit");
    });
    let reshared = reshare(&h, 2, "manifests", vec![2, 3, 4], 2, None).unwrap();
    assert_eq!(reshared.participants, vec![2, 3, 4]);
    set_faults(&h, 4, &|f| f.unresponsive_kinds.clear());
    eventually("everyone on generation 1", || {
        settled_on(&h, &[1, 2, 3, 4], "manifests", 1)
    });
    assert!(share_of(&h, 1, "manifests").is_none());
    h.rt.block_on(async {
        let answer = h.client(1).sign("manifests", b"x").await;
        assert!(answer.is_err(), "node 1 left the committee");
    });
    signs_everywhere(&h, &[2, 3, 4], &key);
}

/// A key creation whose commit reaches one member only: the others settle from it.
#[test]
fn a_key_creation_committed_to_one_member_reaches_all() {
    let h = Harness::start(3);
    for n in 2..=3 {
        set_faults(&h, n, &|f| {
            f.unresponsive_kinds.insert("dkg.commit");
        });
    }
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    for n in 2..=3 {
        set_faults(&h, n, &|f| f.unresponsive_kinds.clear());
    }
    eventually("every node holds generation 0", || {
        settled_on(&h, &[1, 2, 3], "manifests", 0)
    });
    signs_everywhere(&h, &[1, 2, 3], &key);
}

/// A repaired node killed before its share arrives holds nothing, and a second repair works.
#[test]
fn a_repair_interrupted_at_the_repaired_node_leaves_nothing_and_can_run_again() {
    let mut h = Harness::start(3);
    let key = two_of_three(&h, "manifests");
    let before = share_of(&h, 2, "manifests").unwrap();
    wipe_store(&mut h, 2);
    set_faults(&h, 2, &|f| {
        f.unresponsive_kinds.insert("repair.values");
    });
    let repair = RepairRequest {
        node: 2,
        helpers: None,
    };
    let answer = h.rt.block_on(h.client(1).repair_key("manifests", &repair));
    assert!(answer.is_err());
    h.cluster.stop(2);
    h.cluster.start(2).unwrap();
    assert!(share_of(&h, 2, "manifests").is_none());
    h.rt.block_on(h.client(1).repair_key("manifests", &repair))
        .unwrap();
    assert_eq!(share_of(&h, 2, "manifests").unwrap(), before);
    signs_everywhere(&h, &[2], &key);
}

/// A member that wants a ceremony's certificate and a refusal of it to both exist (DESIGN.md
/// §11) gets node 2's refusal of a session it means to coordinate, then asks node 2 to refuse
/// more made-up sessions than it may, to push the first out before running it. The first stays
/// refused; the flood costs only the flooder's own share of refusals; sessions outside their
/// window are refused without being kept (or, from the future, not at all); and the cluster
/// goes on refreshing keys.
#[test]
fn a_member_cannot_push_out_a_refusal_that_still_matters() {
    use keyquorum::ceremony::window;
    use keyquorum::peer::{messages::GenerationAnswer, PeerRequest, PeerResponse};
    let h = Harness::start_with(3, |c| c.limits.refusals_per_peer = 4);
    h.create(1, "k", Algorithm::FrostEd25519, 2, None).unwrap();
    let node2 = h.cluster.node(2).unwrap();
    let ask = |from: u16, session: &str| -> Option<u16> {
        let request = PeerRequest::GenerationStatus {
            key: "k".into(),
            session: session.into(),
        };
        let asker = h.cluster.node(from).unwrap();
        let answer =
            h.rt.block_on(keyquorum::transport::call(
                &asker,
                2,
                &keyquorum::random_id(),
                &request,
                None,
            ))
            .unwrap();
        match answer {
            PeerResponse::Generation(a) => {
                let GenerationAnswer { refusal, .. } = *a;
                refusal.map(|r| r.signer)
            }
            other => panic!("{other:?}"),
        }
    };
    let now = keyquorum::clock::now_ms();
    let target = window::mint(now);
    assert_eq!(ask(1, &target), Some(2));
    let granted = (0..10)
        .filter(|_| ask(1, &window::mint(now)).is_some())
        .count();
    assert_eq!(granted, 3, "node 1 holds at most 4 live refusals");
    assert!(node2.store.is_refused(&target).unwrap());
    // Node 3's requests have their own share.
    assert_eq!(ask(3, &window::mint(now)), Some(2));
    assert_eq!(node2.store.refusals(), 5);
    // A ceremony that can no longer run is refused without being kept, even past the limit.
    assert_eq!(ask(1, &window::mint(now - 3_600_000)), Some(2));
    assert_eq!(ask(1, &keyquorum::random_id()), Some(2));
    // One minted ahead of node 2's clock could be kept for as long as the asker chose.
    assert_eq!(ask(3, &window::mint(now + 3_600_000)), None);
    assert_eq!(node2.store.refusals(), 5);
    // Ceremonies the coordinator mints itself are not affected.
    let refreshed = refresh(&h, 1, "k").unwrap();
    assert_eq!(refreshed.generation, 1);
    eventually("every node on generation 1", || {
        settled_on(&h, &[1, 2, 3], "k", 1)
    });
}

/// A coordinator that runs a session minted outside the members' window (kept back, perhaps,
/// until a refusal of it was forgotten) gets no member to join: the ceremony fails naming the
/// reason, and the key stays on its generation.
#[test]
fn members_refuse_to_join_a_ceremony_minted_outside_their_window() {
    let h = Harness::start(3);
    h.create(1, "k", Algorithm::FrostEd25519, 2, None).unwrap();
    set_faults(&h, 1, &|f| f.mint_sessions_ago_ms = 120_000);
    let err = refresh(&h, 1, "k").unwrap_err();
    assert!(err.to_string().contains("minted at"), "{err}");
    set_faults(&h, 1, &|f| f.mint_sessions_ago_ms = 0);
    assert!(settled_on(&h, &[1, 2, 3], "k", 0));
    assert_eq!(refresh(&h, 1, "k").unwrap().generation, 1);
}
