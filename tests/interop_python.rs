//! Interop with Python implementations we did not write (issues #3, #4): pyca/cryptography
//! verifies our Ed25519 signatures; pyhpke and eciespy produce ciphertexts the cluster decrypts.
//! `.ci/run` installs the packages from tests/interop/requirements.txt; a missing package fails
//! these tests, it never skips them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use api::client::b64;
use api::{Algorithm, CiphertextItem, DecryptRequest};
use common::Harness;

fn python(script: &str, args: &[&str], stdin: Option<&str>) -> String {
    let path = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (see .ci/run)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed (install tests/interop/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pyca_cryptography_verifies_frost_ed25519_signatures() {
    let h = Harness::start(3);
    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let mut signatures = Vec::new();
    for i in 0..5 {
        let message = format!("{{\"dataset\":\"city-walk\",\"part\":{i}}}");
        let answer =
            h.rt.block_on(h.client(i % 3 + 1).sign("manifests", message.as_bytes()))
                .unwrap();
        signatures.push(
            serde_json::json!({"message": b64(message.as_bytes()), "signature": answer.signature}),
        );
    }
    let input =
        serde_json::json!({"public_key": key.public_key, "signatures": signatures}).to_string();
    let out = python("verify_ed25519.py", &[], Some(&input));
    assert!(out.contains("5 signatures verified"), "{out}");
}

#[derive(serde::Deserialize)]
struct Sealed {
    item: CiphertextItem,
    plaintext: String,
}

fn decrypt_python_ciphertexts(algorithm: Algorithm, scheme: &str) {
    let h = Harness::start(5);
    let key = h.create(1, "metadata", algorithm, 3, None).unwrap();
    let sealed: Vec<Sealed> =
        serde_json::from_str(&python("encrypt.py", &[scheme, &key.public_key], None)).unwrap();
    assert!(!sealed.is_empty());
    let request = DecryptRequest {
        ciphertexts: sealed.iter().map(|s| s.item.clone()).collect(),
        ..Default::default()
    };
    let answer =
        h.rt.block_on(h.client(4).decrypt("metadata", &request))
            .unwrap();
    for (s, r) in sealed.iter().zip(&answer.results) {
        assert_eq!(r.plaintext.as_ref(), Some(&s.plaintext), "{:?}", r.error);
    }
}

#[test]
fn pyhpke_ciphertexts_decrypt_for_every_aead() {
    decrypt_python_ciphertexts(Algorithm::HpkeX25519, "hpke");
}

#[test]
fn eciespy_ciphertexts_decrypt() {
    decrypt_python_ciphertexts(Algorithm::EciesSecp256k1, "ecies");
}
