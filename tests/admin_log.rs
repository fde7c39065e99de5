//! The replicated admin log (DESIGN.md §11): entries bound to their position, applied only on
//! a certificate of q votes chaining onto the node's own head, at most once per signed
//! request; votes released only on evidence; a restarted node caught up before it serves.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{Algorithm, ClientError, ClientInfo, ClientKey, KeyPolicy};
use common::{forwarded, Harness};
use keyquorum::admin::{AdminEntry, Certificate, CertifiedEntry};
use keyquorum::node::Node;
use keyquorum::peer::{PeerErrorCode, PeerRequest, PeerResponse};
use keyquorum::state::admin_log::sign_vote;
use keyquorum::transport;
use keyquorum::transport::CallError;

/// POSTs a client registration to node 1 with exactly `signature`, as a captured request.
fn post_client(
    h: &Harness,
    signature: &api::RequestSignature,
    body: &[u8],
) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{}/v1/clients", h.cluster.client_url(1)))
        .header("content-type", "application/json")
        .header("authorization", signature.to_header())
        .body(body.to_vec())
        .send()
        .unwrap()
}

fn client_body(name: &str) -> Vec<u8> {
    serde_json::to_vec(&ClientInfo {
        name: name.into(),
        public_key: ClientKey::generate(name).public_hex(),
        roles: vec![],
    })
    .unwrap()
}

fn node(h: &Harness, id: u16) -> Arc<Node> {
    h.cluster.node(id).expect("node running")
}

fn call(h: &Harness, from: &Arc<Node>, to: u16, request: PeerRequest) -> PeerResponse {
    let answer: Result<PeerResponse, CallError> = h.rt.block_on(transport::call(
        from,
        to,
        &keyquorum::random_id(),
        &request,
        None,
    ));
    answer.expect("the peer answers")
}

/// The node a refusal names, with its message; panics on anything but a refusal.
fn blamed(answer: PeerResponse) -> (Option<u16>, String) {
    match answer {
        PeerResponse::Error {
            culprit, message, ..
        } => (culprit, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn client_names(h: &Harness, id: u16) -> Vec<String> {
    h.rt.block_on(h.client(id).list_clients())
        .unwrap()
        .clients
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// Node `id`'s audit entries refusing something from `culprit`.
fn refusals_naming(h: &Harness, id: u16, culprit: u16) -> usize {
    let page = h.rt.block_on(h.client(id).audit(None, 1000)).unwrap();
    page.entries
        .iter()
        .filter(|e| e.outcome == "refused" && e.culprits.contains(&culprit))
        .count()
}

/// Whether node `id`'s `/metrics` counts `culprit` as a culprit of an admin operation.
fn metrics_name(h: &Harness, id: u16, culprit: u16) -> bool {
    let text = reqwest::blocking::get(format!("{}/metrics", h.cluster.client_url(id)))
        .unwrap()
        .text()
        .unwrap();
    text.lines().any(|l| {
        l.starts_with("keyquorum_culprits_total")
            && l.contains("operation=\"admin\"")
            && l.contains(&format!("culprit=\"{culprit}\""))
    })
}

fn poll(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_compromised_node_cannot_replay_an_old_admin_change_and_is_named() {
    // A short clock-skew window, so the request below is soon old: a fresh one offered again
    // could be a client's retry, an old one can only be a replay.
    let h = Harness::start_with(3, |c| c.timeouts.max_clock_skew_ms = 2_000);
    let admin = h.cluster.admin_key().clone();
    // The admin adds eve (the request node 1 keeps), then removes her.
    let body = client_body("eve");
    let signed = admin.sign_request(Some(1), "POST", "/v1/clients", &body);
    assert_eq!(post_client(&h, &signed, &body).status(), 200);
    let one = node(&h, 1);
    let added_at = one.admin_seq();
    let old: CertifiedEntry = keyquorum::admin::logged(&one.store, added_at)
        .unwrap()
        .expect("node 1 logged eve's registration");
    h.rt.block_on(h.client(1).remove_client("eve")).unwrap();
    for id in 1..=3 {
        assert!(!client_names(&h, id).contains(&"eve".to_string()));
    }
    std::thread::sleep(Duration::from_millis(2_500));

    // Node 1 offers the old signed request as its next entry.
    let head = one.admin.head();
    let mut request = old.entry.request.clone();
    request.admin_seq = head.seq;
    let replay = AdminEntry {
        seq: head.seq + 1,
        prev_hash: head.hash.clone(),
        request,
    };
    for peer in [2, 3] {
        let (culprit, why) = blamed(call(
            &h,
            &one,
            peer,
            PeerRequest::AdminPrepare {
                entry: replay.clone(),
            },
        ));
        assert_eq!(culprit, Some(1), "{why}");
        assert!(why.contains("applied as entry"), "{why}");
    }
    // ... and forges its commit: with its own vote only, then with the old entry's real
    // certificate (votes for another entry at another position).
    let own_vote = Certificate {
        seq: replay.seq,
        prev_hash: replay.prev_hash.clone(),
        entry_hash: replay.hash(),
        coordinator: 1,
        votes: BTreeMap::from([(1, sign_vote(&one.identity, &replay, 1))]),
    };
    for certificate in [own_vote, old.certificate.clone()] {
        for peer in [2, 3] {
            let (culprit, why) = blamed(call(
                &h,
                &one,
                peer,
                PeerRequest::AdminCommit {
                    entry: replay.clone(),
                    certificate: certificate.clone(),
                },
            ));
            assert_eq!(culprit, Some(1), "{why}");
        }
    }
    // ... and serves it from its log to a node catching up (tagged with its own MAC key, as
    // a compromised node can).
    let seq = replay.seq.to_be_bytes();
    let stored = one
        .store
        .write_tagged(
            keyquorum::store::Tagged::AdminLog,
            &seq,
            &CertifiedEntry {
                entry: replay.clone(),
                certificate: old.certificate.clone(),
            },
        )
        .unwrap();
    one.store.admin_log().insert(seq, stored).unwrap();
    let two = node(&h, 2);
    let caught = h.rt.block_on(keyquorum::admin::catch_up(&two, 1));
    assert!(caught.is_err(), "{caught:?}");
    one.store
        .admin_log()
        .remove(replay.seq.to_be_bytes())
        .unwrap();

    for id in 1..=3 {
        assert!(
            !client_names(&h, id).contains(&"eve".to_string()),
            "eve is back on node {id}"
        );
        assert_eq!(node(&h, id).admin_seq(), head.seq, "node {id}");
    }
    for id in [2, 3] {
        assert!(refusals_naming(&h, id, 1) >= 3, "node {id}'s audit trail");
        assert!(metrics_name(&h, id, 1), "node {id}'s metrics");
    }
    // Node 2 caught the fabricated catch-up answer too.
    assert!(refusals_naming(&h, 2, 1) > refusals_naming(&h, 3, 1));
    // The cluster still works.
    h.rt.block_on(h.client(2).put_client(&ClientInfo {
        name: "frank".into(),
        public_key: ClientKey::generate("frank").public_hex(),
        roles: vec![],
    }))
    .unwrap();
}

#[test]
fn a_signed_change_is_applied_once_whatever_position_it_is_offered_at() {
    let h = Harness::start(3);
    let admin = h.cluster.admin_key().clone();
    let body = client_body("once");
    let signed = admin.sign_request(Some(1), "POST", "/v1/clients", &body);
    assert_eq!(post_client(&h, &signed, &body).status(), 200);
    let one = node(&h, 1);
    let seq = one.admin_seq();
    // The same request again: refused.
    let again = post_client(&h, &signed, &body);
    assert_eq!(again.status(), 401);
    assert_eq!(
        again.json::<api::ErrorBody>().unwrap().error,
        "replayed_request"
    );
    // Offered by node 1 itself as coordinator at the next position: its own durable record
    // refuses, whatever its nonce cache holds ...
    let mut request = forwarded(&h, &admin, "POST", "/v1/clients", &body);
    request.authorization = signed.clone();
    let r =
        h.rt.block_on(keyquorum::admin::coordinator::change(&one, request.clone()));
    let e = r.expect_err("applied twice");
    assert_eq!(e.body.error, "replayed_request", "{e}");
    // ... and so does every participant it is offered to.
    let head = one.admin.head();
    let entry = AdminEntry {
        seq: head.seq + 1,
        prev_hash: head.hash,
        request,
    };
    for peer in [1, 2, 3] {
        let answer = call(
            &h,
            &one,
            peer,
            PeerRequest::AdminPrepare {
                entry: entry.clone(),
            },
        );
        let (culprit, why) = blamed(answer);
        assert!(why.contains(&format!("applied as entry {seq}")), "{why}");
        // Signed moments ago: a client's retry through node 1 looks the same, so nobody is
        // named for it (an old one is, above).
        assert_eq!(culprit, None, "{why}");
    }
    for id in 1..=3 {
        assert_eq!(node(&h, id).admin_seq(), seq, "node {id}");
        let names = client_names(&h, id);
        assert_eq!(names.iter().filter(|n| *n == "once").count(), 1);
    }
}

#[test]
fn a_revoked_client_stays_refused_by_a_node_that_was_down_when_it_was_removed() {
    let mut h = Harness::start_with(3, |c| c.admin.quorum = Some(2));
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let ops = ClientKey::generate("ops");
    h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: "ops".into(),
        public_key: ops.public_hex(),
        roles: vec![],
    }))
    .unwrap();
    let policy = KeyPolicy {
        sign: vec!["ops".into()],
        manage: vec!["admin".into()],
        ..Default::default()
    };
    h.rt.block_on(h.client(1).set_policy("sig", &policy))
        .unwrap();
    let as_ops = |h: &Harness, id: u16| h.unauthenticated(id).with_signer(ops.clone());
    // Before: ops signs through node 3.
    h.rt.block_on(as_ops(&h, 3).sign("sig", b"before")).unwrap();

    // Node 3 is down when ops is removed: two votes of three suffice.
    h.cluster.stop(3);
    let removed = h.rt.block_on(h.client(1).remove_client("ops")).unwrap();
    assert_eq!(removed.nodes, vec![1, 2]);

    // Node 3 restarts while its peers do not serve their logs: it has not caught up.
    for id in [1, 2] {
        node(&h, id)
            .faults
            .write()
            .unresponsive_kinds
            .insert("admin.log");
    }
    h.cluster.start_unready(3).unwrap();
    assert!(!node(&h, 3).admin.caught_up());
    assert!(!h.rt.block_on(h.client(3).status()).unwrap().admin_caught_up);
    // As coordinator: refused, although its own registry still lists ops.
    assert!(client_names(&h, 3).contains(&"ops".to_string()));
    let (status, body) = Harness::expect_api_error(h.rt.block_on(as_ops(&h, 3).sign("sig", b"x")));
    assert_eq!(
        (status, body.error.as_str()),
        (503, "catching_up"),
        "{body:?}"
    );
    // As participant: a coordinator forwarding ops's request gets a refusal.
    let sign_body = serde_json::to_vec(&api::SignRequest {
        message: Some(api::client::b64(b"x")),
        batch: None,
    })
    .unwrap();
    let one = node(&h, 1);
    let commit = |h: &Harness| {
        call(
            h,
            &one,
            3,
            PeerRequest::SignCommit {
                key: "sig".into(),
                key_session: String::new(),
                request: forwarded(h, &ops, "POST", "/v1/keys/sig/sign", &sign_body),
            },
        )
    };
    match commit(&h) {
        PeerResponse::Error { code, .. } => assert_eq!(code, PeerErrorCode::CatchingUp),
        other => panic!("node 3 acted as participant: {other:?}"),
    }

    // Its peers serve their logs again: it catches up (retrying by itself), then refuses ops
    // as an unknown client, as coordinator and as participant.
    for id in [1, 2] {
        node(&h, id).faults.write().unresponsive_kinds.clear();
    }
    h.cluster.wait_ready(Duration::from_secs(20)).unwrap();
    assert!(!client_names(&h, 3).contains(&"ops".to_string()));
    let (status, body) = Harness::expect_api_error(h.rt.block_on(as_ops(&h, 3).sign("sig", b"x")));
    assert_eq!(
        (status, body.error.as_str()),
        (401, "unknown_client"),
        "{body:?}"
    );
    match commit(&h) {
        PeerResponse::Error { code, message, .. } => {
            assert_eq!(code, PeerErrorCode::Unauthorized, "{message}");
            assert!(message.contains("unknown client"), "{message}");
        }
        other => panic!("node 3 acted as participant: {other:?}"),
    }
    assert!(h.rt.block_on(h.client(3).status()).unwrap().admin_caught_up);
}

fn put(h: &Harness, via: u16, name: &str) -> Result<api::ChangeApplied, ClientError> {
    h.rt.block_on(h.client(via).put_client(&ClientInfo {
        name: name.into(),
        public_key: ClientKey::generate(name).public_hex(),
        roles: vec![],
    }))
}

fn set_unresponsive(h: &Harness, id: u16, kinds: &[&'static str]) {
    let n = node(h, id);
    let mut faults = n.faults.write();
    faults.unresponsive_kinds.clear();
    faults.unresponsive_kinds.extend(kinds.iter().copied());
}

#[test]
fn a_failed_prepare_leaves_no_vote_stuck_and_a_missed_commit_is_applied_later() {
    // Old votes are resolved after the operation timeout: short here.
    let h = Harness::start_with(3, |c| c.timeouts.operation_ms = 3_000);

    // Node 3 does not answer the prepare: aborted, the voters release on the signed abort.
    set_unresponsive(&h, 3, &["admin.prepare"]);
    let (status, body) = Harness::expect_api_error(put(&h, 1, "a"));
    assert_eq!((status, body.error.as_str()), (503, "change_not_applied"));
    assert_eq!(common::culprit_ids(&body), vec![3]);
    for id in 1..=3 {
        let votes = keyquorum::admin::vote::all(&node(&h, id).store).unwrap();
        assert!(votes.is_empty(), "node {id} holds {votes:?}");
    }
    set_unresponsive(&h, 3, &[]);
    assert_eq!(put(&h, 1, "b").unwrap().nodes, vec![1, 2, 3]);

    // Node 2 also misses the abort: it keeps its vote until it asks node 1 how it ended.
    set_unresponsive(&h, 3, &["admin.prepare"]);
    set_unresponsive(&h, 2, &["admin.abort"]);
    put(&h, 1, "c").expect_err("node 3 did not vote");
    assert_eq!(
        keyquorum::admin::vote::all(&node(&h, 2).store)
            .unwrap()
            .len(),
        1
    );
    set_unresponsive(&h, 3, &[]);
    set_unresponsive(&h, 2, &[]);
    poll("node 2 releases its vote", Duration::from_secs(30), || {
        keyquorum::admin::vote::all(&node(&h, 2).store)
            .unwrap()
            .is_empty()
    });
    assert_eq!(put(&h, 1, "d").unwrap().nodes, vec![1, 2, 3]);

    // Node 3 votes but misses the commit: it applies the entry from its certificate later.
    set_unresponsive(&h, 3, &["admin.commit"]);
    assert_eq!(put(&h, 1, "e").unwrap().nodes, vec![1, 2]);
    set_unresponsive(&h, 3, &[]);
    assert!(!client_names(&h, 3).contains(&"e".to_string()));
    poll(
        "node 3 applies the missed commit",
        Duration::from_secs(30),
        || client_names(&h, 3).contains(&"e".to_string()),
    );
    for id in 1..=3 {
        assert_eq!(node(&h, id).admin_seq(), 3, "node {id}");
        let names = client_names(&h, id);
        for name in ["b", "d", "e"] {
            assert!(names.contains(&name.to_string()), "node {id}: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "a" || n == "c"), "node {id}");
        assert!(keyquorum::admin::vote::all(&node(&h, id).store)
            .unwrap()
            .is_empty());
    }
}

#[test]
fn with_a_quorum_of_three_of_four_changes_commit_with_a_node_down() {
    let mut h = Harness::start_with(4, |c| c.admin.quorum = Some(3));
    h.cluster.stop(4);
    let applied = put(&h, 2, "ops").unwrap();
    assert_eq!(applied.nodes, vec![1, 2, 3]);
    // Two down: fewer than three votes, applied nowhere.
    h.cluster.stop(3);
    let (status, body) = Harness::expect_api_error(put(&h, 1, "late"));
    assert_eq!((status, body.error.as_str()), (503, "change_not_applied"));
    h.cluster.start(3).unwrap();
    h.cluster.start(4).unwrap();
    for id in 1..=4 {
        let names = client_names(&h, id);
        assert!(names.contains(&"ops".to_string()), "node {id}");
        assert!(!names.contains(&"late".to_string()), "node {id}");
    }
}

#[test]
fn a_coordinator_that_restarts_aborts_what_it_left_undecided() {
    let mut h = Harness::start(3);
    let admin = h.cluster.admin_key().clone();
    let one = node(&h, 1);
    let head = one.admin.head();
    let entry = AdminEntry {
        seq: head.seq + 1,
        prev_hash: head.hash,
        request: forwarded(&h, &admin, "POST", "/v1/clients", &client_body("g")),
    };
    let hash = entry.hash();
    // Node 1 records its proposal and node 2 votes; then node 1 stops before deciding.
    keyquorum::admin::proposal::propose(&one.store, &entry).unwrap();
    let voted = call(
        &h,
        &one,
        2,
        PeerRequest::AdminPrepare {
            entry: entry.clone(),
        },
    );
    assert!(matches!(voted, PeerResponse::AdminVote { .. }), "{voted:?}");
    let two = node(&h, 2);
    let ask = |h: &Harness| {
        call(
            h,
            &two,
            1,
            PeerRequest::AdminDecision {
                seq: entry.seq,
                entry_hash: hash.clone(),
            },
        )
    };
    // While live: undecided.
    match ask(&h) {
        PeerResponse::AdminDecided { decision } => {
            assert_eq!(decision, keyquorum::admin::proposal::Decision::Undecided)
        }
        other => panic!("{other:?}"),
    }
    drop(one);
    h.cluster.stop(1);
    h.cluster.start(1).unwrap();
    // After the restart: its signed abort, the same every time asked.
    let signature = match ask(&h) {
        PeerResponse::AdminDecided {
            decision: keyquorum::admin::proposal::Decision::Abort { signature },
        } => signature,
        other => panic!("expected an abort, got {other:?}"),
    };
    assert!(matches!(
        ask(&h),
        PeerResponse::AdminDecided {
            decision: keyquorum::admin::proposal::Decision::Abort { signature: ref s },
        } if *s == signature
    ));
    // Another entry's hash does not release the vote; this abort does.
    assert_eq!(
        keyquorum::admin::release_on_abort(&two, entry.seq, &"11".repeat(32), &signature),
        Ok(false)
    );
    assert_eq!(keyquorum::admin::vote::all(&two.store).unwrap().len(), 1);
    assert_eq!(
        keyquorum::admin::release_on_abort(&two, entry.seq, &hash, &signature),
        Ok(true)
    );
    assert!(keyquorum::admin::vote::all(&two.store).unwrap().is_empty());
    assert_eq!(put(&h, 1, "h").unwrap().nodes, vec![1, 2, 3]);
    assert!(!client_names(&h, 2).contains(&"g".to_string()));
}

/// A compromised coordinator collects every vote for an entry, signs its abort so that the
/// voters release their votes, then shows the certificate it held back: every node that
/// released its vote on that abort refuses the certificate and names the coordinator.
#[test]
fn a_coordinator_that_aborts_an_entry_and_then_certifies_it_is_refused_and_named() {
    let h = Harness::start(3);
    let admin = h.cluster.admin_key().clone();
    let one = node(&h, 1);
    let head = one.admin.head();
    let body = client_body("mallory");
    let entry = AdminEntry {
        seq: head.seq + 1,
        prev_hash: head.hash.clone(),
        request: forwarded(&h, &admin, "POST", "/v1/clients", &body),
    };
    let mut votes = BTreeMap::new();
    for peer in [1, 2, 3] {
        match call(
            &h,
            &one,
            peer,
            PeerRequest::AdminPrepare {
                entry: entry.clone(),
            },
        ) {
            PeerResponse::AdminVote { signature } => votes.insert(peer, signature),
            other => panic!("node {peer} did not vote: {other:?}"),
        };
    }
    let certificate = Certificate {
        seq: entry.seq,
        prev_hash: entry.prev_hash.clone(),
        entry_hash: entry.hash(),
        coordinator: 1,
        votes,
    };
    let abort = keyquorum::state::admin_log::sign_abort(&one.identity, entry.seq, &entry.hash(), 1);
    for peer in [1, 2, 3] {
        let answer = call(
            &h,
            &one,
            peer,
            PeerRequest::AdminAbort {
                seq: entry.seq,
                entry_hash: entry.hash(),
                signature: abort.clone(),
            },
        );
        assert!(matches!(answer, PeerResponse::Ack), "{answer:?}");
    }
    for peer in [2, 3] {
        let (culprit, why) = blamed(call(
            &h,
            &one,
            peer,
            PeerRequest::AdminCommit {
                entry: entry.clone(),
                certificate: certificate.clone(),
            },
        ));
        assert_eq!(culprit, Some(1), "{why}");
        assert!(why.contains("equivocated"), "{why}");
        assert!(metrics_name(&h, peer, 1));
        assert!(!client_names(&h, peer).contains(&"mallory".to_string()));
    }
    // The log goes on: an honest change at that position commits everywhere.
    h.rt.block_on(h.client(2).put_client(&ClientInfo {
        name: "honest".into(),
        public_key: ClientKey::generate("honest").public_hex(),
        roles: vec![],
    }))
    .unwrap();
    for id in 1..=3 {
        poll(
            "the honest change everywhere",
            Duration::from_secs(20),
            || client_names(&h, id).contains(&"honest".to_string()),
        );
    }
}
