//! Creating a local cluster (`keyquorum cluster init`) and running one in-process (the demo
//! and the integration tests), each node on its own thread with its own actix system so that
//! it can be stopped and restarted like a process.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{Member, NodeConfig, Timeouts, TlsConfig};
use crate::identity::Identity;
use crate::node::Node;

/// The files `cluster init` writes.
pub struct ClusterFiles {
    pub dir: PathBuf,
    pub configs: BTreeMap<u16, PathBuf>,
    pub token: String,
    /// The first admin client's key (also in `DIR/admin.key`).
    pub admin: api::ClientKey,
    /// Each node's store passphrase. Written to `node-<i>/passphrase` only when
    /// [`InitOptions::passphrase_files`] asks; otherwise the operator keeps it elsewhere and
    /// gives it to the node as `KEYQUORUM_PASSPHRASE` (README, "Running a cluster").
    pub passphrases: BTreeMap<u16, zeroize::Zeroizing<String>>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Where [`free_ports`] looks: below Linux's default ephemeral range (32768–60999), so that
/// no outgoing connection is given a node's port between choosing it and binding it.
const LOCAL_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this process has handed out: a port is free only from its check until its node binds
/// it, and clusters started side by side (tests run in parallel threads) must not be given the
/// same one in that window.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn hand_out(ports: impl IntoIterator<Item = u16>) -> bool {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let ports: Vec<u16> = ports.into_iter().collect();
    if ports.iter().any(|p| handed.contains(p)) {
        return false;
    }
    handed.extend(ports);
    true
}

/// `count` distinct free loopback ports (checked by binding them, then released for the
/// nodes), drawn at random outside the ephemeral range, none handed out before by this
/// process.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count * 200 {
        if held.len() == count {
            break;
        }
        let port = rng.gen_range(LOCAL_PORTS);
        if !hand_out([port]) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    anyhow::ensure!(held.len() == count, "found only {} free ports", held.len());
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// The first of `count` consecutive free loopback ports outside the ephemeral range, for a
/// cluster written with `--base-port`.
pub fn free_port_range(count: u16) -> anyhow::Result<u16> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..500 {
        let base = rng.gen_range(LOCAL_PORTS.start..LOCAL_PORTS.end - count);
        if (base..base + count).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
            && hand_out(base..base + count)
        {
            return Ok(base);
        }
    }
    anyhow::bail!("no {count} consecutive free ports")
}

/// Choices of `cluster init` beyond the ports.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Generate a CA and per-node certificates and turn TLS on in every config.
    pub tls: bool,
    /// One host name per node for the URLs peers and clients use (containers, pods). The nodes
    /// then listen on all interfaces. Absent: loopback, 127.0.0.1.
    pub hosts: Option<Vec<String>>,
    /// Write each node's passphrase to `node-<i>/passphrase` (0600) and name it in the config.
    /// Off by default: a passphrase beside the store it unseals protects nothing from whoever
    /// copies the directory (DESIGN.md §8).
    pub passphrase_files: bool,
    /// Seal every node by a PKCS#11 token instead of a passphrase (`[seal] kind = "pkcs11"`).
    pub hsm: Option<HsmOptions>,
}

/// `cluster init --hsm-module … --hsm-token …`: each node's data key is wrapped by its own key
/// on the token, labelled `node-<i>-seal`.
#[derive(Debug, Clone)]
pub struct HsmOptions {
    pub module: PathBuf,
    pub token_label: String,
    /// Written into each config as `[seal] pin_file`; absent: the nodes read
    /// `KEYQUORUM_SEAL_PIN`.
    pub pin_file: Option<PathBuf>,
    /// Generate each node's Ed25519 peer-signing key on the token too (`identity_on_token`);
    /// needs the PIN now, from `pin_file` or `KEYQUORUM_SEAL_PIN`.
    pub identity: bool,
    /// Keys are labelled `<prefix>-<i>-seal` and `<prefix>-<i>-identity`.
    pub key_prefix: String,
}

/// Writes the configuration of an `n`-node loopback cluster into `dir`, which must be empty or
/// absent. `ports[i]` is node i+1's (client, peer) port pair.
pub fn init(dir: &Path, ports: &[(u16, u16)]) -> anyhow::Result<ClusterFiles> {
    init_with(dir, ports, &InitOptions::default())
}

/// [`init`] with TLS and/or host names.
pub fn init_with(
    dir: &Path,
    ports: &[(u16, u16)],
    options: &InitOptions,
) -> anyhow::Result<ClusterFiles> {
    let n = ports.len();
    let hosts: Vec<String> = match &options.hosts {
        Some(h) if h.len() != n => bail!("{} host names for {n} nodes", h.len()),
        Some(h) => h.clone(),
        None => vec!["127.0.0.1".to_string(); n],
    };
    let listen_ip = if options.hosts.is_some() {
        "0.0.0.0"
    } else {
        "127.0.0.1"
    };
    let scheme = if options.tls { "https" } else { "http" };
    if !(2..=64).contains(&n) {
        bail!("a cluster has 2 to 64 nodes, not {n}");
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty; refusing to overwrite an existing cluster",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let token = random_hex(32);
    crate::fsutil::write_private(&dir.join("admin.token"), format!("{token}\n").as_bytes())?;
    let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
    // The first admin client: its key signs key creation, client and policy changes.
    let admin = api::ClientKey::generate("admin");
    crate::fsutil::write_private(&dir.join("admin.key"), admin.to_file_text().as_bytes())?;
    let bootstrap = api::ClientInfo {
        name: admin.name.clone(),
        public_key: admin.public_hex(),
        roles: vec![api::Role::Admin, api::Role::KeyCreator, api::Role::Auditor],
    };

    let identities: Vec<Identity> = match &options.hsm {
        Some(hsm) if hsm.identity => {
            let pin = match std::env::var("KEYQUORUM_SEAL_PIN") {
                Ok(p) if !p.is_empty() => zeroize::Zeroizing::new(p),
                _ => {
                    let path = hsm.pin_file.as_ref().context(
                        "identities on the token need its PIN: --hsm-pin-file or KEYQUORUM_SEAL_PIN",
                    )?;
                    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
                    zeroize::Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
                }
            };
            (1..=n as u16)
                .map(|i| {
                    let token = crate::pkcs11::TokenSeal {
                        module: hsm.module.clone(),
                        token_label: hsm.token_label.clone(),
                        key_label: format!("{}-{i}-identity", hsm.key_prefix),
                        pin: pin.clone(),
                    };
                    Identity::generate_on_token(i, token)
                })
                .collect::<anyhow::Result<_>>()?
        }
        _ => (1..=n as u16).map(Identity::generate).collect(),
    };
    let members: Vec<Member> = identities
        .iter()
        .zip(ports)
        .zip(&hosts)
        .map(|((id, (client, peer)), host)| Member {
            id: id.id,
            name: format!("node-{}", id.id),
            peer_url: format!("{scheme}://{host}:{peer}"),
            client_url: format!("{scheme}://{host}:{client}"),
            sign_public_key: id.sign_public_hex(),
            seal_public_key: id.seal_public_hex(),
        })
        .collect();
    let pki = if options.tls {
        let names: Vec<(String, String)> = members
            .iter()
            .zip(&hosts)
            .map(|(m, h)| (m.name.clone(), h.clone()))
            .collect();
        let pki = crate::tls::generate(&names)?;
        let tls_dir = dir.join("tls");
        std::fs::create_dir_all(&tls_dir)?;
        std::fs::write(tls_dir.join("ca.crt"), &pki.ca_cert)?;
        // Needed only to issue more certificates; keep it offline once the cluster runs.
        crate::fsutil::write_private(&tls_dir.join("ca.key"), pki.ca_key.as_bytes())?;
        Some(pki)
    } else {
        None
    };
    let mut configs = BTreeMap::new();
    let mut passphrases = BTreeMap::new();
    for (identity, (client, peer)) in identities.iter().zip(ports) {
        let i = identity.id;
        let node_dir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node_dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&node_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        identity.save(&node_dir.join("identity.json"))?;
        let passphrase = zeroize::Zeroizing::new(random_hex(32));
        let passphrase_file = if options.passphrase_files {
            crate::fsutil::write_private(
                &node_dir.join("passphrase"),
                format!("{}\n", passphrase.as_str()).as_bytes(),
            )?;
            Some(format!("node-{i}/passphrase").into())
        } else {
            None
        };
        passphrases.insert(i, passphrase);
        let tls = match &pki {
            Some(pki) => {
                let (cert, key) = &pki.nodes[usize::from(i) - 1];
                std::fs::write(node_dir.join("tls.crt"), cert)?;
                crate::fsutil::write_private(&node_dir.join("tls.key"), key.as_bytes())?;
                Some(TlsConfig {
                    cert: format!("node-{i}/tls.crt").into(),
                    key: format!("node-{i}/tls.key").into(),
                    ca: "tls/ca.crt".into(),
                })
            }
            None => None,
        };
        let config = NodeConfig {
            id: i,
            name: format!("node-{i}"),
            client_listen: format!("{listen_ip}:{client}").parse()?,
            peer_listen: format!("{listen_ip}:{peer}").parse()?,
            data_dir: format!("node-{i}/data").into(),
            identity_file: format!("node-{i}/identity.json").into(),
            passphrase_file,
            client_token_sha256: vec![token_hash.clone()],
            workers: 2,
            timeouts: Timeouts::default(),
            auth: Default::default(),
            admin: Default::default(),
            signing: Default::default(),
            decryption: Default::default(),
            audit: Default::default(),
            limits: Default::default(),
            bootstrap_clients: vec![bootstrap.clone()],
            tls,
            seal: match &options.hsm {
                Some(hsm) => crate::config::SealSettings {
                    kind: crate::config::SealKind::Pkcs11,
                    module: Some(hsm.module.clone()),
                    token_label: Some(hsm.token_label.clone()),
                    key_label: Some(format!("{}-{i}-seal", hsm.key_prefix)),
                    pin_file: hsm.pin_file.clone(),
                    identity_on_token: hsm.identity,
                },
                None => Default::default(),
            },
            members: members.clone(),
        };
        let path = dir.join(format!("node-{i}.toml"));
        let text = format!(
            "# keyquorum node {i} of {n}: written by `keyquorum cluster init`.\n\
             # Paths are relative to this file. Start with: keyquorum serve --config {}\n\n{}",
            path.display(),
            toml::to_string_pretty(&config)?
        );
        std::fs::write(&path, text)?;
        configs.insert(i, path);
    }
    Ok(ClusterFiles {
        dir: dir.to_path_buf(),
        configs,
        token,
        admin,
        passphrases,
    })
}

/// Port pairs base, base+1 for node 1; base+2, base+3 for node 2; and so on.
pub fn ports_from_base(n: usize, base: u16) -> anyhow::Result<Vec<(u16, u16)>> {
    (0..n)
        .map(|i| {
            let client = base
                .checked_add((2 * i) as u16)
                .context("port out of range")?;
            Ok((client, client.checked_add(1).context("port out of range")?))
        })
        .collect()
}

struct RunningNode {
    node: Arc<Node>,
    client: actix_web::dev::ServerHandle,
    peer: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<()>,
}

/// A change to a node's configuration made before it starts.
pub type ConfigAdjust = Box<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// A cluster whose nodes run in this process, for the demo and the integration tests.
pub struct LocalCluster {
    pub files: ClusterFiles,
    running: BTreeMap<u16, RunningNode>,
    /// Applied to every node's config when it starts (tests shorten timeouts).
    pub adjust: Option<ConfigAdjust>,
}

impl LocalCluster {
    /// Writes a fresh `n`-node cluster into `dir` on free loopback ports.
    pub fn create(dir: &Path, n: usize) -> anyhow::Result<LocalCluster> {
        Self::create_with(dir, n, &InitOptions::default())
    }

    /// [`LocalCluster::create`] with `cluster init`'s options (e.g. TLS). The in-process
    /// cluster restarts its nodes from their configs, so it always asks for passphrase files.
    pub fn create_with(
        dir: &Path,
        n: usize,
        options: &InitOptions,
    ) -> anyhow::Result<LocalCluster> {
        let ports = free_ports(2 * n)?;
        let pairs: Vec<(u16, u16)> = ports.chunks(2).map(|c| (c[0], c[1])).collect();
        let options = InitOptions {
            passphrase_files: true,
            ..options.clone()
        };
        Ok(LocalCluster {
            files: init_with(dir, &pairs, &options)?,
            running: BTreeMap::new(),
            adjust: None,
        })
    }

    pub fn ids(&self) -> Vec<u16> {
        self.files.configs.keys().copied().collect()
    }

    pub fn config(&self, id: u16) -> anyhow::Result<NodeConfig> {
        let path = self
            .files
            .configs
            .get(&id)
            .with_context(|| format!("no node {id}"))?;
        let mut config = NodeConfig::load(path)?;
        if let Some(adjust) = &self.adjust {
            adjust(&mut config);
        }
        Ok(config)
    }

    /// How long [`LocalCluster::start`] and [`LocalCluster::start_all`] wait for nodes to
    /// catch up on the admin log.
    pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

    /// Starts node `id` and waits until it has caught up on the admin log from its peers, so
    /// that it serves key operations (DESIGN.md §11); fails if it does not within
    /// [`LocalCluster::READY_TIMEOUT`] (too few peers running).
    pub fn start(&mut self, id: u16) -> anyhow::Result<()> {
        self.start_unready(id)?;
        self.wait_ready(Self::READY_TIMEOUT)
    }

    /// Waits until every running node has caught up on the admin log since it started.
    pub fn wait_ready(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let waiting: Vec<u16> = self
                .running
                .iter()
                .filter(|(_, r)| !r.node.admin.caught_up())
                .map(|(id, _)| *id)
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                bail!("nodes {waiting:?} did not catch up on the admin log within {timeout:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts node `id`; returns once it listens (or failed to open its store), possibly
    /// before it has caught up on the admin log.
    pub fn start_unready(&mut self, id: u16) -> anyhow::Result<()> {
        if self.running.contains_key(&id) {
            return Ok(());
        }
        let config = self.config(id)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("node-{id}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let node = match Node::open(config) {
                        Ok(n) => Arc::new(n),
                        Err(e) => {
                            let _ = tx.send(Err(anyhow::anyhow!(e)));
                            return;
                        }
                    };
                    let servers = match crate::http::bind(node.clone()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(anyhow::anyhow!(e)));
                            return;
                        }
                    };
                    let _ = tx.send(Ok((
                        node.clone(),
                        servers.client.handle(),
                        servers.peer.handle(),
                    )));
                    if let Err(e) = crate::http::serve_bound(node, servers).await {
                        tracing::error!(error = %e, "node stopped with an error");
                    }
                });
            })?;
        let (node, client, peer) = rx.recv().context("node thread died")??;
        self.running.insert(
            id,
            RunningNode {
                node,
                client,
                peer,
                thread,
            },
        );
        Ok(())
    }

    /// Starts every node, then waits until all have caught up on the admin log.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for id in self.ids() {
            self.start_unready(id)?;
        }
        self.wait_ready(Self::READY_TIMEOUT)
    }

    /// Stops node `id` gracefully and waits until its store is closed.
    pub fn stop(&mut self, id: u16) {
        if let Some(r) = self.running.remove(&id) {
            futures::executor::block_on(async {
                futures::join!(r.client.stop(true), r.peer.stop(true));
            });
            let weak = Arc::downgrade(&r.node);
            drop(r.node);
            let _ = r.thread.join();
            // The servers' worker threads drop their handle on the node a moment after the
            // stop completes; the store (and its file lock) closes with the last one. On a
            // loaded machine (a whole test suite on two cores) that moment can be seconds.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while weak.strong_count() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    pub fn stop_all(&mut self) {
        for id in self.ids() {
            self.stop(id);
        }
    }

    pub fn is_running(&self, id: u16) -> bool {
        self.running.contains_key(&id)
    }

    /// The in-memory node, for tests that switch on fault hooks.
    pub fn node(&self, id: u16) -> Option<Arc<Node>> {
        self.running.get(&id).map(|r| r.node.clone())
    }

    pub fn client_url(&self, id: u16) -> String {
        self.config(id)
            .map(|c| {
                let scheme = if c.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", c.client_listen)
            })
            .unwrap_or_default()
    }

    /// The cluster CA's certificate, when `cluster init` made one.
    pub fn ca_file(&self) -> Option<PathBuf> {
        let path = self.files.dir.join("tls").join("ca.crt");
        path.exists().then_some(path)
    }

    /// A client of node `id` that signs as the cluster's first admin.
    pub fn client(&self, id: u16) -> api::Client {
        let token = Some(self.files.token.clone());
        let client = match self.ca_file().and_then(|p| std::fs::read(p).ok()) {
            Some(ca) => api::Client::with_ca(self.client_url(id), token.clone(), &ca)
                .unwrap_or_else(|_| api::Client::new(self.client_url(id), token)),
            None => api::Client::new(self.client_url(id), token),
        };
        client.with_signer(self.files.admin.clone())
    }

    pub fn admin_key(&self) -> &api::ClientKey {
        &self.files.admin
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
