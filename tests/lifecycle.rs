//! A key's life after its ceremony (issue #8): refresh, repair, reshare and retire, none of
//! which reconstructs the key, and each of which fails cleanly, naming who to blame.

mod common;

use api::client::b64;
use api::{Algorithm, KeyState, RepairRequest};
use common::keys::*;
use common::{culprit_ids, Harness};
use keyshares::KeyShare;

#[test]
fn a_refresh_keeps_the_public_key_and_retires_the_old_shares() {
    let h = Harness::start(3);
    let signing = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let decrypting = h
        .create(1, "faces", Algorithm::HpkeX25519, 2, None)
        .unwrap();
    let old_share_1 = share_of(&h, 1, "manifests").unwrap();

    for (key, before) in [("manifests", &signing), ("faces", &decrypting)] {
        let after = h.rt.block_on(h.client(2).refresh_key(key)).unwrap();
        assert_eq!(after.public_key, before.public_key, "same public key");
        assert_eq!(after.generation, 1);
        assert_ne!(after.verifying_shares, before.verifying_shares);
        assert_eq!(after.ceremony.as_ref().unwrap().rounds, 6);
        let mut everywhere = same_everywhere(&h, &[1, 2, 3], key);
        everywhere.ceremony = after.ceremony.clone();
        assert_eq!(everywhere, after);
    }

    let signed = sign(&h, 3, "manifests", b"manifest of video 42");
    assert!(verifies(
        &signing,
        b"manifest of video 42",
        &signed.signature
    ));
    round_trip(&h, 2, "faces", br#"{"boxes":[[4,8,64,64]]}"#);

    // A share from before the refresh does not combine with one from after it; two new ones do.
    let public = h
        .cluster
        .node(2)
        .unwrap()
        .key("manifests")
        .unwrap()
        .public
        .clone();
    let new_share_1 = share_of(&h, 1, "manifests").unwrap();
    let new_share_2 = share_of(&h, 2, "manifests").unwrap();
    assert_ne!(old_share_1, new_share_1);
    let rng = &mut rand::rngs::OsRng;
    assert!(
        keyshares::sign::sign_in_memory(&[&old_share_1, &new_share_2], &public, b"m", rng).is_err()
    );
    assert!(
        keyshares::sign::sign_in_memory(&[&new_share_1, &new_share_2], &public, b"m", rng).is_ok()
    );

    // The new share is the one stored: it survives a restart.
    let mut h = h;
    h.cluster.stop(1);
    h.cluster.start(1).unwrap();
    assert_eq!(share_of(&h, 1, "manifests").unwrap(), new_share_1);
    h.cluster.stop(3);
    let signed = sign(&h, 1, "manifests", b"after restart");
    assert!(verifies(&signing, b"after restart", &signed.signature));
}

#[test]
fn a_wiped_node_is_repaired_and_signs_again() {
    let mut h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let decrypting = h
        .create(1, "plates", Algorithm::EciesSecp256k1, 2, None)
        .unwrap();
    let before = share_of(&h, 2, "manifests").unwrap();

    // Node 2 loses its store (a replaced disk): it comes back knowing nothing of either key.
    wipe_store(&mut h, 2);
    let (status, _) = Harness::expect_api_error(h.rt.block_on(h.client(2).get_key("manifests")));
    assert_eq!(status, 404);

    for name in ["manifests", "plates"] {
        let repaired =
            h.rt.block_on(h.client(1).repair_key(
                name,
                &RepairRequest {
                    node: 2,
                    helpers: None,
                },
            ))
            .unwrap();
        assert_eq!(repaired.ceremony.as_ref().unwrap().rounds, 3);
    }
    assert_eq!(
        share_of(&h, 2, "manifests").unwrap(),
        before,
        "the share is node 2's own"
    );
    let shown = same_everywhere(&h, &[1, 2, 3], "manifests");
    assert_eq!(shown.verifying_shares, key.verifying_shares);
    assert_eq!(shown.policy, key.policy);

    // A quorum that needs node 2: with node 3 down, nodes 1 and 2 sign and decrypt.
    h.cluster.stop(3);
    let signed = sign(&h, 2, "manifests", b"signed with a repaired share");
    assert_eq!(signed.signers, vec![1, 2]);
    assert!(verifies(
        &key,
        b"signed with a repaired share",
        &signed.signature
    ));
    let opened = round_trip(&h, 2, "plates", b"plate KQ-808");
    assert_eq!(opened.contributors, vec![1, 2]);
    assert_eq!(decrypting.public_key, info(&h, 2, "plates").public_key);

    // Nothing to repair on a node that holds its share; a repair needs enough helpers.
    h.cluster.start(3).unwrap();
    let repair = |node, helpers| {
        h.rt.block_on(
            h.client(1)
                .repair_key("manifests", &RepairRequest { node, helpers }),
        )
    };
    let (status, body) = Harness::expect_api_error(repair(2, None));
    assert_eq!(status, 409, "{}", body.message);
    let (status, _) = Harness::expect_api_error(repair(2, Some(vec![1])));
    assert_eq!(status, 400);
    let (status, _) = Harness::expect_api_error(repair(7, None));
    assert_eq!(status, 400);
}

#[test]
fn a_helper_that_lies_in_a_repair_is_named_and_the_node_stays_without_a_share() {
    let mut h = Harness::start(3);
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let before = share_of(&h, 2, "manifests").unwrap();
    wipe_store(&mut h, 2);
    let repair = || {
        let request = RepairRequest {
            node: 2,
            helpers: None,
        };
        h.rt.block_on(h.client(1).repair_key("manifests", &request))
    };
    // Helper 3 sends node 2 a value that is not the sum of the summands committed to it:
    // node 2 names it. Helper 1 sends helper 3 a summand that does not match its own
    // commitments: helper 3 names it. Helper 1 shows helper 3 a second, self-consistent
    // dealing: helper 3 passes, and node 2 catches helper 1 by its two signed commitments.
    type Fault = fn(&mut keyquorum::node::Faults, bool);
    let lies: [(u16, Fault); 3] = [
        (3, |f, on| f.corrupt_repair_value = on),
        (1, |f, on| f.corrupt_repair_summand = on),
        (1, |f, on| f.equivocate_repair_commitments = on),
    ];
    for (liar, fault) in lies {
        set_faults(&h, liar, &|f| fault(f, true));
        let (status, body) = Harness::expect_api_error(repair());
        assert_eq!(status, 502, "{}", body.message);
        assert_eq!(culprit_ids(&body), vec![liar], "{}", body.message);
        assert!(share_of(&h, 2, "manifests").is_none());
        set_faults(&h, liar, &|f| fault(f, false));
    }
    repair().unwrap();
    assert_eq!(share_of(&h, 2, "manifests").unwrap(), before);
}

#[test]
fn reshare_two_of_three_to_three_of_five_and_three_of_five_to_two_of_three() {
    let mut h = Harness::start(5);
    let signing = two_of_three(&h, "manifests");
    let decrypting = h
        .create(1, "faces", Algorithm::HpkeX25519, 2, Some(vec![1, 2, 3]))
        .unwrap();
    for (key, before) in [("manifests", &signing), ("faces", &decrypting)] {
        let grown = reshare(&h, 2, key, vec![1, 2, 3, 4, 5], 3, None).unwrap();
        assert_eq!(grown.public_key, before.public_key);
        assert_eq!((grown.threshold, grown.participants.len()), (3, 5));
        let shown = same_everywhere(&h, &[1, 2, 3, 4, 5], key);
        assert_eq!(shown.verifying_shares, grown.verifying_shares);
    }
    // The new nodes take part in a quorum of the new committee.
    h.cluster.stop(1);
    h.cluster.stop(2);
    let signed = sign(&h, 4, "manifests", b"signed by 3, 4 and 5");
    assert_eq!(signed.signers, vec![3, 4, 5]);
    assert!(verifies(
        &signing,
        b"signed by 3, 4 and 5",
        &signed.signature
    ));
    let opened = round_trip(&h, 5, "faces", b"face crop of frame 9");
    assert_eq!(opened.contributors, vec![3, 4, 5]);
    h.cluster.start(1).unwrap();
    h.cluster.start(2).unwrap();

    // Back to 2-of-3, on a committee that nodes 1 and 2 leave.
    for key in ["manifests", "faces"] {
        let shrunk = reshare(&h, 3, key, vec![5, 4, 3], 2, None).unwrap();
        assert_eq!(
            (shrunk.threshold, shrunk.participants.clone()),
            (2, vec![3, 4, 5])
        );
        assert_eq!(shrunk.generation, 2);
        same_everywhere(&h, &[1, 2, 3, 4, 5], key);
        for leaver in [1, 2] {
            assert!(
                share_of(&h, leaver, key).is_none(),
                "node {leaver} erased its share"
            );
            let node = h.cluster.node(leaver).unwrap();
            assert!(node
                .store
                .load_keys(leaver)
                .unwrap()
                .iter()
                .all(|(r, _)| r.name != key));
        }
    }
    let (status, body) = Harness::expect_api_error(
        h.rt.block_on(h.client(1).sign("manifests", b"from a node that left")),
    );
    assert_eq!((status, body.error.as_str()), (409, "not_a_participant"));
    h.cluster.stop(3);
    let signed = sign(&h, 4, "manifests", b"signed by 4 and 5");
    assert_eq!(signed.signers, vec![4, 5]);
    assert!(verifies(&signing, b"signed by 4 and 5", &signed.signature));
    round_trip(&h, 5, "faces", b"plate text");
}

#[test]
fn a_failed_refresh_or_reshare_names_the_node_and_the_old_shares_still_sign() {
    let h = Harness::start(4);
    let key = two_of_three(&h, "manifests");
    let shares: Vec<KeyShare> = (1..=3)
        .map(|n| share_of(&h, n, "manifests").unwrap())
        .collect();
    let unchanged = |h: &Harness| {
        for n in 1..=3u16 {
            assert_eq!(
                share_of(h, n, "manifests").as_ref(),
                Some(&shares[usize::from(n) - 1])
            );
            assert_eq!(info(h, n, "manifests").generation, 0);
        }
        assert!(share_of(h, 4, "manifests").is_none());
        let signed = sign(h, 1, "manifests", b"still the old shares");
        assert!(verifies(&key, b"still the old shares", &signed.signature));
    };
    let set_faults = |node: u16, f: &dyn Fn(&mut keyquorum::node::Faults)| set_faults(&h, node, f);
    let refresh = || Harness::expect_api_error(h.rt.block_on(h.client(1).refresh_key("manifests")));

    // Node 3 goes down in round 2 of a refresh.
    set_faults(3, &|f| {
        f.unresponsive_kinds.insert("dkg.round2");
    });
    let (status, body) = refresh();
    // The fault answers 503 without acting: a rejected request, not a silent one.
    assert!(matches!(status, 502 | 503), "{status}: {}", body.message);
    assert_eq!(culprit_ids(&body), vec![3]);
    unchanged(&h);

    set_faults(3, &|f| f.unresponsive_kinds.clear());

    // Node 2 deals node 4 a sub-share that does not match its commitments.
    set_faults(2, &|f| f.tamper_dkg_round2 = true);
    let (status, body) =
        Harness::expect_api_error(reshare(&h, 1, "manifests", vec![1, 2, 3, 4], 3, None));
    assert_eq!(status, 502, "{}", body.message);
    assert_eq!(culprit_ids(&body), vec![2]);
    set_faults(2, &|f| f.tamper_dkg_round2 = false);
    unchanged(&h);

    // Node 4, joining, goes down after round 1 of a reshare.
    set_faults(4, &|f| {
        f.unresponsive_kinds.insert("dkg.round1");
    });
    let (status, body) =
        Harness::expect_api_error(reshare(&h, 1, "manifests", vec![1, 2, 3, 4], 3, None));
    assert!(matches!(status, 502 | 503), "{status}: {}", body.message);
    assert_eq!(culprit_ids(&body), vec![4]);
    set_faults(4, &|f| f.unresponsive_kinds.clear());
    unchanged(&h);

    // Node 2 cheats in a refresh too.
    set_faults(2, &|f| f.tamper_dkg_round2 = true);
    let (status, body) = refresh();
    assert_eq!(status, 502, "{}", body.message);
    assert_eq!(culprit_ids(&body), vec![2]);
    set_faults(2, &|f| f.tamper_dkg_round2 = false);
    unchanged(&h);

    // Bad requests change nothing: unknown node, threshold above n, duplicate, too few
    // dealers, a dealer without a share.
    for (participants, threshold, dealers) in [
        (vec![1, 2, 9], 2, None),
        (vec![1, 2], 3, None),
        (vec![1, 1, 2], 2, None),
        (vec![1, 2, 4], 2, Some(vec![1])),
        (vec![1, 2, 4], 2, Some(vec![1, 4])),
    ] {
        let answer = reshare(&h, 1, "manifests", participants, threshold, dealers);
        let (status, body) = Harness::expect_api_error(answer);
        assert_eq!(status, 400, "{}", body.message);
    }
    let (status, _) = Harness::expect_api_error(h.rt.block_on(h.client(1).refresh_key("nope")));
    assert_eq!(status, 404);
    unchanged(&h);
}

#[test]
fn a_retired_key_keeps_its_public_data_and_serves_no_more() {
    let mut h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.create(1, "faces", Algorithm::HpkeX25519, 2, None)
        .unwrap();
    let signed = sign(&h, 1, "manifests", b"signed before retirement");

    let retired = h.rt.block_on(h.client(2).retire_key("manifests")).unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    assert!(retired.retired_at.is_some());
    assert_eq!(retired.public_key, key.public_key);
    same_everywhere(&h, &[1, 2, 3], "manifests");
    for n in 1..=3 {
        assert!(share_of(&h, n, "manifests").is_none());
    }
    // Old signatures still verify, through the API and independently.
    let valid = h
        .rt
        .block_on(
            h.client(3)
                .verify("manifests", b"signed before retirement", &signed.signature),
        )
        .unwrap();
    assert!(valid.valid);
    assert!(verifies(
        &retired,
        b"signed before retirement",
        &signed.signature
    ));

    let (status, body) =
        Harness::expect_api_error(h.rt.block_on(h.client(1).sign("manifests", b"after")));
    assert_eq!((status, body.error.as_str()), (409, "key_retired"));
    for result in [
        h.rt.block_on(h.client(1).refresh_key("manifests"))
            .map(|_| ()),
        h.rt.block_on(h.client(1).retire_key("manifests"))
            .map(|_| ()),
    ] {
        assert_eq!(Harness::expect_api_error(result).0, 409);
    }

    // Retired stays retired across a restart; the other key is untouched.
    h.cluster.stop(3);
    h.cluster.start(3).unwrap();
    assert_eq!(info(&h, 3, "manifests").state, KeyState::Retired);
    assert!(share_of(&h, 3, "manifests").is_none());
    round_trip(&h, 3, "faces", b"unaffected");

    let audit = h.rt.block_on(h.client(3).audit(None, 500)).unwrap();
    assert!(audit
        .entries
        .iter()
        .any(|e| e.action == "key.retire" && e.key.as_deref() == Some("manifests")));
}

#[test]
fn a_node_gone_for_good_is_replaced_by_a_reshare_it_does_not_take_part_in() {
    let mut h = Harness::start(4);
    let key = two_of_three(&h, "manifests");
    h.cluster.stop(3);
    let replaced = reshare(&h, 2, "manifests", vec![1, 2, 4], 2, Some(vec![2, 1])).unwrap();
    assert_eq!(replaced.participants, vec![1, 2, 4]);
    assert_eq!(replaced.public_key, key.public_key);
    same_everywhere(&h, &[1, 2, 4], "manifests");
    h.cluster.stop(2);
    let signed = sign(&h, 4, "manifests", b"signed by the replacement");
    assert_eq!(signed.signers, vec![1, 4]);
    assert!(verifies(
        &key,
        b"signed by the replacement",
        &signed.signature
    ));
}

#[test]
fn a_participant_refuses_a_coordinator_that_holds_another_generation() {
    use keyquorum::peer::{PeerRequest, PeerResponse};
    use keyquorum::transport;
    let h = Harness::start(3);
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let before = h
        .cluster
        .node(1)
        .unwrap()
        .key("manifests")
        .unwrap()
        .record
        .session
        .clone();
    h.rt.block_on(h.client(1).refresh_key("manifests")).unwrap();
    let body = serde_json::to_vec(&api::SignRequest {
        message: Some(b64(b"m")),
        batch: None,
    })
    .unwrap();
    let node1 = h.cluster.node(1).unwrap();
    let commit = PeerRequest::SignCommit {
        key: "manifests".into(),
        key_session: before,
        request: common::forwarded(
            &h,
            h.cluster.admin_key(),
            "POST",
            "/v1/keys/manifests/sign",
            &body,
        ),
    };
    let answer =
        h.rt.block_on(transport::call(
            &node1,
            2,
            "stale-generation",
            &commit,
            None,
        ))
        .unwrap();
    match answer {
        PeerResponse::Error { message, .. } => {
            assert!(message.contains("generation 1"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn only_a_client_that_may_manage_the_key_renews_or_retires_it_and_each_node_checks() {
    use api::{ClientInfo, ClientKey, KeyPolicy};
    use keyquorum::peer::messages::CeremonyPurpose;
    use keyquorum::peer::{CeremonySpec, PeerErrorCode, PeerRequest, PeerResponse};
    use keyquorum::transport;
    let h = Harness::start(3);
    let signer = ClientKey::generate("signer");
    h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: "signer".into(),
        public_key: signer.public_hex(),
        roles: vec![],
    }))
    .unwrap();
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let policy = KeyPolicy {
        sign: vec!["signer".into()],
        read: vec!["signer".into()],
        ..h.cluster.node(1).unwrap().policy("manifests").unwrap()
    };
    h.rt.block_on(h.client(1).set_policy("manifests", &policy))
        .unwrap();

    let as_signer = h.unauthenticated(2).with_signer(signer.clone());
    let refused = [
        h.rt.block_on(as_signer.refresh_key("manifests"))
            .map(|_| ()),
        h.rt.block_on(as_signer.retire_key("manifests")).map(|_| ()),
        h.rt.block_on(as_signer.repair_key(
            "manifests",
            &RepairRequest {
                node: 1,
                helpers: None,
            },
        ))
        .map(|_| ()),
    ];
    for answer in refused {
        let (status, body) = Harness::expect_api_error(answer);
        assert_eq!(status, 403, "{}", body.message);
    }

    // A compromised node 1 dresses the signer's signing request up as a refresh: every other
    // node reads the signed request itself and refuses.
    let body = serde_json::to_vec(&api::SignRequest {
        message: Some(b64(b"m")),
        batch: None,
    })
    .unwrap();
    let node1 = h.cluster.node(1).unwrap();
    let previous = node1.key("manifests").unwrap().record.clone();
    let spec = CeremonySpec {
        name: "manifests".into(),
        algorithm: previous.algorithm,
        threshold: previous.threshold,
        participants: previous.participants.clone(),
        created_at: previous.created_at.clone(),
        coordinator: 1,
        policy: policy.clone(),
        purpose: CeremonyPurpose::Refresh { previous },
    };
    for path in ["/v1/keys/manifests/sign", "/v1/keys/manifests/refresh"] {
        let start = PeerRequest::DkgStart {
            spec: spec.clone(),
            request: common::forwarded(&h, &signer, "POST", path, &body),
        };
        let answer =
            h.rt.block_on(transport::call(
                &node1,
                2,
                &keyquorum::random_id(),
                &start,
                None,
            ))
            .unwrap();
        match answer {
            PeerResponse::Error {
                code: PeerErrorCode::Unauthorized,
                message,
                ..
            } => assert!(message.contains("refuses"), "{message}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(info(&h, 2, "manifests").generation, 0);
}
