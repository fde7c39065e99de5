//! Decryption requests reviewed by approvers (README, "Decryption requests"): the full flow
//! with 2-of-2 approvals, every rule's refusal with its error code through every node, and a
//! compromised coordinator whose peers refuse unapproved steps on their own state.

mod common;

use std::time::Duration;

use api::{
    Algorithm, ClientError, ClientInfo, ClientKey, CreateDecryptRequest, CreateKeyRequest,
    EncryptRequest, KeyPolicy, PlaintextItem, RequestState, RequestedRecord, ReviewDecryptRequest,
};
use common::{forwarded, Harness};
use keyquorum::admin::AdminEntry;
use keyquorum::peer::{PeerErrorCode, PeerRequest, PeerResponse};
use keyquorum::transport;

const NODES: [u16; 3] = [1, 2, 3];

fn register(h: &Harness, name: &str) -> ClientKey {
    let key = ClientKey::generate(name);
    h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: name.into(),
        public_key: key.public_hex(),
        roles: vec![],
    }))
    .unwrap();
    key
}

fn as_client(h: &Harness, node: u16, key: &ClientKey) -> api::Client {
    h.unauthenticated(node).with_signer(key.clone())
}

struct World {
    h: Harness,
    analyst: ClientKey,
    dpo: ClientKey,
    dpo2: ClientKey,
    eve: ClientKey,
}

/// A 3-node cluster, key `reid` (hpke, 2-of-3) whose decryptions need dpo's and dpo2's
/// approvals, and `brief` like it whose requests expire after 2 s.
fn world() -> World {
    let h = Harness::start(3);
    let analyst = register(&h, "analyst");
    let dpo = register(&h, "dpo");
    let dpo2 = register(&h, "dpo2");
    let eve = register(&h, "eve");
    let policy = KeyPolicy {
        decrypt: vec!["analyst".into(), "eve".into()],
        read: vec!["*".into()],
        approve: vec!["dpo".into(), "dpo2".into(), "analyst".into()],
        decrypt_approvals: 2,
        ..Default::default()
    };
    for (name, ttl) in [("reid", 86_400), ("brief", 2)] {
        h.rt.block_on(h.client(1).create_key(&CreateKeyRequest {
            name: name.into(),
            algorithm: Algorithm::HpkeX25519,
            threshold: 2,
            participants: None,
            policy: Some(KeyPolicy {
                request_ttl_seconds: ttl,
                ..policy.clone()
            }),
        }))
        .unwrap();
    }
    World {
        h,
        analyst,
        dpo,
        dpo2,
        eve,
    }
}

fn records(h: &Harness, key: &str, texts: &[&str]) -> Vec<RequestedRecord> {
    let sealed =
        h.rt.block_on(
            h.client(1).encrypt(
                key,
                &EncryptRequest {
                    plaintexts: texts
                        .iter()
                        .map(|t| PlaintextItem {
                            plaintext: api::client::b64(t.as_bytes()),
                            ..Default::default()
                        })
                        .collect(),
                },
            ),
        )
        .unwrap();
    sealed
        .ciphertexts
        .into_iter()
        .enumerate()
        .map(|(i, item)| RequestedRecord {
            item,
            video: Some("cam-7.mp4".into()),
            frame: Some(100 + i as u64),
        })
        .collect()
}

fn create(w: &World, via: u16, key: &str, texts: &[&str]) -> api::DecryptRequestCreated {
    let request = CreateDecryptRequest {
        ciphertexts: records(&w.h, key, texts),
        reason: "court order 2026/117".into(),
    };
    w.h.rt
        .block_on(as_client(&w.h, via, &w.analyst).create_decrypt_request(key, &request))
        .unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn review(
    w: &World,
    via: u16,
    who: &ClientKey,
    id: &str,
    approve: bool,
) -> Result<api::DecryptRequestInfo, ClientError> {
    w.h.rt
        .block_on(as_client(&w.h, via, who).review_decrypt_request(
            id,
            approve,
            "checked the order",
        ))
}

fn state_everywhere(w: &World, id: &str) -> RequestState {
    let states: Vec<RequestState> = NODES
        .iter()
        .map(|n| {
            w.h.rt
                .block_on(w.h.client(*n).get_decrypt_request(id))
                .unwrap()
                .state
        })
        .collect();
    assert!(states.windows(2).all(|p| p[0] == p[1]), "{states:?}");
    states[0]
}

fn audit_actions(h: &Harness, node: u16, request: &str) -> Vec<String> {
    let page = h.rt.block_on(h.client(node).audit(None, 1000)).unwrap();
    page.entries
        .iter()
        .filter(|e| e.details.get("request").and_then(|v| v.as_str()) == Some(request))
        .filter(|e| e.outcome != "denied")
        .map(|e| e.action.clone())
        .collect()
}

#[test]
fn a_request_approved_by_two_is_executed_once_by_its_requester() {
    let w = world();
    let h = &w.h;
    let created = create(&w, 1, "reid", &["face crop 17", "plate KQ-42"]);
    assert_eq!(created.state, RequestState::Pending);
    assert_eq!(created.approvals_needed, 2);
    assert_eq!(created.id.len(), 32);
    // Every node holds it, with its labels and reason.
    for node in NODES {
        let shown =
            h.rt.block_on(h.client(node).get_decrypt_request(&created.id))
                .unwrap();
        assert_eq!(shown.requester, "analyst");
        assert_eq!(shown.reason, "court order 2026/117");
        assert_eq!(shown.records, 2);
        assert_eq!(shown.labels[1].frame, Some(101));
        assert_eq!(shown.labels[0].video.as_deref(), Some("cam-7.mp4"));
        assert_eq!(shown.expires_at, created.expires_at);
        let pending =
            h.rt.block_on(
                h.client(node)
                    .list_decrypt_requests(Some(RequestState::Pending)),
            )
            .unwrap();
        assert!(
            pending.requests.iter().any(|r| r.id == created.id),
            "node {node}"
        );
    }
    // Executing before the approvals: refused through every node.
    for node in NODES {
        let r = h
            .rt
            .block_on(as_client(h, node, &w.analyst).execute_decrypt_request_by_node(&created.id));
        assert_eq!(code(r), (409, "not_approved".into()), "node {node}");
    }
    let after_one = review(&w, 2, &w.dpo, &created.id, true).unwrap();
    assert_eq!(after_one.state, RequestState::Pending);
    assert_eq!(after_one.approvals[0].client, "dpo");
    assert_eq!(after_one.approvals[0].comment, "checked the order");
    let after_two = review(&w, 3, &w.dpo2, &created.id, true).unwrap();
    assert_eq!(after_two.state, RequestState::Approved);
    assert_eq!(state_everywhere(&w, &created.id), RequestState::Approved);
    // Executed by another client: refused everywhere.
    for node in NODES {
        let r =
            h.rt.block_on(as_client(h, node, &w.eve).execute_decrypt_request_by_node(&created.id));
        assert_eq!(code(r), (403, "not_requester".into()), "node {node}");
    }
    // The requester executes end to end through node 3: exactly the approved records open.
    let answer =
        h.rt.block_on(as_client(h, 3, &w.analyst).execute_decrypt_request(&created.id))
            .unwrap();
    let opened: Vec<Vec<u8>> = answer
        .results
        .iter()
        .map(|r| api::client::unb64(r.plaintext.as_ref().expect("opened")).unwrap())
        .collect();
    assert_eq!(
        opened,
        vec![b"face crop 17".to_vec(), b"plate KQ-42".to_vec()]
    );
    assert_eq!(state_everywhere(&w, &created.id), RequestState::Executed);
    // Once only, whichever node is asked.
    for node in NODES {
        let r = h
            .rt
            .block_on(as_client(h, node, &w.analyst).execute_decrypt_request_by_node(&created.id));
        assert_eq!(code(r), (409, "already_executed".into()), "node {node}");
    }
    // Every node's audit trail tells who asked, who approved, and the execution with the
    // records' hashes.
    for node in NODES {
        let actions = audit_actions(h, node, &created.id);
        for action in [
            "decrypt_request.create",
            "decrypt_request.approve",
            "decrypt_request.execute",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "node {node}: {actions:?}"
            );
        }
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "decrypt_request.approve")
                .count(),
            2
        );
        let page = h.rt.block_on(h.client(node).audit(None, 1000)).unwrap();
        let execution = page
            .entries
            .iter()
            .find(|e| e.action == "decrypt_request.execute" && e.outcome == "ok")
            .unwrap();
        assert_eq!(
            execution.details["items_sha256"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            execution.details["approvers"],
            serde_json::json!(["dpo", "dpo2"])
        );
    }

    // Coordinator-combine mode works as well, for a second request.
    let second = create(&w, 2, "reid", &["frame 9"]);
    review(&w, 1, &w.dpo, &second.id, true).unwrap();
    review(&w, 1, &w.dpo2, &second.id, true).unwrap();
    let answer =
        h.rt.block_on(as_client(h, 1, &w.analyst).execute_decrypt_request_by_node(&second.id))
            .unwrap();
    assert_eq!(
        api::client::unb64(answer.results[0].plaintext.as_ref().unwrap()).unwrap(),
        b"frame 9"
    );
}

#[test]
fn every_rule_is_enforced_with_its_error_through_every_node() {
    let w = world();
    let h = &w.h;
    let first = create(&w, 1, "reid", &["a"]);
    let other = create(&w, 1, "reid", &["b"]);
    for node in NODES {
        // The requester approving its own request (it is on the approve list).
        assert_eq!(
            code(review(&w, node, &w.analyst, &first.id, true)),
            (403, "self_approval".into())
        );
        // A client outside the approve list.
        assert_eq!(
            code(review(&w, node, &w.eve, &first.id, true)),
            (403, "not_an_approver".into())
        );
    }
    review(&w, 2, &w.dpo, &first.id, true).unwrap();
    for node in NODES {
        // A second approval by the same approver, or a refusal after it.
        assert_eq!(
            code(review(&w, node, &w.dpo, &first.id, true)),
            (409, "duplicate_approval".into())
        );
        assert_eq!(
            code(review(&w, node, &w.dpo, &first.id, false)),
            (409, "duplicate_approval".into())
        );
    }

    // An approval moved to another request: dpo2 signed an approval of `first`; sent to
    // `other`'s path, its signature no longer verifies (the id is in the signed path).
    let body = serde_json::to_vec(&ReviewDecryptRequest {
        comment: "ok".into(),
        content_sha256: first.content_sha256.clone(),
    })
    .unwrap();
    // Posts `body` to `other`'s approve path, signed for the approve path of `signed_for`.
    let approve_other = |node: u16, signed_for: &str| {
        let signature = w.dpo2.sign_request(
            Some(node),
            "POST",
            &format!("/v1/decrypt-requests/{signed_for}/approve"),
            &body,
        );
        let resp = reqwest::blocking::Client::new()
            .post(format!(
                "{}/v1/decrypt-requests/{}/approve",
                h.cluster.client_url(node),
                other.id
            ))
            .header("content-type", "application/json")
            .header("authorization", signature.to_header())
            .body(body.clone())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<api::ErrorBody>().unwrap().error)
    };
    for node in NODES {
        // Signed for `first`, posted to `other`.
        assert_eq!(
            approve_other(node, &first.id),
            (401, "bad_signature".to_string())
        );
        // Signed for `other` but naming `first`'s content: it approves no request.
        assert_eq!(
            approve_other(node, &other.id),
            (409, "content_mismatch".to_string())
        );
    }
    assert_eq!(state_everywhere(&w, &other.id), RequestState::Pending);
    assert!(h
        .rt
        .block_on(h.client(3).get_decrypt_request(&other.id))
        .unwrap()
        .approvals
        .is_empty());

    // A refusal closes the request: no approval or execution after it.
    let refused = review(&w, 3, &w.dpo2, &first.id, false).unwrap();
    assert_eq!(refused.state, RequestState::Denied);
    assert_eq!(refused.refusals[0].client, "dpo2");
    assert_eq!(state_everywhere(&w, &first.id), RequestState::Denied);
    for node in NODES {
        assert_eq!(
            code(review(&w, node, &w.dpo2, &first.id, true)),
            (409, "request_denied".into())
        );
        let r = h
            .rt
            .block_on(as_client(h, node, &w.analyst).execute_decrypt_request_by_node(&first.id));
        assert_eq!(code(r), (409, "request_denied".into()));
    }

    // An expired request: neither approved nor executed, and each node audits the expiry.
    let brief = create(&w, 1, "brief", &["c"]);
    review(&w, 1, &w.dpo, &brief.id, true).unwrap();
    review(&w, 1, &w.dpo2, &brief.id, true).unwrap();
    std::thread::sleep(Duration::from_millis(3_000));
    assert_eq!(state_everywhere(&w, &brief.id), RequestState::Expired);
    for node in NODES {
        let r = h
            .rt
            .block_on(as_client(h, node, &w.analyst).execute_decrypt_request_by_node(&brief.id));
        assert_eq!(code(r), (409, "request_expired".into()), "node {node}");
        let actions = audit_actions(h, node, &brief.id);
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "decrypt_request.expire")
                .count(),
            1,
            "node {node}: {actions:?}"
        );
    }
    let pending_after = review(&w, 2, &w.dpo, &other.id, true);
    assert!(pending_after.is_ok(), "{pending_after:?}");
    // An unknown request, to read or to review.
    let unknown = "00112233445566778899aabbccddeeff";
    let read = code(h.rt.block_on(h.client(2).get_decrypt_request(unknown)));
    assert_eq!((read.0, read.1.as_str()), (404, "no_such_request"));
    let reviewed = review(&w, 2, &w.dpo, unknown, true);
    assert_eq!(code(reviewed).1, "no_such_request");
}

/// The refusal a node gives at the peer protocol level.
fn refusal(answer: Result<PeerResponse, transport::CallError>) -> String {
    match answer {
        Ok(PeerResponse::Error {
            code: PeerErrorCode::Unauthorized,
            message,
            ..
        }) => message,
        other => panic!("expected an authorization refusal, got {other:?}"),
    }
}

#[test]
fn a_compromised_coordinator_cannot_log_a_broken_rule_nor_execute_an_unapproved_request() {
    let w = world();
    let h = &w.h;
    let created = create(&w, 1, "reid", &["face crop 17"]);
    review(&w, 1, &w.dpo, &created.id, true).unwrap();
    let evil = h.cluster.node(1).unwrap();
    let call = |to: u16, request: PeerRequest| {
        h.rt.block_on(transport::call(
            &evil,
            to,
            &keyquorum::random_id(),
            &request,
            None,
        ))
    };
    let entry = |request: keyquorum::auth::ClientRequest| {
        let head = evil.admin.head();
        AdminEntry {
            seq: head.seq + 1,
            prev_hash: head.hash,
            request,
        }
    };
    let review_body = |content: &str| {
        serde_json::to_vec(&ReviewDecryptRequest {
            comment: String::new(),
            content_sha256: content.into(),
        })
        .unwrap()
    };
    let approve_path = format!("/v1/decrypt-requests/{}/approve", created.id);
    // Node 1 skips its own checks and proposes the requester's self-approval, a duplicate
    // approval, and a non-approver's: every other node refuses to vote for each.
    for (who, needle) in [
        (&w.analyst, "self_approval"),
        (&w.dpo, "duplicate_approval"),
        (&w.eve, "not_an_approver"),
    ] {
        let request = forwarded(
            h,
            who,
            "POST",
            &approve_path,
            &review_body(&created.content_sha256),
        );
        for peer in [2, 3] {
            let why = refusal(call(
                peer,
                PeerRequest::AdminPrepare {
                    entry: entry(request.clone()),
                },
            ));
            assert!(why.contains(needle), "node {peer}: {why}");
        }
    }
    // The requester's execution of the request that has one approval of two.
    let execute_path = format!("/v1/decrypt-requests/{}/execute", created.id);
    let execute = forwarded(h, &w.analyst, "POST", &execute_path, b"{}");
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::AdminPrepare {
                entry: entry(execute.clone()),
            },
        ));
        assert!(why.contains("not_approved"), "node {peer}: {why}");
    }
    // ... and, skipping the log, asks the holders for partials of it directly: each checks
    // its own log, finds no execution, and refuses.
    let key_session =
        h.rt.block_on(h.client(2).get_key("reid"))
            .map(|_| String::new())
            .unwrap();
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::DecryptPartial {
                key: "reid".into(),
                key_session: key_session.clone(),
                request: execute.clone(),
            },
        ));
        assert!(why.contains("not_executed"), "node {peer}: {why}");
    }
    // An approval moved to another request by rewriting the signed path: the signature fails.
    let other = create(&w, 1, "reid", &["b"]);
    let mut moved = forwarded(
        h,
        &w.dpo2,
        "POST",
        &approve_path,
        &review_body(&created.content_sha256),
    );
    moved.path = format!("/v1/decrypt-requests/{}/approve", other.id);
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::AdminPrepare {
                entry: entry(moved.clone()),
            },
        ));
        assert!(why.contains("bad_signature"), "node {peer}: {why}");
    }
    // Nothing changed anywhere.
    assert_eq!(state_everywhere(&w, &created.id), RequestState::Pending);
    assert_eq!(
        h.rt.block_on(h.client(3).get_decrypt_request(&created.id))
            .unwrap()
            .approvals
            .len(),
        1
    );
    // Once approved and executed through the log, a replay of a different execute request of
    // the same requester still gets nothing: only the logged one is served.
    review(&w, 2, &w.dpo2, &created.id, true).unwrap();
    h.rt.block_on(as_client(h, 1, &w.analyst).execute_decrypt_request_by_node(&created.id))
        .unwrap();
    let another = forwarded(h, &w.analyst, "POST", &execute_path, b"{}");
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::DecryptPartial {
                key: "reid".into(),
                key_session: String::new(),
                request: another.clone(),
            },
        ));
        assert!(why.contains("not_executed"), "node {peer}: {why}");
    }
}

#[test]
fn the_cli_runs_the_workflow_and_names_each_refusal() {
    let w = world();
    let h = &w.h;
    let dir = tempfile::tempdir().unwrap();
    let key_file = |k: &ClientKey| {
        let path = dir.path().join(format!("{}.key", k.name));
        std::fs::write(&path, k.to_file_text()).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (analyst, dpo, dpo2, eve) = (
        key_file(&w.analyst),
        key_file(&w.dpo),
        key_file(&w.dpo2),
        key_file(&w.eve),
    );
    let run = |node: u16, args: &[&str], stdin: &str| {
        let out = common::cli(h, node, args, stdin);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let records = "{\"video\":\"cam-7.mp4\",\"frame\":12,\"faces\":[[1,2,3,4]]}\n\
                   {\"video\":\"cam-7.mp4\",\"frame\":13,\"faces\":[]}\n";
    let (status, sealed, err) = run(1, &["encrypt", "--key", "reid"], records);
    assert_eq!(status, Some(0), "{err}");
    let (status, id, err) = run(
        1,
        &[
            "requests",
            "create",
            "--key",
            "reid",
            "--reason",
            "complaint 88",
            "--client-key",
            &analyst,
        ],
        &sealed,
    );
    assert_eq!(status, Some(0), "{err}");
    let id = id.trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    for node in NODES {
        let (status, listed, err) = run(node, &["requests", "list", "--state", "pending"], "");
        assert_eq!(status, Some(0), "{err}");
        assert!(
            listed.contains(&id) && listed.contains("complaint 88"),
            "node {node}: {listed}"
        );
    }
    let (status, shown, _) = run(2, &["requests", "show", &id], "");
    assert_eq!(status, Some(0));
    assert!(shown.contains("cam-7.mp4 frame 13"), "{shown}");
    // Refusals carry their error code to the user, whichever node is asked.
    for (node, args, needle) in [
        (
            1,
            vec!["requests", "approve", &id, "--client-key", &analyst],
            "self_approval",
        ),
        (
            2,
            vec!["requests", "approve", &id, "--client-key", &eve],
            "not_an_approver",
        ),
        (
            3,
            vec!["requests", "execute", &id, "--client-key", &analyst],
            "not_approved",
        ),
    ] {
        let (status, _, err) = run(node, &args, "");
        assert_eq!(status, Some(3), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (status, _, err) = run(
        2,
        &[
            "requests",
            "approve",
            &id,
            "--comment",
            "order seen",
            "--client-key",
            &dpo,
        ],
        "",
    );
    assert_eq!(status, Some(0), "{err}");
    let (status, _, err) = run(2, &["requests", "approve", &id, "--client-key", &dpo], "");
    assert_eq!(status, Some(3));
    assert!(err.contains("duplicate_approval"), "{err}");
    let (status, shown, err) = run(
        3,
        &["requests", "approve", &id, "--client-key", &dpo2, "--json"],
        "",
    );
    assert_eq!(status, Some(0), "{err}");
    let shown: api::DecryptRequestInfo = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown.state, RequestState::Approved);
    let (status, opened, err) = run(3, &["requests", "execute", &id, "--client-key", &eve], "");
    assert_eq!(status, Some(3));
    assert!(err.contains("not_requester"), "{err}");
    let (status, opened_ok, err) = run(
        1,
        &["requests", "execute", &id, "--client-key", &analyst],
        "",
    );
    assert_eq!(status, Some(0), "{err}{opened}");
    let lines: Vec<serde_json::Value> = opened_ok
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["frame"], 12);
    assert_eq!(lines[0]["faces"], serde_json::json!([[1, 2, 3, 4]]));
    let (status, _, err) = run(
        2,
        &["requests", "execute", &id, "--client-key", &analyst],
        "",
    );
    assert_eq!(status, Some(3));
    assert!(err.contains("already_executed"), "{err}");
    // A refusal through the CLI closes another request.
    let (_, other, _) = run(
        1,
        &[
            "requests",
            "create",
            "--key",
            "reid",
            "--reason",
            "fishing",
            "--client-key",
            &analyst,
        ],
        &sealed,
    );
    let other = other.trim();
    let (status, _, err) = run(
        1,
        &[
            "requests",
            "deny",
            other,
            "--comment",
            "no legal basis",
            "--client-key",
            &dpo2,
        ],
        "",
    );
    assert_eq!(status, Some(0), "{err}");
    let (_, listed, _) = run(3, &["requests", "list", "--state", "denied"], "");
    assert!(listed.contains(other), "{listed}");
    let (status, _, err) = run(
        1,
        &["requests", "execute", other, "--client-key", &analyst],
        "",
    );
    assert_eq!(status, Some(3));
    assert!(err.contains("request_denied"), "{err}");
}

/// The README's formulas for a request's id and content hash, followed by hand: a client can
/// compute both, and an approval signed over them from the README alone is accepted.
#[test]
fn the_readme_formulas_give_the_id_and_content_hash_the_nodes_use() {
    use sha2::{Digest, Sha256};
    let w = world();
    let h = &w.h;
    let body = serde_json::to_vec(&CreateDecryptRequest {
        ciphertexts: records(h, "reid", &["x"]),
        reason: "complaint 12".into(),
    })
    .unwrap();
    let nonce = "readme-recipe-nonce-0001";
    let path = "/v1/keys/reid/decrypt-requests";
    let signature =
        w.analyst
            .sign_request_at(Some(2), "POST", path, &body, api::auth::now_ms(), nonce);
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{path}", h.cluster.client_url(2)))
        .header("content-type", "application/json")
        .header("authorization", signature.to_header())
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: api::DecryptRequestCreated = resp.json().unwrap();
    let id = hex::encode(Sha256::digest(format!(
        "KQ-DECRYPT-REQUEST-ID-V1\nanalyst\n{nonce}"
    )));
    assert_eq!(created.id, id[..32]);
    let content = hex::encode(Sha256::digest(format!(
        "KQ-DECRYPT-REQUEST-V1\nreid\n{}",
        hex::encode(Sha256::digest(&body))
    )));
    assert_eq!(created.content_sha256, content);
    // An approval built from the README: a signed POST whose body names the content hash.
    let review = format!("{{\"comment\":\"ok\",\"content_sha256\":\"{content}\"}}");
    let approve_path = format!("/v1/decrypt-requests/{}/approve", created.id);
    let signature = w
        .dpo
        .sign_request(Some(3), "POST", &approve_path, review.as_bytes());
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{approve_path}", h.cluster.client_url(3)))
        .header("content-type", "application/json")
        .header("authorization", signature.to_header())
        .body(review)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let after: api::DecryptRequestInfo = resp.json().unwrap();
    assert_eq!(after.approvals[0].client, "dpo");
}

/// A request and its reviews survive a node's restart, and a node that was down while a step
/// was logged (admin quorum 2 of 3) fetches it with the log and then serves the execution.
#[test]
fn requests_survive_restarts_and_a_node_that_missed_a_step_catches_up() {
    let h = Harness::start_with(3, |c| c.admin.quorum = Some(2));
    let mut w = World {
        analyst: register(&h, "analyst"),
        dpo: register(&h, "dpo"),
        dpo2: register(&h, "dpo2"),
        eve: register(&h, "eve"),
        h,
    };
    w.h.rt
        .block_on(w.h.client(1).create_key(&CreateKeyRequest {
            name: "reid".into(),
            algorithm: Algorithm::HpkeX25519,
            threshold: 3,
            participants: None,
            policy: Some(KeyPolicy {
                decrypt: vec!["analyst".into()],
                approve: vec!["dpo".into(), "dpo2".into()],
                decrypt_approvals: 2,
                ..Default::default()
            }),
        }))
        .unwrap();
    let created = create(&w, 1, "reid", &["kept"]);
    review(&w, 1, &w.dpo, &created.id, true).unwrap();
    w.h.cluster.stop(3);
    // Logged by nodes 1 and 2 only.
    review(&w, 1, &w.dpo2, &created.id, true).unwrap();
    w.h.cluster.start(3).unwrap();
    w.h.cluster.stop(2);
    // The stopped node's last tasks may hold its store's lock for a moment.
    let mut restarted = w.h.cluster.start(2);
    for _ in 0..50 {
        if restarted.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        restarted = w.h.cluster.start(2);
    }
    restarted.unwrap();
    // A 3-of-3 key: node 3 must contribute, so it must have caught up on the approval.
    let mut answer = None;
    for _ in 0..50 {
        match w
            .h
            .rt
            .block_on(as_client(&w.h, 2, &w.analyst).execute_decrypt_request_by_node(&created.id))
        {
            Ok(a) => {
                answer = Some(a);
                break;
            }
            // Node 2 serves no key operation until it has caught up since it started.
            Err(ClientError::Api { status: 503, .. }) => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let answer = answer.expect("executed once the nodes caught up");
    assert_eq!(
        api::client::unb64(answer.results[0].plaintext.as_ref().unwrap()).unwrap(),
        b"kept"
    );
    for node in NODES {
        let shown =
            w.h.rt
                .block_on(w.h.client(node).get_decrypt_request(&created.id))
                .unwrap();
        assert_eq!(shown.state, RequestState::Executed, "node {node}");
        assert_eq!(shown.approvals.len(), 2, "node {node}");
    }
}
