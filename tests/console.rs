//! The console (`/ui/`) in a real browser: `tests/browser/console.py` drives Chromium through
//! chromedriver (both from the distribution, installed by `.ci/run`) against this cluster. An
//! approver loads their key file, approves a pending request, sees its state change and finds
//! the approval in the audit page; the requester sees an API refusal explained in words; every
//! node then holds the approval. With `UPDATE_SCREENSHOTS=1` the screenshots replace the
//! README's in `docs/console/`.

mod common;

use api::{
    Algorithm, ClientInfo, ClientKey, CreateDecryptRequest, CreateKeyRequest, EncryptRequest,
    KeyPolicy, PlaintextItem, RequestState, RequestedRecord, Role,
};
use common::Harness;

fn register(h: &Harness, name: &str, roles: Vec<Role>) -> ClientKey {
    let key = ClientKey::generate(name);
    h.rt.block_on(h.client(1).put_client(&ClientInfo {
        name: name.into(),
        public_key: key.public_hex(),
        roles,
    }))
    .unwrap();
    key
}

#[test]
fn console_serves_a_strict_policy_and_no_third_party_code() {
    let h = Harness::start(2);
    let http = reqwest::blocking::Client::new();
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let resp = http
            .get(format!("{}{path}", h.cluster.client_url(1)))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let body = resp.text().unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
}

#[test]
fn an_approver_approves_a_pending_request_in_a_real_browser() {
    let h = Harness::start(3);
    let analyst = register(&h, "analyst", vec![]);
    let dpo = register(&h, "dpo", vec![]);
    // The second officer also reads the audit trail.
    let dpo2 = register(&h, "dpo2", vec![Role::Auditor]);
    h.rt.block_on(h.client(1).create_key(&CreateKeyRequest {
        name: "reid".into(),
        algorithm: Algorithm::HpkeX25519,
        threshold: 2,
        participants: None,
        policy: Some(KeyPolicy {
            decrypt: vec!["analyst".into()],
            read: vec!["*".into()],
            approve: vec!["dpo".into(), "dpo2".into()],
            decrypt_approvals: 2,
            ..Default::default()
        }),
    }))
    .unwrap();
    let sealed =
        h.rt.block_on(h.client(1).encrypt(
            "reid",
            &EncryptRequest {
                plaintexts: vec![PlaintextItem {
                    plaintext: api::client::b64(b"{\"faces\":[[10,20,64,64]]}"),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    let analyst_client = h.unauthenticated(1).with_signer(analyst.clone());
    let created =
        h.rt.block_on(
            analyst_client.create_decrypt_request(
                "reid",
                &CreateDecryptRequest {
                    ciphertexts: sealed
                        .ciphertexts
                        .into_iter()
                        .map(|item| RequestedRecord {
                            item,
                            video: Some("cam-7.mp4".into()),
                            frame: Some(4711),
                        })
                        .collect(),
                    reason: "court order 2026/117: identify the driver".into(),
                },
            ),
        )
        .unwrap();
    h.rt.block_on(
        h.unauthenticated(1)
            .with_signer(dpo)
            .review_decrypt_request(&created.id, true, "order checked"),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dpo2.key");
    std::fs::write(&key_file, dpo2.to_file_text()).unwrap();
    let requester_file = dir.path().join("analyst.key");
    std::fs::write(&requester_file, analyst.to_file_text()).unwrap();
    let shots = if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console")
    } else {
        dir.path().join("shots")
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["--url", &h.cluster.client_url(2)])
        .arg("--key-file")
        .arg(&key_file)
        .args(["--request", &created.id, "--approver", "dpo2"])
        .arg("--requester-key-file")
        .arg(&requester_file)
        .arg("--shots")
        .arg(&shots)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the browser test failed (Chromium, chromedriver and selenium come from .ci/run):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "2-pending-request.png",
        "3-approved-request.png",
        "5-audit-approval.png",
    ] {
        let png = std::fs::read(shots.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}");
    }
    // The approval the browser signed holds on every node.
    for node in 1..=3 {
        let shown =
            h.rt.block_on(h.client(node).get_decrypt_request(&created.id))
                .unwrap();
        assert_eq!(shown.state, RequestState::Approved, "node {node}");
        assert_eq!(shown.approvals[1].client, "dpo2");
        assert_eq!(shown.approvals[1].comment, "Court order 2026/117 checked");
    }
}
