//! The README's recipe for a signed request (README, "Access control") is enough to write a
//! client: this test follows it by hand — its own formatting, SHA-256 and Ed25519 signing,
//! none of the crate's signing code — and the node accepts the request.

mod common;

use common::Harness;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The lines of the first ```text block after `marker`.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let rest = &text[text.find(marker).expect(marker)..];
    let start = rest.find("```text\n").expect("a text block") + "```text\n".len();
    let end = start + rest[start..].find("```").expect("its end");
    rest[start..end]
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_readme_states_the_forms_this_test_follows() {
    let text = readme();
    assert_eq!(
        block_after(&text, "**Signed requests.**"),
        [
            "KQ-REQUEST-V2",
            "{client name}",
            "{node id}",
            "{METHOD, upper case}",
            "{path, without the query string}",
            "{hex SHA-256 of the body bytes, lower case; of the empty string when there is no body}",
            "{timestamp, milliseconds since the Unix epoch}",
            "{nonce, 16–64 of [A-Za-z0-9_-], never reused}",
        ]
    );
    assert!(text.contains(
        "`Authorization: KQ-Ed25519 client={client name},node={node id},ts={timestamp},nonce={nonce},sig={hex of the 64-byte signature}`"
    ));
    assert_eq!(
        block_after(&text, "An approval\n  approves one request"),
        [
            "KQ-APPROVAL-V1",
            "{approver name}",
            "{requester name}",
            "{the request's nonce}",
            "{METHOD}",
            "{path}",
            "{hex SHA-256 of the body}",
            "{timestamp ms}",
            "{the approval's own nonce}",
        ]
    );
}

/// The signing key in a client key file, read as a third-party client would.
fn signing_key_of(key: &api::ClientKey) -> (String, SigningKey) {
    let file: serde_json::Value = serde_json::from_str(&key.to_file_text()).unwrap();
    let secret: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (
        file["client"].as_str().unwrap().to_string(),
        SigningKey::from_bytes(&secret),
    )
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Signs `lines` joined by `\n` and makes the `KQ-Ed25519` header value.
fn header(
    key: &SigningKey,
    client: &str,
    node: &str,
    ts: u128,
    nonce: &str,
    lines: &[String],
) -> String {
    let signature = key.sign(lines.join("\n").as_bytes());
    format!(
        "KQ-Ed25519 client={client},node={node},ts={ts},nonce={nonce},sig={}",
        hex::encode(signature.to_bytes())
    )
}

#[test]
fn an_approved_decryption_built_from_the_readme_alone_is_accepted() {
    let h = Harness::start(3);
    let dpo_key = api::ClientKey::generate("dpo");
    h.rt.block_on(h.client(1).put_client(&api::ClientInfo {
        name: "dpo".into(),
        public_key: dpo_key.public_hex(),
        roles: vec![],
    }))
    .unwrap();
    h.rt.block_on(h.client(1).create_key(&api::CreateKeyRequest {
        name: "reid".into(),
        algorithm: api::Algorithm::HpkeX25519,
        threshold: 2,
        participants: None,
        policy: Some(api::KeyPolicy {
            decrypt: vec!["admin".into()],
            approve: vec!["dpo".into()],
            decrypt_approvals: 1,
            ..Default::default()
        }),
    }))
    .unwrap();
    let sealed =
        h.rt.block_on(h.client(1).encrypt(
            "reid",
            &api::EncryptRequest {
                plaintexts: vec![api::PlaintextItem {
                    plaintext: api::client::b64(b"by hand"),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    let body = serde_json::to_vec(&api::DecryptRequest {
        ciphertexts: sealed.ciphertexts,
        ..Default::default()
    })
    .unwrap();
    let body_hash = hex::encode(Sha256::digest(&body));
    let path = "/v1/keys/reid/decrypt";
    let (requester, requester_key) = signing_key_of(h.cluster.admin_key());
    let (approver, approver_key) = signing_key_of(&dpo_key);
    let ts = now_ms();
    let nonce = "readme-decrypt-request-01";
    let request = header(
        &requester_key,
        &requester,
        "3",
        ts,
        nonce,
        &[
            "KQ-REQUEST-V2".into(),
            requester.clone(),
            "3".into(),
            "POST".into(),
            path.into(),
            body_hash.clone(),
            ts.to_string(),
            nonce.into(),
        ],
    );
    let approval_nonce = "readme-approval-nonce-01";
    let approval = header(
        &approver_key,
        &approver,
        "*",
        ts,
        approval_nonce,
        &[
            "KQ-APPROVAL-V1".into(),
            approver.clone(),
            requester.clone(),
            nonce.into(),
            "POST".into(),
            path.into(),
            body_hash,
            ts.to_string(),
            approval_nonce.into(),
        ],
    );
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{path}", h.cluster.client_url(3)))
        .header("content-type", "application/json")
        .header("authorization", request)
        .header("x-kq-approval", approval)
        .body(body)
        .send()
        .unwrap();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().unwrap();
    assert!(status.is_success(), "{status}: {answer}");
    assert_eq!(
        api::client::unb64(answer["results"][0]["plaintext"].as_str().unwrap()).unwrap(),
        b"by hand"
    );
}

#[test]
fn a_request_built_from_the_readme_alone_is_accepted() {
    let h = Harness::start(3);
    let (client, key) = signing_key_of(h.cluster.admin_key());
    let http = reqwest::blocking::Client::new();
    let base = h.cluster.client_url(2);
    // "Ask the node you will send to for its id."
    let health: serde_json::Value = http
        .get(format!("{base}/v1/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let node = health["node"].as_u64().unwrap().to_string();
    let body = br#"{"name":"by-hand","algorithm":"hpke-x25519","threshold":2}"#;
    let ts = now_ms();
    let nonce = "readme-recipe-nonce-0001";
    let authorization = header(
        &key,
        &client,
        &node,
        ts,
        nonce,
        &[
            "KQ-REQUEST-V2".into(),
            client.clone(),
            node.clone(),
            "POST".into(),
            "/v1/keys".into(),
            hex::encode(Sha256::digest(body)),
            ts.to_string(),
            nonce.into(),
        ],
    );
    // The query string is not part of the signed path.
    let resp = http
        .post(format!("{base}/v1/keys?wait=true"))
        .header("content-type", "application/json")
        .header("authorization", authorization)
        .body(body.to_vec())
        .send()
        .unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(status.is_success(), "{status}: {text}");
}
