//! TLS (issue #6): a cluster from `cluster init --tls` runs a ceremony and a signing with every
//! listener on https and peers verifying each other against the cluster CA; plain HTTP, a
//! client that does not trust the CA, and a peer call without a client certificate are refused.

mod common;

use std::time::Duration;

use api::{Algorithm, Client};
use common::Harness;
use keyquorum::cluster::InitOptions;

fn tls_harness() -> Harness {
    Harness::start_with_options(
        3,
        &InitOptions {
            tls: true,
            ..Default::default()
        },
        |_| {},
    )
}

#[test]
fn tls_cluster_runs_a_ceremony_and_signs() {
    let h = tls_harness();
    let url = h.cluster.client_url(1);
    assert!(url.starts_with("https://"), "{url}");
    let config = h.cluster.config(2).unwrap();
    assert!(config
        .members
        .iter()
        .all(|m| m.peer_url.starts_with("https://")));

    let key = h
        .create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    let signed =
        h.rt.block_on(h.client(3).sign("manifests", b"over tls"))
            .unwrap();
    assert!(signed.excluded.is_empty(), "{:?}", signed.excluded);
    let valid =
        h.rt.block_on(
            h.client(2)
                .verify("manifests", b"over tls", &signed.signature),
        )
        .unwrap();
    assert!(valid.valid);
    // Every peer answers node 1's ping over mutual TLS.
    let status = h.rt.block_on(h.client(1).status()).unwrap();
    assert!(
        status.peers.iter().all(|p| p.reachable),
        "{:?}",
        status.peers
    );
    assert_eq!(key.threshold, 2);
}

#[test]
fn plain_http_and_untrusted_clients_are_refused() {
    let h = tls_harness();
    let https = h.cluster.client_url(1);
    let plain = https.replacen("https://", "http://", 1);
    let client = Client::with_timeout(plain, None, Duration::from_secs(5));
    let result = h.rt.block_on(client.health());
    assert!(
        matches!(result, Err(api::ClientError::Transport(_))),
        "plain HTTP to a TLS listener must not get an answer: {result:?}"
    );

    // https without the cluster CA: the system roots do not vouch for the node.
    let untrusted = Client::with_timeout(https.clone(), None, Duration::from_secs(5));
    assert!(h.rt.block_on(untrusted.health()).is_err());

    // With the CA it works, without a token for /v1/health.
    let ca = std::fs::read(h.cluster.ca_file().expect("tls/ca.crt")).unwrap();
    let trusted = Client::with_ca(https, None, &ca).unwrap();
    assert_eq!(h.rt.block_on(trusted.health()).unwrap().status, "ok");

    // The peer listener wants a client certificate from the cluster CA.
    let peer_url = h.cluster.config(1).unwrap().members[0].peer_url.clone();
    let no_cert = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer = h.rt.block_on(async {
        no_cert
            .post(format!("{peer_url}/peer/v1/message"))
            .body("{}")
            .send()
            .await
    });
    assert!(
        answer.is_err(),
        "a peer call without a client certificate got through: {answer:?}"
    );
}

#[test]
fn cli_talks_to_a_tls_node_with_ca() {
    let h = tls_harness();
    let ca = h.cluster.ca_file().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["status", "--json"])
        .env("KEYQUORUM_URL", h.cluster.client_url(2))
        .env("KEYQUORUM_CA", &ca)
        .env(
            "KEYQUORUM_TOKEN_FILE",
            h.cluster.files.dir.join("admin.token"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: api::Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status.node, 2);
    assert!(status.peers.iter().all(|p| p.reachable));
}
