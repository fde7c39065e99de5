//! Interop with Python implementations we did not write: pyca/cryptography verifies our
//! Ed25519 signatures, an RFC 9591 check on libsecp256k1 (coincurve) our secp256k1 ones;
//! pyhpke and eciespy produce ciphertexts the cluster decrypts, end to end (the client
//! combines, DESIGN.md §6) through the typed client and the CLI, and with the node combining.
//! `.ci/run` installs the packages from tests/interop/requirements.txt; a missing package fails
//! these tests, it never skips them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use api::client::b64;
use api::{Algorithm, CiphertextItem, DecryptRequest};
use common::{cli, Harness};

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
    assert_eq!(answer.mode, Some(api::DecryptMode::EndToEnd));
    assert_eq!(answer.results.len(), sealed.len());
    for (s, r) in sealed.iter().zip(&answer.results) {
        assert_eq!(r.plaintext.as_ref(), Some(&s.plaintext), "{:?}", r.error);
    }
    let combined =
        h.rt.block_on(h.client(2).decrypt_combined_by_node("metadata", &request))
            .unwrap();
    assert_eq!(combined.mode, Some(api::DecryptMode::Coordinator));
    assert_eq!(combined.results, answer.results);
}

/// Records sealed by pyhpke and eciespy open with `keyquorum decrypt`, end to end by default
/// and with `--combine-on-node`.
#[test]
fn python_sealed_records_decrypt_from_the_command_line() {
    let h = Harness::start(3);
    let records = "{\"video\":\"cam-1\",\"frame\":7,\"plates\":[\"B-KQ 1\"]}\n{\"video\":\"cam-1\",\"frame\":8,\"faces\":[[1,2,3,4]]}\n";
    let expected: Vec<serde_json::Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (name, algorithm, mode) in [
        ("reid", Algorithm::HpkeX25519, "records-hpke"),
        ("plates", Algorithm::EciesSecp256k1, "records-ecies"),
    ] {
        let key = h.create(1, name, algorithm, 2, None).unwrap();
        let sealed = python("encrypt.py", &[mode, &key.public_key], Some(records));
        assert_eq!(sealed.lines().count(), 2, "{sealed}");
        assert!(!sealed.contains("B-KQ"));
        // A holder sending bad partials: every end-to-end request reaches it (t = 2 and one
        // spare of three), and the CLI names it while the records still open.
        h.cluster.node(3).unwrap().faults.write().corrupt_partials = true;
        for extra in [&[][..], &["--combine-on-node"][..]] {
            let mut args = vec!["decrypt", "--key", name];
            args.extend_from_slice(extra);
            let out = cli(&h, 2, &args, &sealed);
            assert!(
                out.status.success(),
                "{name} {extra:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let opened: Vec<serde_json::Value> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(opened, expected, "{name} {extra:?}");
            if extra.is_empty() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("node 3 excluded"), "{stderr}");
            }
        }
        h.cluster.node(3).unwrap().faults.write().corrupt_partials = false;
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

/// RFC 9591's FROST(secp256k1, SHA-256) verification written in Python on libsecp256k1's
/// arithmetic (coincurve) accepts the cluster's signatures, and refuses a signature moved to
/// another message or with a flipped bit.
#[test]
fn an_independent_rfc9591_check_accepts_frost_secp256k1_signatures() {
    let h = Harness::start(3);
    let key = h
        .create(1, "receipts", Algorithm::FrostSecp256k1, 2, None)
        .unwrap();
    let mut items = Vec::new();
    for i in 0..4u16 {
        let message = format!("receipt {i} of the night shift");
        let answer =
            h.rt.block_on(h.client(i % 3 + 1).sign("receipts", message.as_bytes()))
                .unwrap();
        items.push(serde_json::json!({
            "public_key": key.public_key,
            "message": b64(message.as_bytes()),
            "signature": answer.signature,
        }));
    }
    let good = items.len();
    let mut moved = items[0].clone();
    moved["message"] = b64(b"another receipt").into();
    let mut flipped = items[1].clone();
    let mut sig = hex::decode(flipped["signature"].as_str().unwrap()).unwrap();
    sig[40] ^= 1;
    flipped["signature"] = hex::encode(sig).into();
    items.extend([moved, flipped]);
    let out = python(
        "frost_secp256k1_verify.py",
        &[],
        Some(&serde_json::Value::Array(items).to_string()),
    );
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), good + 2, "{out}");
    assert!(verdicts[..good].iter().all(|v| *v == "valid"), "{out}");
    assert_eq!(&verdicts[good..], ["invalid", "invalid"]);
}
