//! Key ceremonies over real HTTP on loopback (issue #2).

mod common;

use api::{Algorithm, Client};
use common::{culprit_ids, interpolate_verifying_shares, Harness};
use keyquorum::identity::Identity;
use keyquorum::peer::{Envelope, PeerRequest};

fn check_ceremonies(n: usize, t: u16) {
    let h = Harness::start(n);
    for (i, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        let name = format!("key-{}", algorithm.as_str());
        let via = (i % n) as u16 + 1;
        let created = h.create(via, &name, algorithm, t, None).unwrap();
        assert_eq!(created.participants, (1..=n as u16).collect::<Vec<_>>());
        assert_eq!(created.threshold, t);
        let expected_len = match algorithm {
            Algorithm::FrostEd25519 | Algorithm::HpkeX25519 => 32,
            _ => 33,
        };
        assert_eq!(
            hex::decode(&created.public_key).unwrap().len(),
            expected_len
        );
        let mut seen = Vec::new();
        for id in 1..=n as u16 {
            let mut info = h.rt.block_on(h.client(id).get_key(&name)).unwrap();
            info.ceremony = None;
            seen.push(info);
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree on {name}"
        );
        // Any t verifying shares interpolate to the group key; public data only.
        let first: Vec<u16> = (1..=t).collect();
        let last: Vec<u16> = (n as u16 - t + 1..=n as u16).collect();
        for ids in [first, last] {
            assert_eq!(
                hex::encode(interpolate_verifying_shares(&seen[0], &ids)),
                seen[0].group_verifying_key,
                "{name} {ids:?}"
            );
        }
        // t-1 shares do not.
        let short: Vec<u16> = (1..t).collect();
        assert_ne!(
            hex::encode(interpolate_verifying_shares(&seen[0], &short)),
            seen[0].group_verifying_key
        );
        if algorithm == Algorithm::HpkeX25519 {
            // The X25519 key is the Montgomery form of the Edwards group key.
            let edwards: [u8; 32] = hex::decode(&created.group_verifying_key)
                .unwrap()
                .try_into()
                .unwrap();
            let point = curve25519_dalek::edwards::CompressedEdwardsY(edwards)
                .decompress()
                .unwrap();
            assert_eq!(
                hex::encode(point.to_montgomery().to_bytes()),
                created.public_key
            );
        } else {
            assert_eq!(created.public_key, created.group_verifying_key);
        }
    }
    let list = h.rt.block_on(h.client(1).list_keys()).unwrap();
    assert_eq!(list.keys.len(), 4);
}

#[test]
fn three_node_ceremonies_for_every_algorithm() {
    check_ceremonies(3, 2);
}

#[test]
fn five_node_ceremonies_for_every_algorithm() {
    check_ceremonies(5, 3);
}

#[test]
fn keys_survive_a_restart_and_shares_still_match() {
    let mut h = Harness::start(3);
    h.create(1, "durable", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.create(1, "durable-dec", Algorithm::EciesSecp256k1, 2, None)
        .unwrap();
    h.cluster.stop(2);
    h.cluster.start(2).unwrap();
    let info = h.rt.block_on(h.client(2).get_key("durable")).unwrap();
    let node = h.cluster.node(2).unwrap();
    for name in ["durable", "durable-dec"] {
        let key = node.key(name).expect("key loaded after restart");
        let published = key.public.verifying_shares()[&2].clone();
        assert_eq!(
            key.share.verifying_share(),
            published,
            "{name}: share does not match its verifying share"
        );
    }
    assert_eq!(
        info.verifying_shares
            .iter()
            .find(|s| s.node == 2)
            .unwrap()
            .verifying_share,
        hex::encode(node.key("durable").unwrap().share.verifying_share())
    );
    assert_eq!(
        h.rt.block_on(h.client(2).list_keys()).unwrap().keys.len(),
        2
    );
}

#[test]
fn a_ceremony_with_a_participant_down_fails_and_names_it() {
    let mut h = Harness::start(3);
    h.cluster.stop(3);
    let (status, body) =
        Harness::expect_api_error(h.create(1, "half", Algorithm::FrostEd25519, 2, None));
    assert_eq!(status, 503);
    assert_eq!(body.error, "ceremony_failed");
    assert_eq!(culprit_ids(&body), vec![3], "{body:?}");
    for id in [1, 2] {
        assert!(h
            .rt
            .block_on(h.client(id).list_keys())
            .unwrap()
            .keys
            .is_empty());
        assert!(
            keyquorum::ceremony::participant::sessions(&h.cluster.node(id).unwrap())
                .0
                .lock()
                .is_empty(),
            "aborted session left on node {id}"
        );
    }
    h.cluster.start(3).unwrap();
    assert!(h
        .rt
        .block_on(h.client(3).list_keys())
        .unwrap()
        .keys
        .is_empty());
    // The name is still free: a later ceremony with everyone up succeeds.
    h.create(1, "half", Algorithm::FrostEd25519, 2, None)
        .unwrap();
}

fn misbehaving_node_is_named(set: impl Fn(&mut keyquorum::node::Faults), algorithm: Algorithm) {
    let h = Harness::start(3);
    set(&mut h.cluster.node(3).unwrap().faults.write());
    let (status, body) = Harness::expect_api_error(h.create(1, "victim", algorithm, 2, None));
    assert_eq!(status, 502, "{body:?}");
    assert_eq!(culprit_ids(&body), vec![3], "{body:?}");
    for id in 1..=3 {
        assert!(
            h.rt.block_on(h.client(id).list_keys())
                .unwrap()
                .keys
                .is_empty(),
            "node {id} kept a half key"
        );
    }
}

#[test]
fn a_tampered_round1_package_is_detected_and_named() {
    misbehaving_node_is_named(|f| f.tamper_dkg_round1 = true, Algorithm::FrostEd25519);
}

#[test]
fn a_tampered_round2_package_is_detected_and_named() {
    misbehaving_node_is_named(|f| f.tamper_dkg_round2 = true, Algorithm::FrostSecp256k1);
}

#[test]
fn round1_equivocation_is_detected_by_the_echo_check_and_named() {
    misbehaving_node_is_named(|f| f.equivocate_dkg_round1 = true, Algorithm::HpkeX25519);
}

#[test]
fn bad_requests_get_json_4xx_and_store_nothing() {
    let h = Harness::start(3);
    let cases: Vec<(&str, String)> = vec![
        (
            "unknown algorithm",
            r#"{"name":"k","algorithm":"rsa-2048","threshold":2}"#.into(),
        ),
        (
            "t < 2",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":1}"#.into(),
        ),
        (
            "t > n",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":4}"#.into(),
        ),
        (
            "t > participants",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":3,"participants":[1,2]}"#.into(),
        ),
        (
            "unknown participant",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":2,"participants":[1,9]}"#.into(),
        ),
        (
            "duplicate participant",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":2,"participants":[1,1,2]}"#
                .into(),
        ),
        (
            "bad name",
            r#"{"name":"a/b","algorithm":"frost-ed25519","threshold":2}"#.into(),
        ),
        (
            "long name",
            format!(
                r#"{{"name":"{}","algorithm":"frost-ed25519","threshold":2}}"#,
                "x".repeat(65)
            ),
        ),
        ("malformed json", r#"{"name":"k","algorithm":"#.into()),
        (
            "unknown field",
            r#"{"name":"k","algorithm":"frost-ed25519","threshold":2,"colour":"red"}"#.into(),
        ),
        (
            "oversized",
            format!(
                r#"{{"name":"{}","algorithm":"frost-ed25519","threshold":2}}"#,
                "x".repeat(17 * 1024 * 1024)
            ),
        ),
    ];
    let http = reqwest::Client::new();
    let url = format!("{}/v1/keys", h.cluster.client_url(1));
    for (what, body) in cases {
        let signature =
            h.cluster
                .admin_key()
                .sign_request(Some(1), "POST", "/v1/keys", body.as_bytes());
        let resp = h.rt.block_on(
            http.post(&url)
                .header("authorization", signature.to_header())
                .header("content-type", "application/json")
                .body(body)
                .send(),
        );
        let resp = resp.unwrap();
        let status = resp.status().as_u16();
        let body: api::ErrorBody =
            h.rt.block_on(resp.json())
                .unwrap_or_else(|e| panic!("{what}: no JSON error body: {e}"));
        assert!((400..500).contains(&status), "{what}: status {status}");
        assert!(!body.message.is_empty(), "{what}");
    }
    for id in 1..=3 {
        assert!(h
            .rt
            .block_on(h.client(id).list_keys())
            .unwrap()
            .keys
            .is_empty());
    }
    h.create(1, "dup", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let (status, body) =
        Harness::expect_api_error(h.create(2, "dup", Algorithm::HpkeX25519, 2, None));
    assert_eq!((status, body.error.as_str()), (409, "conflict"));
    let (status, _) = Harness::expect_api_error(h.rt.block_on(h.client(1).get_key("nope")));
    assert_eq!(status, 404);
}

#[test]
fn unauthenticated_clients_and_forged_peers_are_rejected() {
    let h = Harness::start(3);
    let anonymous: Client = h.unauthenticated(1);
    let (status, body) = Harness::expect_api_error(h.rt.block_on(anonymous.list_keys()));
    assert_eq!((status, body.error.as_str()), (401, "unauthorized"));
    let wrong = Client::new(h.cluster.client_url(1), Some("not-the-token".into()));
    assert_eq!(
        Harness::expect_api_error(h.rt.block_on(wrong.status())).0,
        401
    );
    // Health needs no token.
    assert_eq!(h.rt.block_on(anonymous.health()).unwrap().status, "ok");

    let peer_url = format!(
        "http://{}/peer/v1/message",
        h.cluster.config(2).unwrap().peer_listen
    );
    let post = |env: &Envelope| {
        h.rt.block_on(async {
            reqwest::Client::new()
                .post(&peer_url)
                .json(env)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    let payload = serde_json::to_vec(&PeerRequest::Ping).unwrap();
    // An outsider's key, claiming its own id and then a member's id.
    let outsider = Identity::generate(9);
    assert_eq!(
        post(&Envelope::sign(&outsider, 2, "s", "ping", &payload)),
        401
    );
    let impostor = Identity::generate(1);
    assert_eq!(
        post(&Envelope::sign(&impostor, 2, "s", "ping", &payload)),
        401
    );
    // A genuine member's message is accepted once, and a replay of it refused.
    let node1 = h.cluster.node(1).unwrap();
    let genuine = Envelope::sign(&node1.identity, 2, "s", "ping", &payload);
    assert_eq!(post(&genuine), 200);
    assert_eq!(post(&genuine), 401);
    // Addressed to another node.
    assert_eq!(
        post(&Envelope::sign(&node1.identity, 3, "s", "ping", &payload)),
        401
    );
}

/// A ceremony that runs out of its own deadline (every peer call still within its own) is a
/// 504, aborted everywhere: no node keeps anything, and the name stays free.
#[test]
fn a_ceremony_past_its_deadline_is_a_gateway_timeout_and_leaves_nothing() {
    let h = Harness::start_with(3, |c| {
        c.timeouts.peer_ms = 5_000;
        c.timeouts.ceremony_ms = 1_000;
    });
    h.cluster
        .node(2)
        .unwrap()
        .faults
        .write()
        .slow_answers_ms
        .insert("dkg.round1", 2_000);
    let (status, body) =
        Harness::expect_api_error(h.create(1, "late", Algorithm::FrostEd25519, 2, None));
    assert_eq!(
        (status, body.error.as_str()),
        (504, "timed_out"),
        "{}",
        body.message
    );
    // Node 2 acts on the round it was slow to answer only after the abort reached it.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    for node in 1..=3 {
        let (status, _) = Harness::expect_api_error(h.rt.block_on(h.client(node).get_key("late")));
        assert_eq!(status, 404, "node {node}");
    }
    h.cluster
        .node(2)
        .unwrap()
        .faults
        .write()
        .slow_answers_ms
        .clear();
    h.create(1, "late", Algorithm::FrostEd25519, 2, None)
        .unwrap();
}
