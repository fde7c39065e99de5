//! The CLI against a live local cluster, and the demo (issues #4, #6).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{cli, Harness};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn create_sign_verify_encrypt_decrypt_from_the_command_line() {
    let h = Harness::start(3);
    let created = ok(&cli(
        &h,
        1,
        &[
            "keys",
            "create",
            "manifests",
            "--algorithm",
            "frost-ed25519",
            "--threshold",
            "2",
            "--json",
        ],
        "",
    ));
    let info: api::KeyInfo = serde_json::from_str(&created).unwrap();
    assert_eq!(info.threshold, 2);
    ok(&cli(
        &h,
        2,
        &[
            "keys",
            "create",
            "reid",
            "--algorithm",
            "hpke-x25519",
            "--threshold",
            "2",
        ],
        "",
    ));
    ok(&cli(
        &h,
        3,
        &[
            "keys",
            "create",
            "plates",
            "--algorithm",
            "ecies-secp256k1",
            "--threshold",
            "2",
            "--participants",
            "1,3",
        ],
        "",
    ));
    let listed = ok(&cli(&h, 3, &["keys", "list"], ""));
    assert!(
        listed.contains("manifests") && listed.contains("reid") && listed.contains("plates"),
        "{listed}"
    );

    let signature = ok(&cli(
        &h,
        2,
        &["sign", "--key", "manifests", "--file", "-"],
        "manifest body",
    ))
    .trim()
    .to_string();
    let verify = |message: &str| {
        let args = [
            "verify",
            "--key",
            "manifests",
            "--signature",
            &signature,
            "--message",
            message,
        ];
        cli(&h, 3, &args, "").status.code()
    };
    assert_eq!(verify("manifest body"), Some(0));
    assert_eq!(verify("other body"), Some(1));

    let records = "{\"video\":\"cam-1\",\"frame\":7,\"plates\":[\"B-KQ 1\"]}\n{\"video\":\"cam-1\",\"frame\":8,\"faces\":[[1,2,3,4]]}\n";
    for key in ["reid", "plates"] {
        let public_key = h.rt.block_on(h.client(1).get_key(key)).unwrap().public_key;
        // Offline: only the public key, no cluster.
        let sealed = ok(&Command::new(BIN)
            .args(["encrypt", "--public-key", &public_key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(records.as_bytes())
                    .unwrap();
                c.wait_with_output().unwrap()
            })
            .unwrap());
        assert_eq!(sealed.lines().count(), 2);
        assert!(
            !sealed.contains("B-KQ"),
            "plaintext leaked into the sealed records"
        );
        let opened = ok(&cli(&h, 1, &["decrypt", "--key", key], &sealed));
        let opened: Vec<serde_json::Value> = opened
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let expected: Vec<serde_json::Value> = records
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(opened, expected, "{key}");

        // The same record claimed for another frame does not open.
        let moved = sealed
            .lines()
            .next()
            .unwrap()
            .replace("\"frame\":7", "\"frame\":9");
        let out = cli(&h, 1, &["decrypt", "--key", key], &moved);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{key}: a moved record decrypted"
        );
    }
    // Records must name their place.
    let out = Command::new(BIN)
        .args(["encrypt", "--public-key", &"11".repeat(32)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"{\"frame\":1}\n")
                .unwrap();
            c.wait_with_output().unwrap()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn the_demo_runs_to_completion() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "key ceremonies (DKG, 2-of-3)",
        "ed25519-dalek verify_strict: valid; tampered manifest: rejected",
        "a record moved to another frame: refused",
        "node 3 stopped: signed again by nodes [1, 2], signature valid",
        "all steps checked out",
        "cluster stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
}

/// Refresh, reshare and retire from the command line (issue #8).
#[test]
fn key_lifecycle_from_the_command_line() {
    let h = Harness::start(3);
    let create = [
        "keys",
        "create",
        "manifests",
        "--algorithm",
        "frost-ed25519",
        "--threshold",
        "2",
        "--json",
    ];
    let created: api::KeyInfo = serde_json::from_str(&ok(&cli(&h, 1, &create, ""))).unwrap();
    let refreshed: api::KeyInfo = serde_json::from_str(&ok(&cli(
        &h,
        2,
        &["keys", "refresh", "manifests", "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(refreshed.public_key, created.public_key);
    assert_eq!(refreshed.generation, 1);
    let nothing_to_repair = cli(&h, 1, &["keys", "repair", "manifests", "--node", "2"], "");
    assert!(!nothing_to_repair.status.success());
    assert!(
        String::from_utf8_lossy(&nothing_to_repair.stderr).contains("nothing to repair"),
        "{}",
        String::from_utf8_lossy(&nothing_to_repair.stderr)
    );
    let reshared = ok(&cli(
        &h,
        3,
        &[
            "keys",
            "reshare",
            "manifests",
            "--participants",
            "1,2",
            "--threshold",
            "2",
        ],
        "",
    ));
    assert!(
        reshared.contains("2-of-2 on nodes [1, 2], generation 2"),
        "{reshared}"
    );
    let retired = ok(&cli(&h, 1, &["keys", "retire", "manifests"], ""));
    assert!(retired.starts_with("retired manifests at "), "{retired}");
    let listed = ok(&cli(&h, 2, &["keys", "list"], ""));
    assert!(listed.contains("(retired)"), "{listed}");
    let shown: api::KeyInfo =
        serde_json::from_str(&ok(&cli(&h, 3, &["keys", "show", "manifests"], ""))).unwrap();
    assert_eq!(shown.state, api::KeyState::Retired);
    assert_eq!(shown.public_key, created.public_key);
}

/// Every command explains itself with an example (issue #6).
#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        vec![],
        vec!["cluster", "init"],
        vec!["serve"],
        vec!["keys", "create"],
        vec!["keys", "list"],
        vec!["keys", "show"],
        vec!["keys", "refresh"],
        vec!["keys", "repair"],
        vec!["keys", "reshare"],
        vec!["keys", "retire"],
        vec!["sign"],
        vec!["verify"],
        vec!["encrypt"],
        vec!["decrypt"],
        vec!["status"],
        vec!["health"],
        vec!["demo"],
    ] {
        let out = Command::new(BIN)
            .args(&command)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?} --help failed");
        assert!(
            help.contains("Example") && help.contains("keyquorum "),
            "`keyquorum {} --help` has no example:\n{help}",
            command.join(" ")
        );
    }
}

/// `cluster init --tls --json` tells a script where everything is, and the configs it names
/// load and point at the generated certificates.
#[test]
fn cluster_init_with_tls_reports_its_files_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cluster");
    let out = Command::new(BIN)
        .args([
            "cluster", "init", "--nodes", "3", "--tls", "--json", "--dir",
        ])
        .arg(&target)
        .args(["--hosts", "node-1,node-2,node-3"])
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let ca = answer["ca_file"].as_str().unwrap();
    assert!(std::path::Path::new(ca).exists());
    let config = keyquorum::config::NodeConfig::load(std::path::Path::new(
        answer["configs"]["2"].as_str().unwrap(),
    ))
    .unwrap();
    let tls = config.tls.expect("[tls] in the config");
    assert!(tls.cert.exists() && tls.key.exists() && tls.ca.exists());
    assert_eq!(config.members[1].peer_url, "https://node-2:7101");
    assert_eq!(config.peer_listen.to_string(), "0.0.0.0:7101");

    // Health without a node: exit code 4 (nothing reachable).
    let out = Command::new(BIN)
        .args(["health", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}
