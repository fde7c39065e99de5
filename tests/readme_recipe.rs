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

#[test]
fn a_request_built_from_the_readme_alone_is_accepted() {
    let h = Harness::start(3);
    let file: serde_json::Value =
        serde_json::from_str(&h.cluster.admin_key().to_file_text()).unwrap();
    let client = file["client"].as_str().unwrap().to_string();
    let secret: [u8; 32] = hex::decode(file["secret_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = SigningKey::from_bytes(&secret);
    let http = reqwest::blocking::Client::new();
    let base = h.cluster.client_url(2);
    // "Ask the node you will send to for its id."
    let health: serde_json::Value = http
        .get(format!("{base}/v1/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let node = health["node"].as_u64().unwrap();
    let body = br#"{"name":"by-hand","algorithm":"hpke-x25519","threshold":2}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let nonce = "readme-recipe-nonce-0001";
    let lines = [
        "KQ-REQUEST-V2".to_string(),
        client.clone(),
        node.to_string(),
        "POST".to_string(),
        "/v1/keys".to_string(),
        hex::encode(Sha256::digest(body)),
        ts.to_string(),
        nonce.to_string(),
    ];
    let signature = key.sign(lines.join("\n").as_bytes());
    let header = format!(
        "KQ-Ed25519 client={client},node={node},ts={ts},nonce={nonce},sig={}",
        hex::encode(signature.to_bytes())
    );
    let resp = http
        .post(format!("{base}/v1/keys?wait=true"))
        .header("content-type", "application/json")
        .header("authorization", header)
        .body(body.to_vec())
        .send()
        .unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(status.is_success(), "{status}: {text}");
}
