//! Node configuration: a TOML file per node, written by `keyquorum cluster init`.
//!
//! Paths in the file are relative to the file's own directory, so a cluster directory can be
//! moved or mounted elsewhere as a whole. Environment variables override a few settings
//! (`KEYQUORUM_PASSPHRASE` for the passphrase, `KEYQUORUM_CLIENT_LISTEN`, `KEYQUORUM_PEER_LISTEN`,
//! `KEYQUORUM_DATA_DIR`), for containers that inject them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

/// One cluster member as every node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// 1..=n; also the member's frost identifier.
    pub id: u16,
    pub name: String,
    /// Where the member's peer API listens, e.g. `http://127.0.0.1:7101`.
    pub peer_url: String,
    /// Where the member's client API listens.
    pub client_url: String,
    /// Hex, Ed25519: verifies the member's signed peer messages.
    pub sign_public_key: String,
    /// Hex, X25519: secrets sent to the member are sealed to it.
    pub seal_public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// One peer request, milliseconds.
    pub peer_ms: u64,
    /// A whole key ceremony, milliseconds.
    pub ceremony_ms: u64,
    /// A whole signing or decryption request, all retries included, milliseconds.
    pub operation_ms: u64,
    /// Accepted difference between a peer message's timestamp and this node's clock.
    pub max_clock_skew_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            peer_ms: 5_000,
            ceremony_ms: 60_000,
            operation_ms: 15_000,
            max_clock_skew_ms: 30_000,
        }
    }
}

impl Timeouts {
    pub fn peer(&self) -> Duration {
        Duration::from_millis(self.peer_ms)
    }
    pub fn ceremony(&self) -> Duration {
        Duration::from_millis(self.ceremony_ms)
    }
    pub fn operation(&self) -> Duration {
        Duration::from_millis(self.operation_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: u16,
    pub name: String,
    pub client_listen: SocketAddr,
    pub peer_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub identity_file: PathBuf,
    /// File holding the sealing passphrase; `KEYQUORUM_PASSPHRASE` takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// SHA-256 (hex) of each accepted client bearer token: tokens are high-entropy, so a plain
    /// hash is enough and keeps checks cheap (DESIGN.md §8).
    pub client_token_sha256: Vec<String>,
    /// HTTP worker threads per listener.
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub auth: AuthSettings,
    /// Clients registered on this node's first start (`cluster init` puts the first admin
    /// here); afterwards the registry changes only through admin-signed requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_clients: Vec<api::ClientInfo>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// How long an approval signature stays usable, milliseconds.
    pub approval_ttl_ms: u64,
    /// Requests per second each client may make to this node (0: unlimited).
    pub client_requests_per_second: u32,
    /// Requests a client may make at once before the rate applies.
    pub client_burst: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            approval_ttl_ms: 15 * 60 * 1000,
            client_requests_per_second: 500,
            client_burst: 1000,
        }
    }
}

fn default_workers() -> usize {
    2
}

impl NodeConfig {
    /// Reads a config file, resolves its relative paths and applies environment overrides.
    pub fn load(path: &Path) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut config: NodeConfig =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.data_dir);
        abs(&mut self.identity_file);
        if let Some(p) = self.passphrase_file.as_mut() {
            abs(p);
        }
    }

    fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Ok(v) = std::env::var("KEYQUORUM_CLIENT_LISTEN") {
            self.client_listen = v.parse().context("KEYQUORUM_CLIENT_LISTEN")?;
        }
        if let Ok(v) = std::env::var("KEYQUORUM_PEER_LISTEN") {
            self.peer_listen = v.parse().context("KEYQUORUM_PEER_LISTEN")?;
        }
        if let Ok(v) = std::env::var("KEYQUORUM_DATA_DIR") {
            self.data_dir = v.into();
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let mut ids: Vec<u16> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        let expected: Vec<u16> = (1..=ids.len() as u16).collect();
        if ids != expected {
            bail!("member ids must be 1..=n without gaps or duplicates, got {ids:?}");
        }
        if !ids.contains(&self.id) {
            bail!("node id {} is not among the members", self.id);
        }
        for m in &self.members {
            let sign = hex::decode(&m.sign_public_key)
                .map_err(|e| anyhow!("member {}: sign_public_key: {e}", m.id))?;
            let seal = hex::decode(&m.seal_public_key)
                .map_err(|e| anyhow!("member {}: seal_public_key: {e}", m.id))?;
            if sign.len() != 32 || seal.len() != 32 {
                bail!("member {}: public keys must be 32 bytes of hex", m.id);
            }
        }
        if self.client_token_sha256.is_empty() {
            bail!("client_token_sha256 is empty: no client could ever authenticate");
        }
        Ok(())
    }

    pub fn members_by_id(&self) -> BTreeMap<u16, Member> {
        self.members.iter().map(|m| (m.id, m.clone())).collect()
    }

    /// The passphrase: `KEYQUORUM_PASSPHRASE` if set, else the passphrase file.
    pub fn passphrase(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        if let Ok(p) = std::env::var("KEYQUORUM_PASSPHRASE") {
            return Ok(zeroize::Zeroizing::new(p));
        }
        let path = self.passphrase_file.as_ref().ok_or_else(|| {
            anyhow!("no passphrase: set KEYQUORUM_PASSPHRASE or passphrase_file in the config")
        })?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
        Ok(zeroize::Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_string(),
        ))
    }
}
