//! Configuration (issue #6): the annotated example parses with the node's loader, every field
//! of the config appears in it, and the environment overrides are systematic and documented.

use std::collections::HashMap;
use std::path::PathBuf;

use keyquorum::config::{NodeConfig, ENV_OVERRIDES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> NodeConfig {
    NodeConfig::load(&root().join("deploy/keyquorum.example.toml"))
        .expect("deploy/keyquorum.example.toml must load")
}

#[test]
fn example_config_parses_and_covers_every_field() {
    let config = example();
    assert_eq!(config.id, 1);
    assert_eq!(config.members.len(), 3);
    let tls = config.tls.as_ref().expect("the example shows [tls]");
    // Relative paths resolve against the file's directory.
    assert!(
        tls.ca.ends_with("deploy/tls/ca.crt"),
        "{}",
        tls.ca.display()
    );
    assert!(config.data_dir.is_absolute() || config.data_dir.starts_with(root()));

    // Every key the loader writes is shown (and so explained) in the example.
    let text = std::fs::read_to_string(root().join("deploy/keyquorum.example.toml")).unwrap();
    let serialised = toml::to_string(&config).unwrap();
    for line in serialised.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                text.contains(&format!("\n{key} = ")),
                "field {key} is not in the example"
            );
        }
    }
}

#[test]
fn environment_overrides_follow_the_toml_paths() {
    let mut config = example();
    let env: HashMap<&str, &str> = [
        ("KEYQUORUM_NAME", "renamed"),
        ("KEYQUORUM_CLIENT_LISTEN", "127.0.0.1:9100"),
        ("KEYQUORUM_PEER_LISTEN", "127.0.0.1:9101"),
        ("KEYQUORUM_DATA_DIR", "/data"),
        ("KEYQUORUM_WORKERS", "8"),
        ("KEYQUORUM_TIMEOUTS_PEER_MS", "1234"),
        ("KEYQUORUM_TIMEOUTS_MAX_CLOCK_SKEW_MS", "999"),
        ("KEYQUORUM_TLS_CA", "/etc/ca.pem"),
        ("KEYQUORUM_CLIENT_TOKEN_SHA256", "aa, bb"),
    ]
    .into();
    config
        .apply_overrides(|k| env.get(k).map(|v| v.to_string()))
        .unwrap();
    assert_eq!(config.name, "renamed");
    assert_eq!(config.client_listen.port(), 9100);
    assert_eq!(config.peer_listen.port(), 9101);
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert_eq!(config.workers, 8);
    assert_eq!(config.timeouts.peer_ms, 1234);
    assert_eq!(config.timeouts.max_clock_skew_ms, 999);
    assert_eq!(config.tls.unwrap().ca, PathBuf::from("/etc/ca.pem"));
    assert_eq!(config.client_token_sha256, vec!["aa", "bb"]);

    // A bad value names the variable.
    let mut config = example();
    let err = config
        .apply_overrides(|k| (k == "KEYQUORUM_WORKERS").then(|| "many".to_string()))
        .unwrap_err();
    assert!(err.to_string().contains("KEYQUORUM_WORKERS"), "{err}");

    // TLS from the environment alone needs all three files.
    let mut config = example();
    config.tls = None;
    assert!(config
        .apply_overrides(|k| (k == "KEYQUORUM_TLS_CERT").then(|| "c.pem".to_string()))
        .is_err());
}

#[test]
fn every_override_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for (name, _) in ENV_OVERRIDES {
        assert!(readme.contains(name), "README.md does not list {name}");
    }
}

#[test]
fn peer_urls_must_match_the_tls_setting() {
    let mut config = example();
    config.tls = None;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
}
