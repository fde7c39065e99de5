//! Audit export and retention on a running cluster: the trail streams to a JSON-lines file as
//! it is written, retention compacts the store behind a signed checkpoint, and
//! `keyquorum audit verify` checks the store from the checkpoint and the exported copy offline,
//! naming an entry edited in the copy.

mod common;

use std::path::Path;
use std::time::Duration;

use api::Algorithm;
use common::{eventually, Harness};

fn verify(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn export_of(data_dir: &Path) -> std::path::PathBuf {
    data_dir.with_file_name("audit.jsonl")
}

#[test]
fn an_exported_and_compacted_trail_verifies_and_an_edited_copy_names_the_entry() {
    let mut h = Harness::start_with(3, |c| {
        c.audit.export_file = Some(export_of(&c.data_dir));
        c.audit.retain_entries = Some(4);
        c.audit.compact_every_secs = 1;
    });
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    for i in 0..8 {
        h.rt.block_on(h.client(1).sign("sig", format!("m{i}").as_bytes()))
            .unwrap();
    }
    // Retention moves the oldest entries out of the store; the API pages from the cut on.
    let first = eventually("node 1 compacts its trail", || {
        let page = h.rt.block_on(h.client(1).audit(None, 1000)).unwrap();
        let first = page.entries.first()?.seq;
        (first > 1 && page.entries.len() <= 5).then_some(first)
    });
    let config = h.cluster.files.configs[&1].clone();
    let data_dir = keyquorum::config::NodeConfig::load(&config)
        .unwrap()
        .data_dir;
    let export = export_of(&data_dir);
    h.cluster.stop(1);
    let config = config.to_str().unwrap();
    let (code, out) = verify(&["--config", config]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("after the signed checkpoint at entry"),
        "{out}"
    );

    // The copy holds every entry, the compacted ones included, and joins the checkpoint.
    let file = export.to_str().unwrap();
    let (code, out) = verify(&["--file", file, "--config", config]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signatures verified"), "{out}");
    assert!(out.contains("joins the store's checkpoint"), "{out}");
    assert!(first > 1);
    let (code, out) = verify(&["--file", file]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("chain only"), "{out}");

    // One compacted entry edited in the copy: named, exit code 1.
    let text = std::fs::read_to_string(&export).unwrap();
    let line = text.lines().nth(1).unwrap();
    let mut entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["seq"], 2);
    entry["outcome"] = "denied".into();
    std::fs::write(&export, text.replace(line, &entry.to_string())).unwrap();
    let (code, out) = verify(&["--file", file, "--config", config]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("BROKEN: entry 2: contents do not match"),
        "{out}"
    );
}

#[test]
fn an_operation_whose_entry_cannot_be_exported_does_not_answer() {
    let h = Harness::start_with(3, |c| {
        c.audit.export_file = Some(export_of(&c.data_dir));
    });
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.rt.block_on(h.client(1).sign("sig", b"before")).unwrap();
    let one = h.cluster.node(1).unwrap();
    let exporter = one.audit.exporter().expect("export is on");
    exporter.set_failing(true);
    // The coordinator's entry is stored but cannot be exported: no signature leaves the node.
    let refused = h.rt.block_on(h.client(1).sign("sig", b"during"));
    let e = refused.expect_err("answered without its audit entry exported");
    assert!(format!("{e:?}").contains("audit"), "{e:?}");
    exporter.set_failing(false);
    h.rt.block_on(h.client(1).sign("sig", b"after")).unwrap();
    // The copy has no gap: the entry that failed was exported ahead of the next one.
    let head = one.audit.head().seq;
    assert_eq!(one.audit.exported(), Some(head));
    let data_dir = h.cluster.config(1).unwrap().data_dir;
    let file = export_of(&data_dir);
    let (code, out) = verify(&["--file", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("{head} entries")), "{out}");
}

/// The real binary, SIGKILLed again and again while it signs, exports and compacts every
/// second: afterwards its store verifies from its checkpoint and the exported copy verifies
/// whole and joins that checkpoint (no entry lost, none exported twice differently).
#[test]
fn a_node_killed_while_it_exports_and_compacts_keeps_a_verifiable_trail() {
    use std::process::{Child, Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
    let dir = tempfile::tempdir().unwrap();
    let base = keyquorum::cluster::free_port_range(6).unwrap();
    let out = Command::new(BIN)
        .args(["cluster", "init", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .args(["--base-port", &base.to_string(), "--passphrase-files"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let export = dir.path().join("node-1-audit.jsonl");
    let spawn = |id: u16| -> Child {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(dir.path().join(format!("node-{id}.toml")))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if id == 1 {
            cmd.env("KEYQUORUM_AUDIT_EXPORT_FILE", &export)
                .env("KEYQUORUM_AUDIT_RETAIN_ENTRIES", "3")
                .env("KEYQUORUM_AUDIT_COMPACT_EVERY_SECS", "1");
        }
        cmd.spawn().unwrap()
    };
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let admin = api::ClientKey::from_file_text(
        &std::fs::read_to_string(dir.path().join("admin.key")).unwrap(),
    )
    .unwrap();
    let client = |id: u16| {
        api::Client::new(
            format!("http://127.0.0.1:{}", base + 2 * (id - 1)),
            Some(token.clone()),
        )
        .with_signer(admin.clone())
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ready = |id: u16| {
        eventually("a node is ready", || {
            rt.block_on(client(id).health())
                .ok()
                .filter(|h| h.status == "ok")
        });
    };
    let mut nodes: Vec<Child> = (1..=3).map(spawn).collect();
    for id in 1..=3 {
        ready(id);
    }
    rt.block_on(client(1).create_key(&api::CreateKeyRequest {
        name: "sig".into(),
        algorithm: Algorithm::FrostEd25519,
        threshold: 2,
        participants: None,
        policy: None,
    }))
    .unwrap();
    for round in 0..4 {
        let started = std::time::Instant::now();
        // Sign for a while, across at least one compaction, then kill node 1 mid-stream.
        let until = Duration::from_millis(1200 + 300 * round);
        let signer = client(1);
        let load = rt.spawn(async move {
            let mut i = 0;
            loop {
                let _ = signer
                    .sign("sig", format!("r{round} m{i}").as_bytes())
                    .await;
                i += 1;
            }
        });
        std::thread::sleep(until.saturating_sub(started.elapsed()));
        nodes[0].kill().unwrap();
        nodes[0].wait().unwrap();
        load.abort();
        nodes[0] = spawn(1);
        ready(1);
    }
    for i in 0..5 {
        rt.block_on(client(1).sign("sig", format!("last {i}").as_bytes()))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    for mut node in nodes {
        node.kill().unwrap();
        node.wait().unwrap();
    }
    let config = dir.path().join("node-1.toml");
    let config = config.to_str().unwrap();
    let (code, out) = verify(&["--config", config]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("signed checkpoint"), "{out}");
    let (code, out) = verify(&["--file", export.to_str().unwrap(), "--config", config]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("joins the store's checkpoint"), "{out}");
}
