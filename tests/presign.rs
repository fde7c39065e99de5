//! Preprocessed signing (RFC 9591 §5.1): with signers' nonce commitments made ahead of time, a
//! signature takes one round trip; every rule of two-round signing still holds, and signing
//! keeps working while the pools are empty (after a restart, after a refresh).

mod common;

use std::time::{Duration, Instant};

use api::{Algorithm, KeyInfo};
use common::keys::{set_faults, verifies};
use common::{forwarded, Harness};
use keyquorum::peer::{PeerErrorCode, PeerRequest, PeerResponse, SignerCommitments};

/// Signs `message` through node `via`; returns the rounds it took.
fn sign_rounds(h: &Harness, via: u16, key: &KeyInfo, message: &str) -> u32 {
    let answer =
        h.rt.block_on(h.client(via).sign(&key.name, message.as_bytes()))
            .unwrap();
    assert!(verifies(key, message.as_bytes(), &answer.signature));
    answer.stats.unwrap().rounds
}

/// Signs until a signature takes one round (the pools filled in the background), at most 20 s.
fn until_one_round(h: &Harness, via: u16, key: &KeyInfo) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    while sign_rounds(h, via, key, &format!("warming up {i}")) != 1 {
        assert!(Instant::now() < deadline, "never one round");
        std::thread::sleep(Duration::from_millis(50));
        i += 1;
    }
}

fn one_round_count(h: &Harness, via: u16) -> f64 {
    let text = reqwest::blocking::get(format!("{}/metrics", h.cluster.client_url(via)))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("keyquorum_signatures_one_round_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_signature_takes_one_round_once_the_pools_fill_and_two_after_a_restart_or_refresh() {
    let mut h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    // The first signature has no commitments at hand: two rounds; it starts the refill.
    assert_eq!(sign_rounds(&h, 1, &key, "first"), 2);
    until_one_round(&h, 1, &key);
    let before = one_round_count(&h, 1);
    assert_eq!(sign_rounds(&h, 1, &key, "from the pool"), 1);
    assert_eq!(one_round_count(&h, 1), before + 1.0);

    // A signer restarts and loses its nonces: the coordinator's commitments of it are dead,
    // yet signing goes on (two rounds, nobody blamed), and the pools refill.
    h.cluster.stop(2);
    h.cluster.start(2).unwrap();
    for i in 0..3 {
        let answer =
            h.rt.block_on(
                h.client(1)
                    .sign("manifests", format!("after {i}").as_bytes()),
            )
            .unwrap();
        assert!(
            answer.excluded.iter().all(|e| e.node != 2),
            "{:?}",
            answer.excluded
        );
    }
    until_one_round(&h, 1, &key);

    // A refresh changes the generation: the pools of the old one are useless.
    h.rt.block_on(h.client(1).refresh_key("manifests")).unwrap();
    assert_eq!(sign_rounds(&h, 1, &key, "after the refresh"), 2);
    until_one_round(&h, 1, &key);
}

#[test]
fn a_signer_refuses_an_unknown_or_used_commitment_and_a_bad_share_is_named() {
    let h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let one = h.cluster.node(1).unwrap();
    let session = one.key("manifests").unwrap().record.session.clone();
    // Node 1, playing coordinator at the peer protocol, asks node 2 for two commitments.
    let call = |request: PeerRequest| {
        h.rt.block_on(keyquorum::transport::call(
            &one,
            2,
            &keyquorum::random_id(),
            &request,
            None,
        ))
        .unwrap()
    };
    let PeerResponse::Presigned { ids, commitments } = call(PeerRequest::SignPresign {
        key: "manifests".into(),
        key_session: session.clone(),
        count: 2,
    }) else {
        panic!("no commitments");
    };
    assert_eq!((ids.len(), commitments.len()), (2, 2));
    let body = serde_json::to_vec(&api::SignRequest {
        message: Some(api::client::b64(b"m")),
        batch: None,
    })
    .unwrap();
    let presigned = |id: &str| {
        let request = forwarded(
            &h,
            h.cluster.admin_key(),
            "POST",
            "/v1/keys/manifests/sign",
            &body,
        );
        PeerRequest::SignPresigned {
            key: "manifests".into(),
            key_session: session.clone(),
            request,
            commitment_ids: vec![id.to_string()],
            signers: vec![SignerCommitments {
                signer: 2,
                commitments: vec![vec![0u8; 8]],
            }],
        }
    };
    let refused = |answer: PeerResponse| match answer {
        PeerResponse::Error { code, message, .. } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Unknown id: refused.
    let (code, message) = refused(call(presigned("no-such-commitment")));
    assert_eq!(code, PeerErrorCode::UnknownSession, "{message}");
    // A real id with malformed commitments: refused, and the commitment is spent all the same.
    let (code, _) = refused(call(presigned(&ids[0])));
    assert_ne!(code, PeerErrorCode::UnknownSession);
    let (code, message) = refused(call(presigned(&ids[0])));
    assert_eq!(code, PeerErrorCode::UnknownSession, "used twice: {message}");

    // A signer that sends a bad share under a preprocessed commitment is named, and the
    // signature still comes out (from the others, in two rounds).
    until_one_round(&h, 1, &key);
    // The pool's signers are this node and node 2 (this node first, then by id).
    set_faults(&h, 2, &|f| f.corrupt_signature_shares = true);
    let answer =
        h.rt.block_on(h.client(1).sign("manifests", b"with a liar"))
            .unwrap();
    assert!(verifies(&key, b"with a liar", &answer.signature));
    let excluded: Vec<u16> = answer.excluded.iter().map(|e| e.node).collect();
    assert_eq!(excluded, vec![2], "{:?}", answer.excluded);
    assert_eq!(
        answer.stats.unwrap().rounds,
        3,
        "one preprocessed round, then two"
    );
}
