//! Shared set-up of the integration tests: an in-process cluster on loopback (each node with
//! its own HTTP listeners, store and thread), a runtime to drive the typed client, and checks
//! that use public data only.
#![allow(dead_code)]

pub mod keys;

use std::time::Duration;

use api::{Algorithm, Client, ClientError, CreateKeyRequest, KeyInfo};
use keyquorum::cluster::{InitOptions, LocalCluster};

/// Polls `check` every 100 ms for at most 60 s; panics naming `what` when it never holds.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = check() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never happened: {what}");
}

pub struct Harness {
    pub cluster: LocalCluster,
    pub rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts an `n`-node cluster with short timeouts, so failure paths finish quickly.
    pub fn start(n: usize) -> Harness {
        Self::start_with(n, |_| {})
    }

    /// Like [`Harness::start`], with a further change to every node's configuration.
    pub fn start_with(
        n: usize,
        adjust: impl Fn(&mut keyquorum::config::NodeConfig) + Send + Sync + 'static,
    ) -> Harness {
        Self::start_with_options(n, &InitOptions::default(), adjust)
    }

    /// [`Harness::start_with`] with `cluster init`'s options, e.g. TLS.
    pub fn start_with_options(
        n: usize,
        options: &InitOptions,
        adjust: impl Fn(&mut keyquorum::config::NodeConfig) + Send + Sync + 'static,
    ) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cluster = LocalCluster::create_with(&dir.path().join("cluster"), n, options)
            .expect("cluster init");
        cluster.adjust = Some(Box::new(move |c| {
            c.timeouts.peer_ms = 2_000;
            c.timeouts.ceremony_ms = 20_000;
            c.timeouts.operation_ms = 10_000;
            c.timeouts.reconcile_ms = 300;
            adjust(c);
        }));
        cluster.start_all().expect("start nodes");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Harness {
            cluster,
            rt,
            _dir: dir,
        }
    }

    pub fn client(&self, id: u16) -> Client {
        self.cluster.client(id)
    }

    pub fn unauthenticated(&self, id: u16) -> Client {
        Client::with_timeout(self.cluster.client_url(id), None, Duration::from_secs(30))
    }

    pub fn create(
        &self,
        via: u16,
        name: &str,
        algorithm: Algorithm,
        threshold: u16,
        participants: Option<Vec<u16>>,
    ) -> Result<KeyInfo, ClientError> {
        let request = CreateKeyRequest {
            name: name.into(),
            algorithm,
            threshold,
            participants,
            policy: None,
        };
        self.rt.block_on(self.client(via).create_key(&request))
    }

    /// The error body of a failed call, or a panic naming what succeeded instead.
    pub fn expect_api_error<T: std::fmt::Debug>(
        result: Result<T, ClientError>,
    ) -> (u16, api::ErrorBody) {
        match result {
            Err(ClientError::Api { status, body }) => (status, body),
            other => panic!("expected an API error, got {other:?}"),
        }
    }
}

/// A client request as node 1 forwards it, signed now by `key` (addressed to node 1, a fresh
/// nonce), for tests that play node 1 as a coordinator — honest or compromised — at the peer
/// protocol level.
pub fn forwarded(
    h: &Harness,
    key: &api::ClientKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> keyquorum::auth::ClientRequest {
    keyquorum::auth::ClientRequest {
        operation: keyquorum::random_id(),
        admin_seq: h.cluster.node(1).map(|n| n.admin_seq()).unwrap_or(0),
        method: method.into(),
        path: path.into(),
        body: body.to_vec(),
        authorization: key.sign_request(Some(1), method, path, body),
        approvals: vec![],
    }
}

pub fn culprit_ids(body: &api::ErrorBody) -> Vec<u16> {
    body.culprits.iter().map(|c| c.node).collect()
}

/// Interpolates the group key from `threshold` verifying shares, in the exponent: checks that
/// the shares are a consistent sharing of the published key without any secret.
pub fn interpolate_verifying_shares(info: &KeyInfo, ids: &[u16]) -> Vec<u8> {
    let shares: Vec<(u16, Vec<u8>)> = ids
        .iter()
        .map(|id| {
            let s = info
                .verifying_shares
                .iter()
                .find(|s| s.node == *id)
                .expect("share");
            (*id, hex::decode(&s.verifying_share).unwrap())
        })
        .collect();
    match info.algorithm {
        Algorithm::FrostEd25519 | Algorithm::HpkeX25519 => {
            use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
            use curve25519_dalek::scalar::Scalar;
            let mut acc = EdwardsPoint::default();
            for (i, bytes) in &shares {
                let point = CompressedEdwardsY::from_slice(bytes)
                    .unwrap()
                    .decompress()
                    .unwrap();
                let mut lambda = Scalar::ONE;
                for (j, _) in &shares {
                    if j != i {
                        let (sj, si) = (Scalar::from(*j as u64), Scalar::from(*i as u64));
                        lambda *= sj * (sj - si).invert();
                    }
                }
                acc += point * lambda;
            }
            acc.compress().to_bytes().to_vec()
        }
        Algorithm::FrostSecp256k1 | Algorithm::EciesSecp256k1 => {
            use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
            use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};
            let mut acc = ProjectivePoint::IDENTITY;
            for (i, bytes) in &shares {
                let point =
                    AffinePoint::from_encoded_point(&EncodedPoint::from_bytes(bytes).unwrap())
                        .unwrap();
                let mut lambda = Scalar::ONE;
                for (j, _) in &shares {
                    if j != i {
                        let (sj, si) = (Scalar::from(*j as u64), Scalar::from(*i as u64));
                        lambda *= sj * (sj - si).invert().unwrap();
                    }
                }
                acc += ProjectivePoint::from(point) * lambda;
            }
            acc.to_affine().to_encoded_point(true).as_bytes().to_vec()
        }
    }
}

/// Runs the `keyquorum` CLI against node `node` as the cluster's admin (token and client key
/// from the environment), with `stdin` as its input.
pub fn cli(h: &Harness, node: u16, args: &[&str], stdin: &str) -> std::process::Output {
    let token = h.cluster.files.dir.join("admin.token");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(args)
        .env("KEYQUORUM_URL", h.cluster.client_url(node))
        .env("KEYQUORUM_TOKEN_FILE", token)
        .env(
            "KEYQUORUM_CLIENT_KEY",
            h.cluster.files.dir.join("admin.key"),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
