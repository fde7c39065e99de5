//! FROST signing across the cluster (issue #3).

mod common;

use std::collections::BTreeMap;

use api::{Algorithm, ClientError};
use common::{culprit_ids, Harness};
use ed25519_dalek::{Signature, VerifyingKey};
use keyquorum::peer::{PeerErrorCode, PeerRequest, PeerResponse, SignerCommitments};
use keyquorum::transport;

fn dalek_key(hex_key: &str) -> VerifyingKey {
    VerifyingKey::from_bytes(&hex::decode(hex_key).unwrap().try_into().unwrap()).unwrap()
}

fn verify_strict(key: &VerifyingKey, message: &[u8], sig_hex: &str) -> bool {
    let sig = Signature::from_slice(&hex::decode(sig_hex).unwrap()).unwrap();
    key.verify_strict(message, &sig).is_ok()
}

#[test]
fn signatures_verify_with_an_independent_ed25519_implementation() {
    let h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let vk = dalek_key(&key.public_key);
    for via in 1..=3u16 {
        let message = format!("manifest of dataset 42, via node {via}");
        let answer =
            h.rt.block_on(h.client(via).sign("manifests", message.as_bytes()))
                .unwrap();
        assert_eq!(hex::decode(&answer.signature).unwrap().len(), 64);
        assert_eq!(answer.signers.len(), 2);
        assert!(answer.excluded.is_empty());
        assert!(verify_strict(&vk, message.as_bytes(), &answer.signature));
        assert!(!verify_strict(&vk, b"another message", &answer.signature));
        let ok =
            h.rt.block_on(
                h.client(via)
                    .verify("manifests", message.as_bytes(), &answer.signature),
            )
            .unwrap();
        assert!(ok.valid);
        let bad =
            h.rt.block_on(
                h.client(via)
                    .verify("manifests", b"tampered", &answer.signature),
            )
            .unwrap();
        assert!(!bad.valid);
    }
    // A batch: one result per item, each verifying on its own.
    let messages: Vec<Vec<u8>> = (0..20).map(|i| format!("frame {i}").into_bytes()).collect();
    let batch =
        h.rt.block_on(h.client(2).sign_batch("manifests", &messages))
            .unwrap();
    assert_eq!(batch.results.len(), 20);
    for (m, r) in messages.iter().zip(&batch.results) {
        assert!(verify_strict(&vk, m, r.signature.as_ref().unwrap()));
    }
    // One pair of rounds for the whole batch, or one round with preprocessed commitments
    // (tests/presign.rs).
    let rounds = batch.stats.unwrap().rounds;
    assert!(matches!(rounds, 1 | 2), "a batch took {rounds} rounds");
}

#[test]
fn secp256k1_signatures_verify() {
    let h = Harness::start(3);
    let key = h
        .create(2, "btc", Algorithm::FrostSecp256k1, 2, None)
        .unwrap();
    let answer = h.rt.block_on(h.client(3).sign("btc", b"tx")).unwrap();
    let sig = hex::decode(&answer.signature).unwrap();
    assert_eq!(sig.len(), 65, "R (33-byte SEC1) || z (32 bytes)");
    assert!(
        h.rt.block_on(h.client(1).verify("btc", b"tx", &answer.signature))
            .unwrap()
            .valid
    );
    // The published 33-byte key verifies it through frost-secp256k1's own verifier, and only
    // for the signed message.
    assert!(keyshares::sign::verify(
        keyshares::Curve::Secp256k1,
        &hex::decode(&key.public_key).unwrap(),
        b"tx",
        &sig
    ));
    assert!(!keyshares::sign::verify(
        keyshares::Curve::Secp256k1,
        &hex::decode(&key.public_key).unwrap(),
        b"tx2",
        &sig
    ));
}

#[test]
fn signing_survives_down_and_corrupt_signers_and_fails_cleanly_without_quorum() {
    let mut h = Harness::start(5);
    let key = h.create(1, "k", Algorithm::FrostEd25519, 3, None).unwrap();
    let vk = dalek_key(&key.public_key);

    // Two nodes down: three remain, exactly a quorum.
    h.cluster.stop(4);
    h.cluster.stop(5);
    let answer = h.rt.block_on(h.client(1).sign("k", b"two down")).unwrap();
    assert_eq!(answer.signers, vec![1, 2, 3]);
    assert!(verify_strict(&vk, b"two down", &answer.signature));
    h.cluster.start(4).unwrap();
    h.cluster.start(5).unwrap();

    // Node 2 returns corrupted shares: it is excluded and named, and the signature is still made.
    // Nodes 4 and 5 commit late, so that round 1 surely picks node 2.
    h.cluster
        .node(2)
        .unwrap()
        .faults
        .write()
        .corrupt_signature_shares = true;
    for slow in [4, 5] {
        h.cluster
            .node(slow)
            .unwrap()
            .faults
            .write()
            .slow_answers_ms
            .insert("sign.commit", 300);
    }
    let answer = h.rt.block_on(h.client(1).sign("k", b"one liar")).unwrap();
    assert!(verify_strict(&vk, b"one liar", &answer.signature));
    assert!(!answer.signers.contains(&2), "{answer:?}");
    assert_eq!(
        answer.excluded.iter().map(|e| e.node).collect::<Vec<_>>(),
        vec![2]
    );
    assert!(
        answer.excluded[0]
            .reason
            .contains("invalid signature share"),
        "{answer:?}"
    );
    h.cluster
        .node(2)
        .unwrap()
        .faults
        .write()
        .corrupt_signature_shares = false;

    // Three nodes down: no quorum; 503 naming them.
    for id in [3, 4, 5] {
        h.cluster.stop(id);
    }
    match h.rt.block_on(h.client(1).sign("k", b"no quorum")) {
        Err(ClientError::Api { status, body }) => {
            assert_eq!(status, 503);
            assert_eq!(body.error, "quorum_unavailable");
            assert_eq!(culprit_ids(&body), vec![3, 4, 5], "{body:?}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

#[test]
fn a_slow_signer_is_timed_out_and_replaced() {
    // Peer requests time out after 2 s in the harness. Node 3 commits a little late, so round 1
    // picks node 2; node 2 then holds its signature share for 30 s. The coordinator must time
    // it out, name it, and sign with node 3 instead, well inside its 10 s deadline.
    let h = Harness::start(3);
    let key = h.create(1, "k", Algorithm::FrostEd25519, 2, None).unwrap();
    h.cluster
        .node(3)
        .unwrap()
        .faults
        .write()
        .slow_answers_ms
        .insert("sign.commit", 300);
    h.cluster
        .node(2)
        .unwrap()
        .faults
        .write()
        .slow_answers_ms
        .insert("sign.share", 30_000);
    let answer = h.rt.block_on(h.client(1).sign("k", b"slow")).unwrap();
    assert!(verify_strict(
        &dalek_key(&key.public_key),
        b"slow",
        &answer.signature
    ));
    assert_eq!(answer.signers, vec![1, 3], "{answer:?}");
    assert_eq!(answer.excluded.len(), 1, "{answer:?}");
    assert_eq!(answer.excluded[0].node, 2);
    assert!(
        answer.excluded[0].reason.contains("timed out"),
        "{answer:?}"
    );
}

#[test]
fn two_hundred_concurrent_signatures_all_verify() {
    let h = Harness::start(5);
    let key = h
        .create(1, "busy", Algorithm::FrostEd25519, 3, None)
        .unwrap();
    let vk = dalek_key(&key.public_key);
    let clients: Vec<api::Client> = (1..=5).map(|i| h.client(i)).collect();
    let results = h.rt.block_on(futures::future::join_all((0..200).map(|i| {
        let client = clients[i % 5].clone();
        async move {
            let message = format!("request {i}").into_bytes();
            let answer = client.sign("busy", &message).await;
            (message, answer)
        }
    })));
    for (message, answer) in results {
        let answer =
            answer.unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&message)));
        assert!(verify_strict(&vk, &message, &answer.signature));
    }
}

/// Whether `share` is node `node`'s valid signature share of the package (frost's own check).
fn share_verifies(key: &api::KeyInfo, node: u16, package: &[u8], share: &[u8]) -> bool {
    use frost_ed25519 as frost;
    let verifying_share = key
        .verifying_shares
        .iter()
        .find(|v| v.node == node)
        .expect("the key names the node's verifying share");
    let verifying_share = hex::decode(&verifying_share.verifying_share).unwrap();
    let group_key = hex::decode(&key.group_verifying_key).unwrap();
    frost_core::verify_signature_share(
        frost::Identifier::try_from(node).unwrap(),
        &frost::keys::VerifyingShare::deserialize(&verifying_share).unwrap(),
        &frost::round2::SignatureShare::deserialize(share).unwrap(),
        &frost::SigningPackage::deserialize(package).unwrap(),
        &frost::VerifyingKey::deserialize(&group_key).unwrap(),
    )
    .is_ok()
}

#[test]
fn signers_refuse_replays_and_commitments_they_did_not_make() {
    let h = Harness::start(3);
    let key = h.create(1, "k", Algorithm::FrostEd25519, 2, None).unwrap();
    let coordinator = h.cluster.node(1).unwrap();
    let session = keyquorum::random_id();
    let body = serde_json::to_vec(&api::SignRequest {
        message: Some(api::client::b64(b"approved")),
        batch: None,
    })
    .unwrap();
    let commit = PeerRequest::SignCommit {
        key: "k".into(),
        key_session: String::new(),
        request: common::forwarded(&h, h.cluster.admin_key(), "POST", "/v1/keys/k/sign", &body),
    };
    let mut commitments = BTreeMap::new();
    for id in [2u16, 3] {
        match h
            .rt
            .block_on(transport::call(&coordinator, id, &session, &commit, None))
            .unwrap()
        {
            PeerResponse::Commitments { commitments: c } => {
                commitments.insert(id, c[0].clone());
            }
            other => panic!("{other:?}"),
        }
    }
    let signers = |commitments: &BTreeMap<u16, Vec<u8>>| {
        commitments
            .iter()
            .map(|(id, c)| SignerCommitments {
                signer: *id,
                commitments: vec![c.clone()],
            })
            .collect::<Vec<_>>()
    };
    // Node 3 is handed node 2's commitments as its own: refused, naming the coordinator.
    let mut forged = commitments.clone();
    forged.insert(3, commitments[&2].clone());
    match h
        .rt
        .block_on(transport::call(
            &coordinator,
            3,
            &session,
            &PeerRequest::SignShare {
                signers: signers(&forged),
            },
            None,
        ))
        .unwrap()
    {
        PeerResponse::Error { code, culprit, .. } => {
            assert_eq!((code, culprit), (PeerErrorCode::Protocol, Some(1)))
        }
        other => panic!("commitments it did not make were signed: {other:?}"),
    }
    // Node 2 signs the approved message (it reads it from the client's request) once, and
    // refuses the same request a second time.
    let share = PeerRequest::SignShare {
        signers: signers(&commitments),
    };
    let PeerResponse::Shares { shares } =
        h.rt.block_on(transport::call(&coordinator, 2, &session, &share, None))
            .unwrap()
    else {
        panic!("node 2 did not sign");
    };
    let package =
        keyshares::sign::signing_package(keyshares::Curve::Ed25519, &commitments, b"approved")
            .unwrap();
    assert!(
        share_verifies(&key, 2, &package, &shares[0]),
        "node 2's share is not a share of the approved message"
    );
    match h
        .rt
        .block_on(transport::call(&coordinator, 2, &session, &share, None))
        .unwrap()
    {
        PeerResponse::Error { code, .. } => assert_eq!(code, PeerErrorCode::UnknownSession),
        other => panic!("replayed request was signed: {other:?}"),
    }
    // Only the coordinator that opened a session may use it.
    let session2 = keyquorum::random_id();
    h.rt.block_on(transport::call(&coordinator, 2, &session2, &commit, None))
        .unwrap();
    let other = h.cluster.node(3).unwrap();
    assert!(matches!(
        h.rt.block_on(transport::call(&other, 2, &session2, &share, None))
            .unwrap(),
        PeerResponse::Error {
            code: PeerErrorCode::Invalid,
            ..
        }
    ));
}

#[test]
fn bad_sign_requests_get_4xx() {
    let h = Harness::start(3);
    h.create(1, "s", Algorithm::FrostEd25519, 2, None).unwrap();
    h.create(1, "d", Algorithm::HpkeX25519, 2, None).unwrap();
    let http = reqwest::Client::new();
    let base = h.cluster.client_url(1);
    let too_many = format!(
        r#"{{"batch":[{}]}}"#,
        vec![r#"{"message":"AA=="}"#; 257].join(",")
    );
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("decryption key", "d", r#"{"message":"aGk="}"#.into(), 400),
        (
            "invalid base64",
            "s",
            r#"{"message":"not base64!"}"#.into(),
            400,
        ),
        ("missing message", "s", r#"{}"#.into(), 400),
        (
            "both message and batch",
            "s",
            r#"{"message":"aGk=","batch":[{"message":"aGk="}]}"#.into(),
            400,
        ),
        ("empty batch", "s", r#"{"batch":[]}"#.into(), 400),
        ("oversized batch", "s", too_many, 400),
        (
            "bad item",
            "s",
            r#"{"batch":[{"message":"aGk="},{"message":"%%"}]}"#.into(),
            400,
        ),
        ("unknown key", "nope", r#"{"message":"aGk="}"#.into(), 404),
    ];
    for (what, key, body, expected) in cases {
        let signature = h.cluster.admin_key().sign_request(
            Some(1),
            "POST",
            &format!("/v1/keys/{key}/sign"),
            body.as_bytes(),
        );
        let resp =
            h.rt.block_on(
                http.post(format!("{base}/v1/keys/{key}/sign"))
                    .header("authorization", signature.to_header())
                    .header("content-type", "application/json")
                    .body(body)
                    .send(),
            )
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{what}");
        let body: api::ErrorBody = h.rt.block_on(resp.json()).unwrap();
        assert!(!body.message.is_empty(), "{what}");
    }
    let bad_hex = h.rt.block_on(h.client(1).verify("s", b"m", "zz"));
    assert_eq!(Harness::expect_api_error(bad_hex).0, 400);
    let short = h.rt.block_on(h.client(1).verify("s", b"m", "00")).unwrap();
    assert!(!short.valid);
}
