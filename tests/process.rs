//! The `keyquorum` binary as an operator runs it: `cluster init`, `serve`, SIGTERM, restart,
//! and a wrong passphrase (issue #2).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn keyquorum(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// A base port with `count` consecutive free ports after it.
fn free_base(count: u16) -> u16 {
    keyquorum::cluster::free_port_range(count).expect("free ports")
}

fn serve(config: &Path, passphrase: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(p) = passphrase {
        cmd.env("KEYQUORUM_PASSPHRASE", p);
    }
    cmd.spawn().unwrap()
}

/// Waits until the node at `url` listens and has caught up on client and policy changes
/// (`GET /v1/health` says "ok"); key operations are refused before that.
fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let health = reqwest::blocking::get(format!("{url}/v1/health"))
            .and_then(|r| r.json::<api::Health>());
        if health.is_ok_and(|h| h.status == "ok") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("node at {url} did not come up");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `serve` with `passphrase` exits 2, saying the passphrase is wrong.
fn refuses_passphrase(config: &Path, passphrase: &str) {
    let mut node = serve(config, Some(passphrase));
    assert_eq!(
        wait_exit(&mut node, Duration::from_secs(15)).code(),
        Some(2)
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(node.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn cluster_init_writes_private_material_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let out = keyquorum(&[
        "cluster",
        "init",
        "--nodes",
        "3",
        "--dir",
        cluster.to_str().unwrap(),
        "--base-port",
        "27100",
        "--passphrase-files",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 1..=3 {
        assert!(cluster.join(format!("node-{i}.toml")).exists());
        #[cfg(unix)]
        {
            assert_eq!(
                mode(&cluster.join(format!("node-{i}/identity.json"))),
                0o600
            );
            assert_eq!(mode(&cluster.join(format!("node-{i}/passphrase"))), 0o600);
        }
    }
    #[cfg(unix)]
    assert_eq!(mode(&cluster.join("admin.token")), 0o600);
    let token_before = std::fs::read(cluster.join("admin.token")).unwrap();
    let again = keyquorum(&[
        "cluster",
        "init",
        "--nodes",
        "3",
        "--dir",
        cluster.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    assert_eq!(
        std::fs::read(cluster.join("admin.token")).unwrap(),
        token_before,
        "init overwrote the cluster"
    );
}

/// Without --passphrase-files no passphrase is stored beside the node: each is printed once,
/// and the node starts with it as KEYQUORUM_PASSPHRASE.
#[test]
fn cluster_init_stores_no_passphrase_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let base = free_base(6);
    let out = keyquorum(&[
        "cluster",
        "init",
        "--nodes",
        "3",
        "--json",
        "--dir",
        cluster.to_str().unwrap(),
        "--base-port",
        &base.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for i in 1..=3u16 {
        assert!(!cluster.join(format!("node-{i}/passphrase")).exists());
        let text = std::fs::read_to_string(cluster.join(format!("node-{i}.toml"))).unwrap();
        assert!(!text.contains("passphrase_file"), "{text}");
        let passphrase = answer["passphrases"][i.to_string()].as_str().unwrap();
        assert_eq!(passphrase.len(), 64);
        // Nothing in the cluster directory holds it.
        for entry in walk(&cluster) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes
                    .windows(passphrase.len())
                    .any(|w| w == passphrase.as_bytes()),
                "{} holds node {i}'s passphrase",
                entry.display()
            );
        }
    }
    // Each node starts with its passphrase from the environment.
    let mut nodes: Vec<Child> = (1..=3u16)
        .map(|i| {
            serve(
                &cluster.join(format!("node-{i}.toml")),
                Some(answer["passphrases"][i.to_string()].as_str().unwrap()),
            )
        })
        .collect();
    for i in 0..3 {
        wait_healthy(&format!("http://127.0.0.1:{}", base + 2 * i));
    }
    for node in &mut nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn nodes_stop_on_sigterm_keep_their_keys_and_refuse_a_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let base = free_base(6);
    let out = keyquorum(&[
        "cluster",
        "init",
        "--nodes",
        "3",
        "--dir",
        cluster.to_str().unwrap(),
        "--base-port",
        &base.to_string(),
        "--passphrase-files",
    ]);
    assert!(out.status.success());
    let config = |i: u16| cluster.join(format!("node-{i}.toml"));
    let url = |i: u16| format!("http://127.0.0.1:{}", base + 2 * (i - 1));
    let token_file = cluster.join("admin.token");
    let key_file = cluster.join("admin.key");
    let mut nodes: Vec<Child> = (1..=3).map(|i| serve(&config(i), None)).collect();
    for i in 1..=3 {
        wait_healthy(&url(i));
    }
    let create = keyquorum(&[
        "keys",
        "create",
        "kept",
        "--algorithm",
        "frost-ed25519",
        "--threshold",
        "2",
        "--url",
        &url(1),
        "--client-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );

    // SIGTERM: a clean, prompt exit with status 0.
    let pid = nodes[1].id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(wait_exit(&mut nodes[1], Duration::from_secs(15)).success());

    // Wrong passphrase: refused with a clear message, and the data is untouched.
    refuses_passphrase(&config(2), "not the passphrase");

    // The right passphrase: the key is still there and still signs.
    nodes[1] = serve(&config(2), None);
    wait_healthy(&url(2));
    let list = keyquorum(&[
        "keys",
        "list",
        "--json",
        "--url",
        &url(2),
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("\"kept\""));
    let sign = keyquorum(&[
        "sign",
        "--key",
        "kept",
        "--message",
        "after restart",
        "--url",
        &url(2),
        "--client-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(
        sign.status.success(),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );
    let signature = String::from_utf8(sign.stdout).unwrap().trim().to_string();
    let verify = keyquorum(&[
        "verify",
        "--key",
        "kept",
        "--message",
        "after restart",
        "--signature",
        &signature,
        "--url",
        &url(3),
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(verify.status.code(), Some(0));
    let bad = keyquorum(&[
        "verify",
        "--key",
        "kept",
        "--message",
        "other",
        "--signature",
        &signature,
        "--url",
        &url(3),
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));

    // Passphrase change (issue #5) on the stopped node 2: the new one opens the store, the old
    // one no longer does.
    let old_passphrase = std::fs::read_to_string(cluster.join("node-2/passphrase")).unwrap();
    let kill = |child: &Child| {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
    };
    kill(&nodes[1]);
    assert!(wait_exit(&mut nodes[1], Duration::from_secs(15)).success());
    let new_file = dir.path().join("new-passphrase");
    std::fs::write(&new_file, "a brand new passphrase\n").unwrap();
    let change = keyquorum(&[
        "passphrase",
        "change",
        "--config",
        config(2).to_str().unwrap(),
        "--new-passphrase-file",
        new_file.to_str().unwrap(),
    ]);
    assert!(
        change.status.success(),
        "{}",
        String::from_utf8_lossy(&change.stderr)
    );
    assert_eq!(mode(&cluster.join("node-2/passphrase")), 0o600);
    refuses_passphrase(&config(2), old_passphrase.trim());
    nodes[1] = serve(&config(2), None);
    wait_healthy(&url(2));
    let sign = keyquorum(&[
        "sign",
        "--key",
        "kept",
        "--message",
        "after the passphrase change",
        "--url",
        &url(2),
        "--client-key",
        key_file.to_str().unwrap(),
    ]);
    assert!(
        sign.status.success(),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );

    for mut n in nodes {
        let _ = Command::new("kill")
            .args(["-TERM", &n.id().to_string()])
            .status();
        wait_exit(&mut n, Duration::from_secs(15));
    }
}
