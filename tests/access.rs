//! Issue #5: signed client requests checked by every node, per-key policy with approvals,
//! client changes applied everywhere or nowhere, the audit trail, sealing, rate limits.

mod common;

use api::{
    Algorithm, ClientError, ClientInfo, ClientKey, CreateKeyRequest, DecryptRequest,
    EncryptRequest, KeyPolicy, PlaintextItem, Role,
};
use common::{forwarded, Harness};
use keyquorum::peer::{PeerErrorCode, PeerRequest, PeerResponse};
use keyquorum::transport;

/// Registers a client with `roles` through node 1 and returns its key.
fn register(h: &Harness, name: &str, roles: Vec<Role>) -> ClientKey {
    let key = ClientKey::generate(name);
    let applied =
        h.rt.block_on(h.client(1).put_client(&ClientInfo {
            name: name.into(),
            public_key: key.public_hex(),
            roles,
        }))
        .unwrap();
    assert_eq!(applied.nodes.len(), h.cluster.files.configs.len());
    key
}

fn as_client(h: &Harness, node: u16, key: &ClientKey) -> api::Client {
    h.unauthenticated(node).with_signer(key.clone())
}

/// The refusal a node gives at the peer protocol level.
fn refusal(answer: Result<PeerResponse, keyquorum::transport::CallError>) -> String {
    match answer {
        Ok(PeerResponse::Error {
            code: PeerErrorCode::Unauthorized,
            message,
            ..
        }) => message,
        other => panic!("expected an authorization refusal, got {other:?}"),
    }
}

/// POSTs `body` to node `node`'s `path` with exactly the given signature header, as a client
/// (or an attacker holding a captured request) would, bypassing the typed client.
fn post_signed(
    h: &Harness,
    node: u16,
    path: &str,
    signature: &api::RequestSignature,
    body: &[u8],
) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{}{path}", h.cluster.client_url(node)))
        .header("content-type", "application/json")
        .header("authorization", signature.to_header())
        .body(body.to_vec())
        .send()
        .unwrap()
}

/// The error code of a 401 answer.
fn unauthorized_code(resp: reqwest::blocking::Response) -> String {
    assert_eq!(resp.status(), 401);
    resp.json::<api::ErrorBody>().unwrap().error
}

fn sign_body(message: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&api::SignRequest {
        message: Some(api::client::b64(message)),
        batch: None,
    })
    .unwrap()
}

#[test]
fn a_compromised_coordinator_can_neither_forge_swap_nor_replay_requests() {
    let h = Harness::start(3);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let dec = h.create(1, "dec", Algorithm::HpkeX25519, 2, None).unwrap();
    let admin = h.cluster.admin_key().clone();
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

    // Forged: node 1 signs a request as "admin" with a key that is not admin's.
    let impostor = ClientKey::generate("admin");
    let forged_sign = forwarded(
        &h,
        &impostor,
        "POST",
        "/v1/keys/sig/sign",
        &sign_body(b"pay mallory"),
    );
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::SignCommit {
                key: "sig".into(),
                key_session: String::new(),
                request: forged_sign.clone(),
            },
        ));
        assert!(
            why.contains("does not verify") && why.contains("bad_signature"),
            "{why}"
        );
    }
    let pk = hex::decode(&dec.public_key).unwrap();
    let sealed =
        h.rt.block_on(h.client(1).encrypt(
            "dec",
            &EncryptRequest {
                plaintexts: vec![PlaintextItem {
                    plaintext: api::client::b64(b"plate AB-123"),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    assert_eq!(pk.len(), 32);
    // Holders are asked from a random starting point; excluding node 3 makes nodes 1 and 2
    // the two holders every coordinator asks, as the replay checks below need.
    let decrypt_body = serde_json::to_vec(&DecryptRequest {
        ciphertexts: sealed.ciphertexts.clone(),
        exclude: vec![3],
        ..Default::default()
    })
    .unwrap();
    let forged_decrypt = forwarded(&h, &impostor, "POST", "/v1/keys/dec/decrypt", &decrypt_body);
    for peer in [2, 3] {
        let why = refusal(call(
            peer,
            PeerRequest::DecryptPartial {
                key: "dec".into(),
                key_session: String::new(),
                request: forged_decrypt.clone(),
            },
        ));
        assert!(why.contains("bad_signature"), "{why}");
    }

    // Swapped: admin really signed one message; node 1 forwards another under its signature.
    let mut swapped = forwarded(
        &h,
        &admin,
        "POST",
        "/v1/keys/sig/sign",
        &sign_body(b"approved manifest"),
    );
    swapped.body = sign_body(b"substituted manifest");
    let why = refusal(call(
        2,
        PeerRequest::SignCommit {
            key: "sig".into(),
            key_session: String::new(),
            request: swapped,
        },
    ));
    assert!(why.contains("does not verify"), "{why}");
    // Redirected: a signed decryption of one key presented as a decryption of another.
    let mut redirected = forwarded(&h, &admin, "POST", "/v1/keys/dec/decrypt", &decrypt_body);
    redirected.path = "/v1/keys/sig/sign".into();
    let why = refusal(call(
        2,
        PeerRequest::SignCommit {
            key: "sig".into(),
            key_session: String::new(),
            request: redirected,
        },
    ));
    assert!(why.contains("does not verify"), "{why}");

    // Replayed: a real decryption, addressed to node 1 and served once ...
    let send = |node: u16, signature: &api::RequestSignature| {
        post_signed(&h, node, "/v1/keys/dec/decrypt", signature, &decrypt_body)
    };
    let error_of = unauthorized_code;
    let to_node_1 = admin.sign_request(Some(1), "POST", "/v1/keys/dec/decrypt", &decrypt_body);
    assert_eq!(send(1, &to_node_1).status(), 200);
    // ... is refused when sent again, to its node or another ...
    assert_eq!(error_of(send(1, &to_node_1)), "replayed_request");
    assert_eq!(error_of(send(2, &to_node_1)), "misaddressed_request");
    // ... and when node 1 replays it to its peers in a new operation: node 2, which gave a
    // partial for it, knows the nonce.
    let replay = |signature: &api::RequestSignature| keyquorum::auth::ClientRequest {
        operation: keyquorum::random_id(),
        admin_seq: evil.admin_seq(),
        method: "POST".into(),
        path: "/v1/keys/dec/decrypt".into(),
        body: decrypt_body.clone(),
        authorization: signature.clone(),
        approvals: vec![],
    };
    let why = refusal(call(
        2,
        PeerRequest::DecryptPartial {
            key: "dec".into(),
            key_session: String::new(),
            request: replay(&to_node_1),
        },
    ));
    assert!(why.contains("replayed"), "{why}");
    // A request node 1 saw only as a participant (addressed to node 2) cannot be coordinated
    // by node 1 towards node 3, which never saw it.
    let to_node_2 = admin.sign_request(Some(2), "POST", "/v1/keys/dec/decrypt", &decrypt_body);
    assert_eq!(send(2, &to_node_2).status(), 200);
    let why = refusal(call(
        3,
        PeerRequest::DecryptPartial {
            key: "dec".into(),
            key_session: String::new(),
            request: replay(&to_node_2),
        },
    ));
    assert!(why.contains("addressed to node 2"), "{why}");
    // The peers' audit trails record each refusal.
    let page = h.rt.block_on(h.client(2).audit(None, 1000)).unwrap();
    let denied = page
        .entries
        .iter()
        .filter(|e| e.outcome == "denied")
        .count();
    assert!(denied >= 4, "{:#?}", page.entries);
}

#[test]
fn policy_is_enforced_by_every_node_and_decryption_takes_two_approvers() {
    let h = Harness::start(3);
    let analyst = register(&h, "analyst", vec![]);
    let viewer = register(&h, "viewer", vec![]);
    let dpo = register(&h, "dpo", vec![]);
    let dpo2 = register(&h, "dpo2", vec![]);
    let policy = KeyPolicy {
        decrypt: vec!["analyst".into()],
        read: vec!["*".into()],
        approve: vec!["dpo".into(), "dpo2".into()],
        decrypt_approvals: 2,
        ..Default::default()
    };
    let info =
        h.rt.block_on(h.client(1).create_key(&CreateKeyRequest {
            name: "reid".into(),
            algorithm: Algorithm::HpkeX25519,
            threshold: 2,
            participants: None,
            policy: Some(policy.clone()),
        }))
        .unwrap();
    assert_eq!(info.policy, policy);
    for node in 1..=3 {
        let seen =
            h.rt.block_on(as_client(&h, node, &viewer).get_key("reid"))
                .unwrap();
        assert_eq!(seen.policy, policy, "node {node}");
    }
    let sealed =
        h.rt.block_on(h.client(1).encrypt(
            "reid",
            &EncryptRequest {
                plaintexts: vec![PlaintextItem {
                    plaintext: api::client::b64(b"face crop 17"),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    let request = DecryptRequest {
        ciphertexts: sealed.ciphertexts,
        ..Default::default()
    };
    let code = |r: Result<api::DecryptResponse, ClientError>| match r {
        Err(ClientError::Api { status, body }) => (status, body.error),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // No decrypt permission: refused by whichever node is asked, and so by every node.
    for node in 1..=3 {
        let r = h.rt.block_on(as_client(&h, node, &viewer).decrypt_approved(
            "reid",
            &request,
            &[dpo.clone(), dpo2.clone()],
        ));
        assert_eq!(code(r), (403, "forbidden".to_string()), "node {node}");
    }
    // The admin created the key but is not in its decrypt list.
    assert_eq!(
        code(h.rt.block_on(h.client(2).decrypt("reid", &request))).0,
        403
    );
    // Too few distinct approvers: none, one, the same one twice, or the requester itself.
    let analyst_client = as_client(&h, 2, &analyst);
    for approvers in [
        vec![],
        vec![dpo.clone()],
        vec![dpo.clone(), dpo.clone()],
        vec![dpo.clone(), analyst.clone()],
        vec![dpo.clone(), viewer.clone()],
    ] {
        let r =
            h.rt.block_on(analyst_client.decrypt_approved("reid", &request, &approvers));
        assert_eq!(
            code(r),
            (403, "approvals_required".to_string()),
            "{approvers:?}"
        );
    }
    // Two distinct approvers: decrypted.
    let answer = h
        .rt
        .block_on(analyst_client.decrypt_approved("reid", &request, &[dpo.clone(), dpo2.clone()]))
        .unwrap();
    assert_eq!(
        api::client::unb64(answer.results[0].plaintext.as_ref().unwrap()).unwrap(),
        b"face crop 17"
    );
    // Each participant checked the approvals itself: its audit entry names them.
    for node in answer.contributors {
        let page = h.rt.block_on(h.client(node).audit(None, 1000)).unwrap();
        let entry = page
            .entries
            .iter()
            .rev()
            .find(|e| e.action == "decrypt" && e.role == "participant" && e.outcome == "ok")
            .unwrap_or_else(|| panic!("node {node} has no decrypt entry"));
        assert_eq!(entry.client.as_deref(), Some("analyst"));
        assert_eq!(
            entry.details["approvers"],
            serde_json::json!(["dpo", "dpo2"])
        );
    }
    // A client may not change a policy it does not manage; nothing changes.
    let r = h.rt.block_on(analyst_client.set_policy(
        "reid",
        &KeyPolicy {
            decrypt: vec!["analyst".into()],
            ..Default::default()
        },
    ));
    assert!(
        matches!(r, Err(ClientError::Api { status: 403, .. })),
        "{r:?}"
    );
    let seen = h.rt.block_on(h.client(3).get_key("reid")).unwrap();
    assert_eq!(seen.policy, policy);
}

#[test]
fn client_changes_reach_every_node_or_none_and_a_node_that_missed_one_catches_up() {
    let mut h = Harness::start(3);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let ops = register(&h, "ops", vec![Role::KeyCreator]);
    for node in 1..=3 {
        let list = h.rt.block_on(h.client(node).list_clients()).unwrap();
        assert_eq!(list.admin_seq, 1, "node {node}");
        assert!(list
            .clients
            .iter()
            .any(|c| c.name == "ops" && c.roles == vec![Role::KeyCreator]));
    }
    // Not an admin: refused, nothing changed anywhere.
    let r =
        h.rt.block_on(as_client(&h, 2, &ops).put_client(&ClientInfo {
            name: "ops2".into(),
            public_key: ops.public_hex(),
            roles: vec![Role::Admin],
        }));
    assert!(
        matches!(r, Err(ClientError::Api { status: 403, .. })),
        "{r:?}"
    );
    // Unknown client, stale timestamp, bad signature: 401, each saying which.
    let stranger = ClientKey::generate("stranger");
    let r = h.rt.block_on(as_client(&h, 1, &stranger).sign("sig", b"x"));
    assert!(
        matches!(&r, Err(ClientError::Api { status: 401, body }) if body.error == "unknown_client"),
        "{r:?}"
    );
    let body = sign_body(b"x");
    let old = h.cluster.admin_key().sign_request_at(
        Some(1),
        "POST",
        "/v1/keys/sig/sign",
        &body,
        1_000,
        "0123456789abcdef0123",
    );
    assert_eq!(
        unauthorized_code(post_signed(&h, 1, "/v1/keys/sig/sign", &old, &body)),
        "stale_request"
    );
    let mut bad = h
        .cluster
        .admin_key()
        .sign_request(Some(1), "POST", "/v1/keys/sig/sign", &body);
    bad.signature = "00".repeat(64);
    assert_eq!(
        unauthorized_code(post_signed(&h, 1, "/v1/keys/sig/sign", &bad, &body)),
        "bad_signature"
    );

    // Node 3 prepares the next change but never hears the commit (a crash between the two).
    h.cluster
        .node(3)
        .unwrap()
        .faults
        .write()
        .unresponsive_kinds
        .insert("admin.commit");
    let handed_over = KeyPolicy {
        sign: vec!["ops".into()],
        manage: vec!["admin".into()],
        ..Default::default()
    };
    h.rt.block_on(h.client(1).set_policy("sig", &handed_over))
        .unwrap();
    h.cluster
        .node(3)
        .unwrap()
        .faults
        .write()
        .unresponsive_kinds
        .clear();
    assert_eq!(
        h.rt.block_on(h.client(3).list_clients()).unwrap().admin_seq,
        1
    );
    // With node 2 down, a signature needs node 3, which must not judge "ops" by the policy it
    // has: it catches up from the coordinator first, then signs.
    h.cluster.stop(2);
    let signed =
        h.rt.block_on(as_client(&h, 1, &ops).sign("sig", b"by ops"))
            .unwrap();
    assert_eq!(signed.signers, vec![1, 3]);
    assert_eq!(
        h.rt.block_on(h.client(3).list_clients()).unwrap().admin_seq,
        2
    );
    assert_eq!(
        h.rt.block_on(h.client(3).get_key("sig")).unwrap().policy,
        handed_over
    );
    // The admin may no longer sign with it.
    let r = h.rt.block_on(h.client(1).sign("sig", b"by admin"));
    assert!(
        matches!(r, Err(ClientError::Api { status: 403, .. })),
        "{r:?}"
    );

    // A node down (node 2 still is): the change is applied nowhere.
    let r = h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: "late".into(),
        public_key: ClientKey::generate("late").public_hex(),
        roles: vec![],
    }));
    match r {
        Err(ClientError::Api { status: 503, body }) => {
            assert_eq!(body.error, "change_not_applied");
            assert_eq!(common::culprit_ids(&body), vec![2]);
        }
        other => panic!("expected 503, got {other:?}"),
    }
    for node in [1, 3] {
        let list = h.rt.block_on(h.client(node).list_clients()).unwrap();
        assert_eq!(list.admin_seq, 2, "node {node}");
        assert!(list.clients.iter().all(|c| c.name != "late"));
    }
}

#[test]
fn the_audit_trail_records_operations_and_verify_names_an_edited_entry() {
    let mut h = Harness::start(3);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.rt.block_on(h.client(1).sign("sig", b"audited message"))
        .unwrap();
    let digest = keyquorum::audit::hex_sha256(b"audited message");
    let page = h.rt.block_on(h.client(2).audit(None, 1000)).unwrap();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"key.create"), "{actions:?}");
    let sign = page
        .entries
        .iter()
        .find(|e| e.action == "sign")
        .expect("node 2 committed to the signing");
    assert_eq!(sign.client.as_deref(), Some("admin"));
    assert_eq!(sign.details["messages_sha256"], serde_json::json!([digest]));
    let text = serde_json::to_string(&page).unwrap();
    assert!(
        !text.contains("audited message"),
        "the trail holds hashes, not messages"
    );
    // Paging.
    let first = h.rt.block_on(h.client(2).audit(None, 1)).unwrap();
    assert_eq!(first.entries.len(), 1);
    assert_eq!(first.next_after, Some(first.entries[0].seq));

    let config = h.cluster.files.configs[&2].clone();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyquorum"))
            .args(["audit", "verify", "--config", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    h.cluster.stop(2);
    let intact = verify();
    assert_eq!(
        intact.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact"));
    // Edit entry 2 in the stopped node's store, as someone with disk access would.
    {
        let data = keyquorum::config::NodeConfig::load(&config)
            .unwrap()
            .data_dir;
        let db = keyquorum::store::open_db(&data, 1 << 20).unwrap();
        let tree = db.open_tree("audit").unwrap();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&tree.get(2u64.to_be_bytes()).unwrap().unwrap()).unwrap();
        entry["client"] = "someone-else".into();
        tree.insert(2u64.to_be_bytes(), serde_json::to_vec(&entry).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1));
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains("BROKEN: entry 2:"), "{out}");
}

#[test]
fn a_sealed_node_refuses_key_operations_while_the_others_sign() {
    let h = Harness::start(3);
    let key = h
        .create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let state = h.rt.block_on(h.client(3).seal()).unwrap();
    assert!(state.sealed);
    assert!(h.rt.block_on(h.client(3).status()).unwrap().sealed);
    // Its peers see it sealed, and themselves not.
    let seen = h.rt.block_on(h.client(1).status()).unwrap().peers;
    let sealed: Vec<(u16, Option<bool>)> = seen.iter().map(|p| (p.node, p.sealed)).collect();
    assert_eq!(sealed, vec![(2, Some(false)), (3, Some(true))]);
    assert!(
        h.cluster.node(3).unwrap().keys.read().is_empty(),
        "shares dropped from memory"
    );
    let r = h.rt.block_on(h.client(3).sign("sig", b"m"));
    assert!(
        matches!(&r, Err(ClientError::Api { status: 503, body }) if body.error == "sealed"),
        "{r:?}"
    );
    // Public data stays readable.
    assert_eq!(
        h.rt.block_on(h.client(3).get_key("sig"))
            .unwrap()
            .public_key,
        key.public_key
    );
    // The others still sign, without node 3.
    let signed = h.rt.block_on(h.client(1).sign("sig", b"m")).unwrap();
    assert!(!signed.signers.contains(&3));
    // Only an admin seals.
    let user = register(&h, "user", vec![]);
    let r = h.rt.block_on(as_client(&h, 2, &user).seal());
    assert!(
        matches!(r, Err(ClientError::Api { status: 403, .. })),
        "{r:?}"
    );

    let r = h.rt.block_on(h.client(3).unseal("not the passphrase"));
    assert!(
        matches!(&r, Err(ClientError::Api { status: 403, body }) if body.error == "wrong_passphrase"),
        "{r:?}"
    );
    assert!(h.rt.block_on(h.client(3).status()).unwrap().sealed);
    let passphrase =
        std::fs::read_to_string(h.cluster.files.dir.join("node-3/passphrase")).unwrap();
    let state =
        h.rt.block_on(h.client(3).unseal(passphrase.trim()))
            .unwrap();
    assert!(!state.sealed);
    h.cluster
        .node(1)
        .unwrap()
        .faults
        .write()
        .unresponsive_kinds
        .insert("sign.commit");
    let signed =
        h.rt.block_on(h.client(3).sign("sig", b"after unseal"))
            .unwrap();
    assert_eq!(signed.signers, vec![2, 3]);
}

#[test]
fn a_client_over_its_rate_is_told_when_to_retry() {
    let h = Harness::start_with(2, |c| {
        c.auth.client_requests_per_second = 1;
        c.auth.client_burst = 2;
    });
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let body = sign_body(b"m");
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let sig = h
            .cluster
            .admin_key()
            .sign_request(Some(2), "POST", "/v1/keys/sig/sign", &body);
        let resp = post_signed(&h, 2, "/v1/keys/sig/sign", &sig, &body);
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(resp.json::<api::ErrorBody>().unwrap().error, "rate_limited");
        }
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
}

/// Every string in an audit entry, with where it sits.
fn strings_of(entry: &api::AuditEntry) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out)
            }),
            _ => {}
        }
    }
    let mut out = vec![];
    out.extend(entry.client.clone());
    out.extend(entry.key.clone());
    walk(&entry.details, &mut out);
    out
}

#[test]
fn a_flood_of_bad_requests_is_counted_not_stored_and_its_source_throttled() {
    let h = Harness::start(2);
    let trail_len = || {
        h.rt.block_on(h.client(1).audit(None, 10_000))
            .unwrap()
            .entries
            .len()
    };
    let before = trail_len();
    // The flood comes from 127.0.0.2; the operator's client (127.0.0.1) is another source.
    let flooder = reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let intruder = ClientKey::generate("x".repeat(1024));
    let long_key = "k".repeat(300);
    let url = h.cluster.client_url(1);
    let (mut unauthorized, mut limited) = (0, 0);
    for i in 0..300 {
        let (method, path) = if i % 2 == 0 {
            ("GET", "/v1/keys".to_string())
        } else {
            ("POST", format!("/v1/keys/{long_key}/sign"))
        };
        let body = if method == "POST" {
            sign_body(b"m")
        } else {
            vec![]
        };
        let signature = intruder.sign_request(Some(1), method, &path, &body);
        let request = if method == "POST" {
            flooder.post(format!("{url}{path}")).body(body)
        } else {
            flooder.get(format!("{url}{path}"))
        };
        let resp = request
            .header("content-type", "application/json")
            .header("authorization", signature.to_header())
            .send()
            .unwrap();
        match resp.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                limited += 1;
                assert!(resp.headers().get("retry-after").is_some());
                assert_eq!(resp.json::<api::ErrorBody>().unwrap().error, "rate_limited");
            }
            other => panic!("request {i}: unexpected status {other}"),
        }
    }
    assert!(
        unauthorized > 0 && limited > 0,
        "{unauthorized} 401, {limited} 429"
    );
    assert!(unauthorized < 300, "the source was never throttled");

    // The trail grew by a summary, not by an entry per request, and stores nothing long.
    let page = h.rt.block_on(h.client(1).audit(None, 10_000)).unwrap();
    assert!(
        page.entries.len() <= before + 3,
        "{} entries before, {} after",
        before,
        page.entries.len()
    );
    let summary = page
        .entries
        .iter()
        .find(|e| e.action == "auth.rejected")
        .expect("a summary entry");
    assert_eq!(summary.details["source"], "127.0.0.2");
    for e in &page.entries {
        for s in strings_of(e) {
            assert!(
                s.chars().count() <= 128,
                "entry {}: {} chars stored",
                e.seq,
                s.len()
            );
        }
    }
    let claimed = summary.details["last_claimed_client"].as_str().unwrap();
    assert!(claimed.ends_with("[truncated]"), "{claimed}");

    // Even a valid request from the flooding address waits; other sources are served.
    let admin = h.cluster.admin_key();
    let signature = admin.sign_request(Some(1), "GET", "/v1/clients", b"");
    let resp = flooder
        .get(format!("{url}/v1/clients"))
        .header("authorization", signature.to_header())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 429);
    h.rt.block_on(h.client(1).list_clients()).unwrap();
    let metrics = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("keyquorum_rejected_requests_total{reason=\"unknown_client\"}"),
        "{metrics}"
    );
}

/// POSTs a signed request with exactly the given approval headers, bypassing the typed client.
fn post_approved(
    h: &Harness,
    node: u16,
    path: &str,
    signature: &api::RequestSignature,
    approvals: &[&api::RequestSignature],
    body: &[u8],
) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{}{path}", h.cluster.client_url(node)))
        .header("content-type", "application/json")
        .header("authorization", signature.to_header())
        .body(body.to_vec());
    for approval in approvals {
        req = req.header("x-kq-approval", approval.to_header());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let error = if status >= 400 {
        resp.json::<api::ErrorBody>().unwrap().error
    } else {
        String::new()
    };
    (status, error)
}

#[test]
fn an_approval_serves_one_request_of_one_requester_once() {
    let h = Harness::start(3);
    let analyst = register(&h, "analyst", vec![]);
    let analyst2 = register(&h, "analyst2", vec![]);
    let dpo = register(&h, "dpo", vec![]);
    let policy = KeyPolicy {
        decrypt: vec!["analyst".into(), "analyst2".into()],
        approve: vec!["dpo".into(), "analyst".into()],
        decrypt_approvals: 1,
        ..Default::default()
    };
    h.rt.block_on(h.client(1).create_key(&CreateKeyRequest {
        name: "reid".into(),
        algorithm: Algorithm::HpkeX25519,
        threshold: 2,
        participants: None,
        policy: Some(policy),
    }))
    .unwrap();
    let sealed =
        h.rt.block_on(h.client(1).encrypt(
            "reid",
            &EncryptRequest {
                plaintexts: vec![PlaintextItem {
                    plaintext: api::client::b64(b"record"),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    let body = serde_json::to_vec(&DecryptRequest {
        ciphertexts: sealed.ciphertexts,
        ..Default::default()
    })
    .unwrap();
    let path = "/v1/keys/reid/decrypt";
    let fresh = || analyst.sign_request(Some(2), "POST", path, &body);
    // A request signature is no approval: neither the requester's own header, nor another
    // client's signature of the request in the request form (node `*`).
    let request = fresh();
    let (status, code) = post_approved(&h, 2, path, &request, &[&request], &body);
    assert_eq!((status, code.as_str()), (401, "bad_signature"));
    let request = fresh();
    let dpo_as_request = dpo.sign_request(None, "POST", path, &body);
    let (status, code) = post_approved(&h, 2, path, &request, &[&dpo_as_request], &body);
    assert_eq!((status, code.as_str()), (401, "bad_signature"));
    // An approval of another requester's request, of another request, or addressed to a
    // node, does not serve.
    for make in [
        |dpo: &ClientKey, r: &api::RequestSignature, p: &str, b: &[u8]| {
            dpo.approve("analyst2", &r.nonce, "POST", p, b)
        },
        |dpo: &ClientKey, _: &api::RequestSignature, p: &str, b: &[u8]| {
            dpo.approve("analyst", "another-request-nonce", "POST", p, b)
        },
        |dpo: &ClientKey, r: &api::RequestSignature, p: &str, b: &[u8]| {
            let mut a = dpo.approve("analyst", &r.nonce, "POST", p, b);
            a.node = Some(2);
            a
        },
    ] {
        let request = fresh();
        let approval = make(&dpo, &request, path, &body);
        let (status, code) = post_approved(&h, 2, path, &request, &[&approval], &body);
        assert_eq!(
            (status, code.as_str()),
            (401, "bad_signature"),
            "{approval:?}"
        );
    }
    // The approval of this request: decrypted.
    let request = fresh();
    let approval = dpo.approve("analyst", &request.nonce, "POST", path, &body);
    let (status, code) = post_approved(&h, 2, path, &request, &[&approval], &body);
    assert_eq!(status, 200, "{code}");
    // It serves no other requester, and not twice.
    let request2 = analyst2.sign_request(Some(2), "POST", path, &body);
    let (status, code) = post_approved(&h, 2, path, &request2, &[&approval], &body);
    assert_eq!((status, code.as_str()), (401, "bad_signature"));
    let (status, code) = post_approved(&h, 2, path, &request, &[&approval], &body);
    assert_eq!((status, code.as_str()), (401, "replayed_request"));
}

#[test]
fn a_public_key_names_one_client() {
    let h = Harness::start(3);
    let alice = register(&h, "alice", vec![]);
    for node in 1..=3 {
        let r = h.rt.block_on(h.client(node).put_client(&ClientInfo {
            name: "alias".into(),
            public_key: alice.public_hex().to_uppercase(),
            roles: vec![Role::Admin],
        }));
        match r {
            Err(ClientError::Api { status, body }) => {
                assert_eq!(status, 400, "node {node}: {body:?}");
                assert!(body.message.contains("alice"), "{}", body.message);
            }
            other => panic!("node {node}: expected a refusal, got {other:?}"),
        }
    }
    // Re-registering the same name with its own key (new roles) is still allowed.
    register_again(&h, "alice", &alice, vec![Role::Auditor]);
    // A signature by alice's key under another client's name does not verify.
    let mut forged = alice.sign_request(Some(1), "POST", "/v1/keys/k/sign", b"{}");
    forged.client = h.cluster.admin_key().name.clone();
    let resp = post_signed(&h, 1, "/v1/keys/k/sign", &forged, b"{}");
    assert_eq!(unauthorized_code(resp), "bad_signature");
}

fn register_again(h: &Harness, name: &str, key: &ClientKey, roles: Vec<Role>) {
    h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: name.into(),
        public_key: key.public_hex(),
        roles,
    }))
    .unwrap();
}
