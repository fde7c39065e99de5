//! Nodes sealed by a PKCS#11 token (README, "Running with an HSM"), against SoftHSM2 in a
//! temporary directory: one node and then every node of a cluster on the token; each way a
//! token seal can fail, with its message and nothing changed; `store rewrap` both ways; nodes
//! whose peer-signing key is on the token.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use api::Algorithm;
use common::keys::{round_trip, sign, verifies};
use common::Harness;
use keyquorum::config::{NodeConfig, SealKind, SealSettings};
use keyquorum::store::{Store, TokenSeal, Unsealer};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
const TOKEN: &str = "keyquorum";
const PIN: &str = "4711-user";

/// One SoftHSM2 token directory for this test process: SoftHSM2 reads its configuration
/// (`SOFTHSM2_CONF`) and its tokens once, when the module is initialised.
struct SoftHsm {
    _dir: tempfile::TempDir,
    module: PathBuf,
    pin_file: PathBuf,
}

fn softhsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // Before any node loads the module; children inherit it.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let init = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN])
            .args(["--so-pin", "so-pin-0815"])
            .output()
            .expect("softhsm2-util runs (Debian package softhsm2; .ci/run installs it)");
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let module = [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libsofthsm2.so (Debian package softhsm2)");
        let pin_file = dir.path().join("user.pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        SoftHsm {
            _dir: dir,
            module,
            pin_file,
        }
    })
}

/// One test at a time on the token: SoftHSM2 keeps a token in files that another process (a
/// `serve` or `store rewrap` child) can read half-written while this one creates a key there,
/// and then does not see the token at all.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static TOKEN_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = TOKEN_USERS.lock().unwrap_or_else(|e| e.into_inner());
    let _ = softhsm();
    guard
}

/// `[seal]` for a key labelled `key_label` on the test token.
fn seal_settings(key_label: &str) -> SealSettings {
    let hsm = softhsm();
    SealSettings {
        kind: SealKind::Pkcs11,
        module: Some(hsm.module.clone()),
        token_label: Some(TOKEN.into()),
        key_label: Some(key_label.into()),
        pin_file: Some(hsm.pin_file.clone()),
        identity_on_token: false,
    }
}

fn token_key(key_label: &str) -> TokenSeal {
    TokenSeal {
        module: softhsm().module.clone(),
        token_label: TOKEN.into(),
        key_label: key_label.into(),
        pin: PIN.to_string().into(),
    }
}

/// Node `id`'s key label in a test: every test shares the token, so each has its own prefix.
fn label(prefix: &str, id: u16) -> String {
    format!("{prefix}-node-{id}-seal")
}

/// A harness whose nodes in `on_token` are sealed by the token.
fn start(n: usize, on_token: &'static [u16]) -> (Harness, String) {
    let prefix = keyquorum::random_id();
    let p = prefix.clone();
    let h = Harness::start_with(n, move |c| {
        if on_token.contains(&c.id) {
            c.seal = seal_settings(&label(&p, c.id));
        }
    });
    (h, prefix)
}

fn seal_kind(h: &Harness, id: u16) -> String {
    h.rt.block_on(h.client(id).status()).unwrap().seal
}

fn metrics(h: &Harness, id: u16) -> String {
    let url = format!("{}/metrics", h.cluster.client_url(id));
    h.rt.block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() })
}

/// Node `via` signs with a key that needs node 1's share, and decrypts likewise.
fn signs_and_decrypts(h: &Harness, via: u16, message: &[u8]) {
    let info = common::keys::info(h, via, "manifests");
    let signed = sign(h, via, "manifests", message);
    assert!(signed.signers.contains(&1), "{:?}", signed.signers);
    assert!(verifies(&info, message, &signed.signature));
    round_trip(h, via, "faces", message);
}

fn create_keys(h: &Harness) {
    // 2-of-2 on nodes 1 and 2: nothing signs or decrypts without node 1's share.
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, Some(vec![1, 2]))
        .unwrap();
    h.create(1, "faces", Algorithm::HpkeX25519, 2, Some(vec![1, 2]))
        .unwrap();
}

#[test]
fn one_node_on_the_token_runs_ceremonies_signs_decrypts_restarts_seals_and_refreshes() {
    let _token = exclusive();
    let (mut h, prefix) = start(3, &[1]);
    assert_eq!(seal_kind(&h, 1), "pkcs11");
    assert_eq!(seal_kind(&h, 2), "passphrase");
    assert!(metrics(&h, 1).contains("seal_kind{kind=\"pkcs11\"} 1"));
    assert!(metrics(&h, 2).contains("seal_kind{kind=\"passphrase\"} 1"));
    let out = common::cli(&h, 1, &["status"], "");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("sealed: false (by pkcs11)"), "{printed}");
    // The node made its key on the token at its first start; node 2 has none there.
    assert!(token_key(&label(&prefix, 1)).key_present().unwrap());
    assert!(!token_key(&label(&prefix, 2)).key_present().unwrap());

    create_keys(&h);
    signs_and_decrypts(&h, 1, b"first");
    signs_and_decrypts(&h, 2, b"first, via node 2");

    // Sealed, the node refuses; an unsigned unseal is refused; an admin's unseal goes
    // through the token with no passphrase.
    h.rt.block_on(h.client(1).seal()).unwrap();
    let (status, body) =
        Harness::expect_api_error(h.rt.block_on(h.client(1).sign("manifests", b"x")));
    assert_eq!((status, body.error.as_str()), (503, "sealed"), "{body:?}");
    let (status, _) = Harness::expect_api_error(h.rt.block_on(h.unauthenticated(1).unseal("")));
    assert_eq!(status, 401);
    assert!(h.cluster.node(1).unwrap().is_sealed());
    let out = common::cli(&h, 1, &["unseal"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!h.cluster.node(1).unwrap().is_sealed());
    signs_and_decrypts(&h, 1, b"after unseal");
    // The passphrase node beside it still wants its passphrase, and only that.
    h.rt.block_on(h.client(2).seal()).unwrap();
    let (status, body) = Harness::expect_api_error(h.rt.block_on(h.unauthenticated(2).unseal("")));
    assert_eq!(
        (status, body.error.as_str()),
        (400, "invalid_request"),
        "{body:?}"
    );
    let passphrase = NodeConfig::load(&h.cluster.files.configs[&2])
        .unwrap()
        .passphrase()
        .unwrap();
    h.rt.block_on(h.unauthenticated(2).unseal(&passphrase))
        .unwrap();
    signs_and_decrypts(&h, 2, b"after both unseals");

    // A restart unseals through the token by itself.
    restart(&mut h, 1);
    signs_and_decrypts(&h, 2, b"after restart");

    let before = common::keys::info(&h, 1, "manifests");
    let refreshed = h.rt.block_on(h.client(1).refresh_key("manifests")).unwrap();
    assert_eq!(refreshed.public_key, before.public_key);
    assert_eq!(refreshed.generation, before.generation + 1);
    restart(&mut h, 1);
    signs_and_decrypts(&h, 1, b"after refresh and restart");
}

#[test]
fn every_node_on_the_token_runs_ceremonies_signs_decrypts_restarts_and_refreshes() {
    let _token = exclusive();
    // As `cluster init --hsm-module … --hsm-token … --hsm-pin-file …` writes it.
    let hsm = softhsm();
    let options = keyquorum::cluster::InitOptions {
        hsm: Some(keyquorum::cluster::HsmOptions {
            module: hsm.module.clone(),
            token_label: TOKEN.into(),
            pin_file: Some(hsm.pin_file.clone()),
            identity: false,
            key_prefix: "node".into(),
        }),
        ..Default::default()
    };
    let mut h = Harness::start_with_options(3, &options, |_| {});
    for id in [1, 2, 3] {
        let config = NodeConfig::load(&h.cluster.files.configs[&id]).unwrap();
        assert_eq!(config.seal.kind, SealKind::Pkcs11);
        assert_eq!(seal_kind(&h, id), "pkcs11");
        assert!(token_key(&format!("node-{id}-seal")).key_present().unwrap());
    }
    create_keys(&h);
    signs_and_decrypts(&h, 2, b"all on the token");
    h.rt.block_on(h.client(2).seal()).unwrap();
    let out = common::cli(&h, 2, &["unseal"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.cluster.stop_all();
    h.cluster.start_all().unwrap();
    signs_and_decrypts(&h, 2, b"after restarting all");
    h.rt.block_on(h.client(1).refresh_key("faces")).unwrap();
    h.rt.block_on(h.client(1).refresh_key("manifests")).unwrap();
    signs_and_decrypts(&h, 1, b"after refresh");
}

/// `keyquorum serve --config FILE` with node 1's token seal in the environment, `changes`
/// overriding it; waits for the exit.
fn serve_with(config: &Path, prefix: &str, changes: &[(&str, &str)]) -> Output {
    let hsm = softhsm();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(config)
        .env_remove("KEYQUORUM_PASSPHRASE")
        .env("KEYQUORUM_SEAL_KIND", "pkcs11")
        .env("KEYQUORUM_SEAL_MODULE", &hsm.module)
        .env("KEYQUORUM_SEAL_TOKEN_LABEL", TOKEN)
        .env("KEYQUORUM_SEAL_KEY_LABEL", label(prefix, 1))
        .env("KEYQUORUM_SEAL_PIN_FILE", &hsm.pin_file);
    for (name, value) in changes {
        cmd.env(name, value);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve with {changes:?} did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn each_token_failure_says_what_is_wrong_exits_2_and_changes_nothing() {
    let _token = exclusive();
    let (mut h, prefix) = start(3, &[1, 2, 3]);
    create_keys(&h);
    signs_and_decrypts(&h, 1, b"before");
    h.cluster.stop(1);
    let config = h.cluster.files.configs[&1].clone();
    let missing = format!("{prefix}-never-made");
    let wrong_pin = h.cluster.files.dir.join("wrong.pin");
    std::fs::write(&wrong_pin, "0000-wrong\n").unwrap();
    let wrong_pin = wrong_pin.to_str().unwrap().to_string();
    let other_key = label(&prefix, 2);
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![("KEYQUORUM_SEAL_MODULE", "/nonexistent/libpkcs11.so")],
            "PKCS#11 module /nonexistent/libpkcs11.so not found".into(),
        ),
        (
            vec![("KEYQUORUM_SEAL_TOKEN_LABEL", "absent-token")],
            "token absent-token not found in PKCS#11 module".into(),
        ),
        (
            vec![("KEYQUORUM_SEAL_PIN_FILE", &wrong_pin)],
            "error: wrong PIN for token keyquorum\n".into(),
        ),
        (
            vec![("KEYQUORUM_SEAL_PIN", "0000-wrong")],
            "error: wrong PIN for token keyquorum\n".into(),
        ),
        (
            vec![("KEYQUORUM_SEAL_KEY_LABEL", &missing)],
            format!("key {missing} is missing on token keyquorum"),
        ),
        (
            vec![("KEYQUORUM_SEAL_KEY_LABEL", &other_key)],
            format!("key {other_key} on token keyquorum cannot unwrap this store's data key"),
        ),
        (
            vec![("KEYQUORUM_SEAL_KIND", "passphrase")],
            "the store's data key is wrapped by pkcs11 but this node is configured for [seal] \
             kind = \"passphrase\""
                .into(),
        ),
    ];
    for (changes, expected) in &cases {
        let out = serve_with(&config, &prefix, changes);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{changes:?}: {stderr}");
        assert!(stderr.contains(expected.as_str()), "{changes:?}: {stderr}");
        if !expected.starts_with("error: wrong PIN") {
            assert!(
                stderr.contains("nothing was changed"),
                "{changes:?}: {stderr}"
            );
        }
    }
    // A key that was missing was not made; the node's own key still unwraps its store.
    assert!(!token_key(&missing).key_present().unwrap());
    h.cluster.start(1).unwrap();
    assert_eq!(seal_kind(&h, 1), "pkcs11");
    signs_and_decrypts(&h, 1, b"after every failure");
}

/// Stops node `id` and starts it again from its config (opening the store waits for the lock
/// the stopped node's threads still hold).
fn restart(h: &mut Harness, id: u16) {
    h.cluster.stop(id);
    h.cluster.start(id).unwrap();
}

/// `keyquorum store rewrap` as an operator runs it.
fn rewrap(config: &Path, to: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["store", "rewrap", "--config"])
        .arg(config)
        .args(["--to", to])
        .env_remove("KEYQUORUM_PASSPHRASE")
        .env_remove("KEYQUORUM_SEAL_PIN");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn store_rewrap_moves_a_node_to_the_token_and_back_and_it_still_signs() {
    let _token = exclusive();
    let (mut h, prefix) = start(3, &[]);
    create_keys(&h);
    h.cluster.stop(1);
    let config = h.cluster.files.configs[&1].clone();
    // The operator adds the token's settings; the kind still says passphrase.
    let hsm = softhsm();
    let key_label = label(&prefix, 1);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n# The token this node moves to.\n[seal]\nkind = \"passphrase\"\nmodule = {:?}\n\
         token_label = \"{TOKEN}\"\nkey_label = \"{key_label}\"\npin_file = {:?}\n",
        hsm.module, hsm.pin_file
    ));
    std::fs::write(&config, text).unwrap();
    let data_dir = NodeConfig::load(&config).unwrap().data_dir;

    // A wrong PIN stops the move before anything is written: no key on the token, and the
    // passphrase still opens the store.
    let out = rewrap(&config, "pkcs11", &[("KEYQUORUM_SEAL_PIN", "0000-wrong")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: wrong PIN for token keyquorum\n"
    );
    assert!(!token_key(&key_label).key_present().unwrap());
    let passphrase = NodeConfig::load(&config).unwrap().passphrase().unwrap();
    drop(Store::open(&data_dir, &passphrase).unwrap());

    let out = rewrap(&config, "pkcs11", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved = NodeConfig::load(&config).unwrap();
    assert_eq!(moved.seal.kind, SealKind::Pkcs11);
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("# The token this node moves to."));
    assert!(token_key(&key_label).key_present().unwrap());
    // The passphrase no longer opens it; the token does.
    assert!(Store::open(&data_dir, &passphrase).is_err());
    drop(
        Store::open_with(
            &data_dir,
            &Unsealer::Token(token_key(&key_label)),
            &Default::default(),
        )
        .unwrap(),
    );
    h.cluster.start(1).unwrap();
    assert_eq!(seal_kind(&h, 1), "pkcs11");
    signs_and_decrypts(&h, 1, b"on the token");

    h.cluster.stop(1);
    let out = rewrap(&config, "passphrase", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        NodeConfig::load(&config).unwrap().seal.kind,
        SealKind::Passphrase
    );
    drop(Store::open(&data_dir, &passphrase).unwrap());
    h.cluster.start(1).unwrap();
    assert_eq!(seal_kind(&h, 1), "passphrase");
    signs_and_decrypts(&h, 1, b"back on the passphrase");
}

#[test]
fn cluster_init_with_hsm_options_writes_token_seals_and_prints_no_passphrase() {
    let _token = exclusive();
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cluster", "init", "--nodes", "2", "--json", "--dir"])
        .arg(dir.path().join("c"))
        .arg("--hsm-module")
        .arg(&hsm.module)
        .args(["--hsm-token", TOKEN, "--hsm-pin-file"])
        .arg(&hsm.pin_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["passphrases"], serde_json::json!({}));
    for id in [1u16, 2] {
        let config = NodeConfig::load(&dir.path().join(format!("c/node-{id}.toml"))).unwrap();
        let expected = SealSettings {
            key_label: Some(format!("node-{id}-seal")),
            ..seal_settings("")
        };
        assert_eq!(config.seal, expected);
        assert!(config.passphrase_file.is_none());
    }
    // The module without the token is a usage error.
    let out = Command::new(BIN)
        .args(["cluster", "init", "--nodes", "2", "--dir"])
        .arg(dir.path().join("d"))
        .arg("--hsm-module")
        .arg(&hsm.module)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_store_on_the_token_seals_unseals_rewraps_and_refuses_a_passphrase() {
    let _token = exclusive();
    let _ = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let label = format!("{}-store", keyquorum::random_id());
    let seal = token_key(&label);
    let store = Store::open_with(
        dir.path(),
        &Unsealer::Token(seal.clone()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(store.seal_kind().unwrap(), "pkcs11");
    // Sealed and unsealed again through the token; a second rewrap to the same key is a
    // no-op that still checks the new header.
    store.seal();
    store.unseal_with(&Unsealer::Token(seal.clone())).unwrap();
    store.rewrap(&Unsealer::Token(seal)).unwrap();
    drop(store);
    let e = Store::open_with(
        dir.path(),
        &Unsealer::Passphrase("whatever".to_string().into()),
        &Default::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("wrapped by pkcs11"), "{e}");
}

#[test]
fn identity_on_token_nodes_sign_peer_messages_the_others_accept_and_need_the_token_to_start() {
    let _token = exclusive();
    let hsm = softhsm();
    let prefix = keyquorum::random_id();
    let options = keyquorum::cluster::InitOptions {
        hsm: Some(keyquorum::cluster::HsmOptions {
            module: hsm.module.clone(),
            token_label: TOKEN.into(),
            pin_file: Some(hsm.pin_file.clone()),
            identity: true,
            key_prefix: prefix.clone(),
        }),
        ..Default::default()
    };
    let mut h = Harness::start_with_options(3, &options, |_| {});
    for id in [1u16, 2, 3] {
        // The identity file names the key on the token and holds no signing secret.
        let path = NodeConfig::load(&h.cluster.files.configs[&id])
            .unwrap()
            .identity_file;
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(file.get("sign_secret_key").is_none(), "{file}");
        assert_eq!(file["sign_key_on_token"], format!("{prefix}-{id}-identity"));
        let e = keyquorum::identity::Identity::load(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is on a PKCS#11 token"), "{e}");
    }
    // A ceremony needs every member's signed messages, accepted by the others; signing and
    // decrypting need node 1's.
    create_keys(&h);
    signs_and_decrypts(&h, 2, b"signed on the token");
    h.rt.block_on(h.client(2).refresh_key("manifests")).unwrap();
    signs_and_decrypts(&h, 1, b"after refresh");

    // Without the token the node does not start: its identity is there and nowhere else.
    h.cluster.stop(1);
    let config = h.cluster.files.configs[&1].clone();
    let out = serve_with(
        &config,
        &prefix,
        &[
            ("KEYQUORUM_SEAL_TOKEN_LABEL", "absent-token"),
            ("KEYQUORUM_SEAL_KEY_LABEL", &format!("{prefix}-1-seal")),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("token absent-token not found"), "{stderr}");
    let out = serve_with(
        &config,
        &prefix,
        &[
            ("KEYQUORUM_SEAL_PIN", "0000-wrong"),
            ("KEYQUORUM_SEAL_KEY_LABEL", &format!("{prefix}-1-seal")),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: wrong PIN for token keyquorum\n"
    );
    // An identity file pointed at another node's key on the token is caught at start.
    let identity_file = NodeConfig::load(&config).unwrap().identity_file;
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&identity_file).unwrap()).unwrap();
    file["sign_key_on_token"] = format!("{prefix}-2-identity").into();
    let swapped = h.cluster.files.dir.join("swapped-identity.json");
    std::fs::write(&swapped, file.to_string()).unwrap();
    let out = serve_with(
        &config,
        &prefix,
        &[
            ("KEYQUORUM_IDENTITY_FILE", swapped.to_str().unwrap()),
            ("KEYQUORUM_SEAL_KEY_LABEL", &format!("{prefix}-1-seal")),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the key {prefix}-2-identity on token keyquorum is not this node's identity key"
        )),
        "{stderr}"
    );
    h.cluster.start(1).unwrap();
    signs_and_decrypts(&h, 1, b"back with the token");
}
