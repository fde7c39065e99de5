//! Crash trials against the real binary (DESIGN.md §11): nodes, the coordinator included, are
//! killed with SIGKILL at random moments of refreshes and reshares and restarted. After each
//! trial every node must settle on one generation of the same public key, and the key must
//! sign (checked with ed25519-dalek). Zero keys lost, zero diverged generations.
//!
//! A few trials run in CI; hundreds with
//! `KEYQUORUM_CRASH_TRIALS=300 cargo test --release --test crash -- --nocapture`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{Algorithm, Client, CreateKeyRequest, KeyInfo, ReshareRequest};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
const NODES: u16 = 3;

fn free_base(count: u16) -> u16 {
    keyquorum::cluster::free_port_range(count).expect("free ports")
}

struct Cluster {
    dir: PathBuf,
    base: u16,
    nodes: Vec<Option<Child>>,
    token: String,
    admin: api::ClientKey,
    rt: tokio::runtime::Runtime,
}

impl Cluster {
    fn init(dir: &Path) -> Cluster {
        Self::init_with(dir, None)
    }

    /// A cluster whose peer traffic, when `proxy` is given, goes through it: every member's
    /// `peer_url` in every config points at the proxy's port for that member instead.
    fn init_with(dir: &Path, proxy: Option<&LossyProxy>) -> Cluster {
        let base = free_base(2 * NODES);
        let out = Command::new(BIN)
            .args(["cluster", "init", "--nodes", &NODES.to_string(), "--dir"])
            .arg(dir)
            .args(["--base-port", &base.to_string(), "--passphrase-files"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(proxy) = proxy {
            for id in 1..=NODES {
                let path = dir.join(format!("node-{id}.toml"));
                let mut text = std::fs::read_to_string(&path).unwrap();
                for peer in 1..=NODES {
                    let real = base + 2 * (peer - 1) + 1;
                    let routed = proxy.start(real);
                    text = text.replace(
                        &format!("peer_url = \"http://127.0.0.1:{real}\""),
                        &format!("peer_url = \"http://127.0.0.1:{routed}\""),
                    );
                    assert!(
                        text.contains(&format!(":{routed}\"")),
                        "peer_url not rerouted"
                    );
                }
                std::fs::write(&path, text).unwrap();
            }
        }
        let token = std::fs::read_to_string(dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        let admin = api::ClientKey::from_file_text(
            &std::fs::read_to_string(dir.join("admin.key")).unwrap(),
        )
        .unwrap();
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            base,
            nodes: (0..NODES).map(|_| None).collect(),
            token,
            admin,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        };
        // All at once: a node serves key operations only once it has heard a peer's admin log.
        for id in 1..=NODES {
            cluster.spawn(id);
        }
        for id in 1..=NODES {
            cluster.wait_ready(id);
        }
        cluster
    }

    fn url(&self, id: u16) -> String {
        format!("http://127.0.0.1:{}", self.base + 2 * (id - 1))
    }

    fn client(&self, id: u16) -> Client {
        Client::with_timeout(
            self.url(id),
            Some(self.token.clone()),
            Duration::from_secs(30),
        )
        .with_signer(self.admin.clone())
    }

    fn spawn(&mut self, id: u16) {
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(self.dir.join(format!("node-{id}.toml")))
            .env("KEYQUORUM_TIMEOUTS_RECONCILE_MS", "300")
            .env("KEYQUORUM_TIMEOUTS_PEER_MS", "2000")
            .env("KEYQUORUM_TIMEOUTS_CEREMONY_MS", "20000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.nodes[usize::from(id) - 1] = Some(child);
    }

    /// Waits until node `id` listens and has caught up (`GET /v1/health` says "ok").
    fn wait_ready(&self, id: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ready = || {
            self.rt
                .block_on(self.client(id).health())
                .is_ok_and(|h| h.status == "ok")
        };
        while !ready() {
            assert!(Instant::now() < deadline, "node {id} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill(&mut self, id: u16) {
        if let Some(mut child) = self.nodes[usize::from(id) - 1].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Every node's view of `key`, once all agree on one generation with nothing pending and
    /// no node keeps a replaced share; panics after 30 s.
    fn settled(&self, key: &str) -> KeyInfo {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let views: Vec<KeyInfo> = (1..=NODES)
                .filter_map(|id| self.rt.block_on(self.client(id).get_key(key)).ok())
                .collect();
            let status = self.rt.block_on(self.client(1).status()).ok();
            let agreed = views.len() == usize::from(NODES)
                && views.iter().all(|v| v.pending_generation.is_none())
                && views.windows(2).all(|w| w[0] == w[1])
                && status.is_some_and(|s| s.unsettled_keys.is_empty());
            if agreed {
                return views.into_iter().next().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "key {key} never settled: {:?}",
                views
                    .iter()
                    .map(|v| (v.generation, v.pending_generation))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Cluster {
    /// A 2-of-3 frost-ed25519 key named "manifests".
    fn create_manifests(&self) -> KeyInfo {
        self.rt
            .block_on(self.client(1).create_key(&CreateKeyRequest {
                name: "manifests".into(),
                algorithm: Algorithm::FrostEd25519,
                threshold: 2,
                participants: None,
                policy: None,
            }))
            .unwrap()
    }

    /// A signature through node `via`, checked with ed25519-dalek against `key`.
    fn signs(&self, via: u16, key: &KeyInfo, message: &str) {
        let signed = self
            .rt
            .block_on(self.client(via).sign("manifests", message.as_bytes()))
            .unwrap_or_else(|e| panic!("{message}: signing through node {via}: {e}"));
        assert!(
            verifies(key, message.as_bytes(), &signed.signature),
            "{message}"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=NODES {
            self.kill(id);
        }
    }
}

/// An HTTP proxy in front of each node's peer port that loses a share of the peer messages,
/// one request at a time: a lost request (the node never sees it) or a lost answer (the node
/// acted on it, the answer never comes back). Either way the connection is cut.
struct LossyProxy {
    /// Messages lost, per thousand.
    loss: Arc<AtomicU32>,
    /// Messages lost so far.
    lost: Arc<AtomicU32>,
    /// Lose the next message whatever the dice say: every trial loses at least one.
    lose_next: Arc<std::sync::atomic::AtomicBool>,
}

/// Reads one HTTP/1.1 message (head and a `content-length` body); `None` at the end.
fn read_message(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut message = Vec::new();
    let mut byte = [0u8; 1];
    while !message.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        message.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&message).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let start = message.len();
    message.resize(start + length, 0);
    stream.read_exact(&mut message[start..]).ok()?;
    Some(message)
}

impl LossyProxy {
    fn new() -> LossyProxy {
        LossyProxy {
            loss: Arc::new(AtomicU32::new(0)),
            lost: Arc::new(AtomicU32::new(0)),
            lose_next: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Listens on a free port and forwards to `target`; returns the port.
    fn start(&self, target: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (loss, lost, next) = (self.loss.clone(), self.lost.clone(), self.lose_next.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (loss, lost, next) = (loss.clone(), lost.clone(), next.clone());
                std::thread::spawn(move || {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)) else {
                        return;
                    };
                    let mut client = client;
                    while let Some(request) = read_message(&mut client) {
                        let roll = rand::thread_rng().gen_range(0..1000);
                        let dropped = next.swap(false, Ordering::Relaxed)
                            || roll < loss.load(Ordering::Relaxed);
                        if dropped {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                        if dropped && roll % 2 == 1 {
                            return; // the request never arrives
                        }
                        if server.write_all(&request).is_err() {
                            return;
                        }
                        let Some(answer) = read_message(&mut server) else {
                            return;
                        };
                        if dropped || client.write_all(&answer).is_err() {
                            return; // the answer never comes back
                        }
                    }
                });
            }
        });
        port
    }

    /// Loses `per_mille` of the messages from now on, and the next one surely (0: none).
    fn set_loss_per_mille(&self, per_mille: u32) {
        self.loss.store(per_mille, Ordering::Relaxed);
        self.lose_next.store(per_mille > 0, Ordering::Relaxed);
    }
}

/// Trials per test: `KEYQUORUM_CRASH_TRIALS`, 4 by default (CI).
fn trials() -> usize {
    std::env::var("KEYQUORUM_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn verifies(key: &KeyInfo, message: &[u8], signature_hex: &str) -> bool {
    let key = VerifyingKey::from_bytes(&hex::decode(&key.public_key).unwrap().try_into().unwrap())
        .unwrap();
    let sig = Signature::from_slice(&hex::decode(signature_hex).unwrap()).unwrap();
    key.verify_strict(message, &sig).is_ok()
}

#[test]
fn nodes_killed_at_random_moments_of_refreshes_and_reshares_lose_no_key() {
    let trials = trials();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::init(&dir.path().join("cluster"));
    let created = cluster.create_manifests();
    // How long one uninterrupted refresh takes: kills land anywhere within it.
    let started = Instant::now();
    cluster
        .rt
        .block_on(cluster.client(1).refresh_key("manifests"))
        .unwrap();
    let span_ms = (started.elapsed().as_millis() as u64).max(20) * 3 / 2;

    let mut rng = rand::thread_rng();
    let mut generation = 1;
    let mut outcomes = (0, 0); // (committed, aborted)
    for trial in 0..trials {
        let coordinator = rng.gen_range(1..=NODES);
        let victim = rng.gen_range(1..=NODES);
        let delay = Duration::from_millis(rng.gen_range(0..=span_ms));
        let reshare = trial % 2 == 1;
        let client = cluster.client(coordinator);
        let operation = cluster.rt.spawn(async move {
            if reshare {
                let request = ReshareRequest {
                    participants: vec![1, 2, 3],
                    threshold: 2,
                    dealers: None,
                };
                client.reshare_key("manifests", &request).await
            } else {
                client.refresh_key("manifests").await
            }
        });
        std::thread::sleep(delay);
        cluster.kill(victim);
        // One trial in four loses a second node a moment later: both come back together.
        let second = (rng.gen_range(0..4) == 0)
            .then(|| rng.gen_range(1..=NODES))
            .filter(|n| *n != victim);
        if let Some(n) = second {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..=span_ms)));
            cluster.kill(n);
        }
        let _ = cluster.rt.block_on(operation);
        for n in std::iter::once(victim).chain(second) {
            cluster.spawn(n);
        }
        for n in std::iter::once(victim).chain(second) {
            cluster.wait_ready(n);
        }

        let settled = cluster.settled("manifests");
        assert_eq!(settled.public_key, created.public_key, "trial {trial}");
        assert!(
            settled.generation == generation || settled.generation == generation + 1,
            "trial {trial}: generation {} after {generation}",
            settled.generation
        );
        if settled.generation > generation {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
        generation = settled.generation;
        let signer = rng.gen_range(1..=NODES);
        let message = format!("trial {trial}");
        cluster.signs(signer, &created, &message);
        eprintln!(
            "trial {trial}: {} via node {coordinator}, node {victim} killed after {} ms{}: \
             settled on generation {generation}",
            if reshare { "reshare" } else { "refresh" },
            delay.as_millis(),
            second.map_or(String::new(), |n| format!(" and node {n} after it")),
        );
    }
    eprintln!(
        "{trials} crash trials: {} committed, {} aborted, 0 keys lost, 0 diverged",
        outcomes.0, outcomes.1
    );
}

/// Refreshes and reshares over a network that loses 2 to 10 % of the peer messages, a
/// request or an answer at a time, between real processes: after the network heals, every
/// node settles on one generation of the same key, which signs.
#[test]
fn refreshes_and_reshares_over_a_lossy_network_lose_no_key() {
    let trials = trials();
    let dir = tempfile::tempdir().unwrap();
    let proxy = LossyProxy::new();
    let cluster = Cluster::init_with(&dir.path().join("cluster"), Some(&proxy));
    let created = cluster.create_manifests();
    let mut rng = rand::thread_rng();
    let (mut generation, mut failed) = (0, 0);
    for trial in 0..trials {
        // A ceremony is some twenty messages: a few percent loses one now and then, anywhere.
        proxy.set_loss_per_mille([20, 50, 100][trial % 3]);
        let coordinator = rng.gen_range(1..=NODES);
        let client = cluster.client(coordinator);
        let answer = cluster.rt.block_on(async {
            if trial % 2 == 1 {
                let request = ReshareRequest {
                    participants: vec![1, 2, 3],
                    threshold: 2,
                    dealers: None,
                };
                client.reshare_key("manifests", &request).await
            } else {
                client.refresh_key("manifests").await
            }
        });
        failed += usize::from(answer.is_err());
        proxy.set_loss_per_mille(0);
        let settled = cluster.settled("manifests");
        assert_eq!(settled.public_key, created.public_key, "trial {trial}");
        assert!(
            settled.generation == generation || settled.generation == generation + 1,
            "trial {trial}: generation {} after {generation}",
            settled.generation
        );
        generation = settled.generation;
        let message = format!("lossy trial {trial}");
        cluster.signs(coordinator, &created, &message);
    }
    let lost = proxy.lost.load(Ordering::Relaxed);
    assert!(lost > 0, "the proxy lost nothing: the test proved nothing");
    eprintln!(
        "{trials} lossy trials: {lost} peer messages lost, {failed} operations answered \
         with an error, settled on generation {generation}, 0 keys lost, 0 diverged"
    );
}
