//! Node configuration: a TOML file per node, written by `keyquorum cluster init`.
//!
//! Paths in the file are relative to the file's own directory, so a cluster directory can be
//! moved or mounted elsewhere as a whole. Every scalar setting can be overridden by an
//! environment variable named `KEYQUORUM_` + its TOML path in upper case with `_` for `.`
//! (`timeouts.peer_ms` → `KEYQUORUM_TIMEOUTS_PEER_MS`); [`ENV_OVERRIDES`] is the list. Paths
//! from the environment are taken as they are (relative to the working directory).
//! `deploy/keyquorum.example.toml` explains every field.

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
    /// How often a node settles unfinished key generations with its peers (DESIGN.md §11).
    pub reconcile_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            peer_ms: 5_000,
            ceremony_ms: 60_000,
            operation_ms: 15_000,
            max_clock_skew_ms: 30_000,
            reconcile_ms: 5_000,
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
    pub fn reconcile(&self) -> Duration {
        Duration::from_millis(self.reconcile_ms.max(100))
    }
}

/// TLS for both listeners and for calls to peers (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This node's certificate (chain), served on both listeners and presented to peers.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA that issued every member's certificate: peers are verified against it only.
    pub ca: PathBuf,
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
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub signing: SigningSettings,
    #[serde(default)]
    pub decryption: DecryptionSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub limits: Limits,
    /// Clients registered on this node's first start (`cluster init` puts the first admin
    /// here); afterwards the registry changes only through admin-signed requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_clients: Vec<api::ClientInfo>,
    /// Absent: plain HTTP (loopback or behind a TLS-terminating proxy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// What wraps the store's data key: the passphrase (the default) or a PKCS#11 token.
    #[serde(default, skip_serializing_if = "SealSettings::is_default")]
    pub seal: SealSettings,
    pub members: Vec<Member>,
}

/// What wraps the store's data key at rest (DESIGN.md §8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealKind {
    /// A key derived from the passphrase (`passphrase_file`, `KEYQUORUM_PASSPHRASE`).
    #[default]
    Passphrase,
    /// A non-extractable AES-256 key on a PKCS#11 token; no passphrase.
    Pkcs11,
}

impl SealKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SealKind::Passphrase => "passphrase",
            SealKind::Pkcs11 => "pkcs11",
        }
    }
}

impl std::str::FromStr for SealKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "passphrase" => Ok(SealKind::Passphrase),
            "pkcs11" => Ok(SealKind::Pkcs11),
            other => Err(format!(
                "{other:?} is not a seal kind: passphrase or pkcs11"
            )),
        }
    }
}

/// `[seal]`: the PKCS#11 settings are read whatever the kind, so `store rewrap` can move a
/// store to the token before the kind says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealSettings {
    pub kind: SealKind,
    /// The PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// The token's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_label: Option<String>,
    /// The label of the AES key that wraps the data key; created on first use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// File holding the token's user PIN; `KEYQUORUM_SEAL_PIN` takes precedence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// The node's Ed25519 peer-signing key is on the same token (the identity file names it),
    /// whatever the kind: a copied volume cannot speak for the node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub identity_on_token: bool,
}

impl SealSettings {
    fn is_default(&self) -> bool {
        *self == SealSettings::default()
    }
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
    /// Unauthenticated or badly signed requests per second tolerated from one source address
    /// before it gets 429 ahead of any check (0: unlimited).
    pub rejected_per_second: u32,
    /// Such requests one source may send at once before the rate applies.
    pub rejected_burst: u32,
    /// At most one audit entry per source summarises its rejected requests in this many
    /// seconds; metrics count each one.
    pub rejected_summary_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            approval_ttl_ms: 15 * 60 * 1000,
            client_requests_per_second: 500,
            client_burst: 1000,
            rejected_per_second: 2,
            rejected_burst: 50,
            rejected_summary_secs: 60,
        }
    }
}

/// The replicated admin log (DESIGN.md §11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Votes a client or policy change needs (q); absent: every member (n). Two conflicting
    /// entries at one seq would need 2q − n members voting for both, so q must exceed n/2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u16>,
}

/// Preprocessed signing (RFC 9591 §5.1: the commit round may run before the message is
/// known): a coordinator keeps a pool of each signer's nonce commitments and signs in one
/// round trip while the pool lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSettings {
    /// Commitments kept per signer and key, as a coordinator; 0 turns preprocessing off.
    pub presign_pool: u32,
    /// Commitments asked of a signer at once when its pool runs low.
    pub presign_batch: u32,
}

impl Default for SigningSettings {
    fn default() -> Self {
        SigningSettings {
            presign_pool: 64,
            presign_batch: 32,
        }
    }
}

/// Threshold decryption (DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecryptionSettings {
    /// End-to-end mode: holders asked beyond the t a decryption needs, when the key has them.
    /// The coordinator cannot check sealed proofs, so spares save the requester a second round
    /// when a holder sends a bad partial. Default 1; a large value asks every holder.
    pub extra_partials: u16,
}

impl Default for DecryptionSettings {
    fn default() -> Self {
        DecryptionSettings { extra_partials: 1 }
    }
}

/// Audit export and retention (README "Running for months").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// JSON lines of every entry, written as it is appended; rotated by size to FILE.1, FILE.2…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_file: Option<PathBuf>,
    /// JSON lines of every entry on standard output (logs go to standard error).
    pub export_stdout: bool,
    /// Size at which the export file is rotated, bytes.
    pub export_rotate_bytes: u64,
    /// Entries kept in the store, the newest; older ones are compacted once exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_entries: Option<u64>,
    /// Age in seconds past which entries are compacted once exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_secs: Option<u64>,
    /// How often retention runs, seconds.
    pub compact_every_secs: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            export_file: None,
            export_stdout: false,
            export_rotate_bytes: 64 * 1024 * 1024,
            retain_entries: None,
            retain_secs: None,
            compact_every_secs: 60,
        }
    }
}

impl AuditSettings {
    pub fn exports(&self) -> bool {
        self.export_file.is_some() || self.export_stdout
    }
}

/// Bounds on what a long-running node holds in memory (README "Running for months").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The store's page cache, bytes (sled's own default is 1 GiB).
    pub store_cache_bytes: u64,
    /// (client, nonce) claims kept for replay protection; past it the oldest are dropped and
    /// requests as old as them are refused as stale.
    pub replay_cache_entries: usize,
    /// Live ceremony refusals one peer may hold this node to (DESIGN.md §11): a refusal is
    /// kept while its ceremony could still be confirmed here, and past this many a peer's
    /// further requests for one go unanswered until some expire.
    pub refusals_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            store_cache_bytes: 16 * 1024 * 1024,
            replay_cache_entries: 65_536,
            refusals_per_peer: 256,
        }
    }
}

/// Every environment override: variable, and what it sets. Applied after the file is read,
/// before validation. `KEYQUORUM_PASSPHRASE` is read when the store is opened instead, so the
/// passphrase never sits in the config struct.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("KEYQUORUM_NAME", "name"),
    ("KEYQUORUM_CLIENT_LISTEN", "client_listen (address:port)"),
    ("KEYQUORUM_PEER_LISTEN", "peer_listen (address:port)"),
    ("KEYQUORUM_DATA_DIR", "data_dir"),
    ("KEYQUORUM_IDENTITY_FILE", "identity_file"),
    ("KEYQUORUM_PASSPHRASE_FILE", "passphrase_file"),
    (
        "KEYQUORUM_PASSPHRASE",
        "the passphrase itself (takes precedence over passphrase_file)",
    ),
    (
        "KEYQUORUM_CLIENT_TOKEN_SHA256",
        "client_token_sha256 (comma-separated hex hashes)",
    ),
    ("KEYQUORUM_WORKERS", "workers"),
    ("KEYQUORUM_TIMEOUTS_PEER_MS", "timeouts.peer_ms"),
    ("KEYQUORUM_TIMEOUTS_CEREMONY_MS", "timeouts.ceremony_ms"),
    ("KEYQUORUM_TIMEOUTS_OPERATION_MS", "timeouts.operation_ms"),
    (
        "KEYQUORUM_TIMEOUTS_MAX_CLOCK_SKEW_MS",
        "timeouts.max_clock_skew_ms",
    ),
    ("KEYQUORUM_TIMEOUTS_RECONCILE_MS", "timeouts.reconcile_ms"),
    (
        "KEYQUORUM_TLS_CERT",
        "tls.cert (with _KEY and _CA, enables TLS when the file has no [tls])",
    ),
    ("KEYQUORUM_TLS_KEY", "tls.key"),
    ("KEYQUORUM_TLS_CA", "tls.ca"),
    ("KEYQUORUM_AUTH_APPROVAL_TTL_MS", "auth.approval_ttl_ms"),
    (
        "KEYQUORUM_AUTH_CLIENT_REQUESTS_PER_SECOND",
        "auth.client_requests_per_second",
    ),
    ("KEYQUORUM_AUTH_CLIENT_BURST", "auth.client_burst"),
    (
        "KEYQUORUM_AUTH_REJECTED_PER_SECOND",
        "auth.rejected_per_second",
    ),
    ("KEYQUORUM_AUTH_REJECTED_BURST", "auth.rejected_burst"),
    (
        "KEYQUORUM_AUTH_REJECTED_SUMMARY_SECS",
        "auth.rejected_summary_secs",
    ),
    ("KEYQUORUM_ADMIN_QUORUM", "admin.quorum"),
    ("KEYQUORUM_SIGNING_PRESIGN_POOL", "signing.presign_pool"),
    ("KEYQUORUM_SIGNING_PRESIGN_BATCH", "signing.presign_batch"),
    ("KEYQUORUM_SEAL_KIND", "seal.kind (passphrase or pkcs11)"),
    ("KEYQUORUM_SEAL_MODULE", "seal.module"),
    ("KEYQUORUM_SEAL_TOKEN_LABEL", "seal.token_label"),
    ("KEYQUORUM_SEAL_KEY_LABEL", "seal.key_label"),
    ("KEYQUORUM_SEAL_PIN_FILE", "seal.pin_file"),
    (
        "KEYQUORUM_SEAL_IDENTITY_ON_TOKEN",
        "seal.identity_on_token (true or false)",
    ),
    (
        "KEYQUORUM_SEAL_PIN",
        "the token PIN itself (takes precedence over seal.pin_file)",
    ),
    ("KEYQUORUM_AUDIT_EXPORT_FILE", "audit.export_file"),
    (
        "KEYQUORUM_AUDIT_EXPORT_STDOUT",
        "audit.export_stdout (true/false)",
    ),
    (
        "KEYQUORUM_AUDIT_EXPORT_ROTATE_BYTES",
        "audit.export_rotate_bytes",
    ),
    ("KEYQUORUM_AUDIT_RETAIN_ENTRIES", "audit.retain_entries"),
    ("KEYQUORUM_AUDIT_RETAIN_SECS", "audit.retain_secs"),
    (
        "KEYQUORUM_AUDIT_COMPACT_EVERY_SECS",
        "audit.compact_every_secs",
    ),
    (
        "KEYQUORUM_LIMITS_STORE_CACHE_BYTES",
        "limits.store_cache_bytes",
    ),
    (
        "KEYQUORUM_LIMITS_REPLAY_CACHE_ENTRIES",
        "limits.replay_cache_entries",
    ),
    (
        "KEYQUORUM_LIMITS_REFUSALS_PER_PEER",
        "limits.refusals_per_peer",
    ),
];

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
        if let Some(p) = self.seal.pin_file.as_mut() {
            abs(p);
        }
        // A bare library name is left to the dynamic loader's search path.
        if let Some(p) = self.seal.module.as_mut() {
            if p.components().count() > 1 {
                abs(p);
            }
        }
        if let Some(p) = self.audit.export_file.as_mut() {
            abs(p);
        }
        if let Some(tls) = self.tls.as_mut() {
            abs(&mut tls.cert);
            abs(&mut tls.key);
            abs(&mut tls.ca);
        }
    }

    fn apply_env(&mut self) -> anyhow::Result<()> {
        self.apply_overrides(|name| std::env::var(name).ok())
    }

    /// Applies the [`ENV_OVERRIDES`] that `lookup` knows (tests pass a map, not the process
    /// environment, which parallel tests share).
    pub fn apply_overrides(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.trim()
                .parse()
                .map_err(|e| anyhow!("{name}={v:?} is invalid: {e}"))
        }
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if let Some(v) = get("KEYQUORUM_NAME") {
            self.name = v;
        }
        if let Some(v) = get("KEYQUORUM_CLIENT_LISTEN") {
            self.client_listen = parse("KEYQUORUM_CLIENT_LISTEN", &v)?;
        }
        if let Some(v) = get("KEYQUORUM_PEER_LISTEN") {
            self.peer_listen = parse("KEYQUORUM_PEER_LISTEN", &v)?;
        }
        if let Some(v) = get("KEYQUORUM_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("KEYQUORUM_IDENTITY_FILE") {
            self.identity_file = v.into();
        }
        if let Some(v) = get("KEYQUORUM_PASSPHRASE_FILE") {
            self.passphrase_file = Some(v.into());
        }
        if let Some(v) = get("KEYQUORUM_CLIENT_TOKEN_SHA256") {
            self.client_token_sha256 = v
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = get("KEYQUORUM_WORKERS") {
            self.workers = parse("KEYQUORUM_WORKERS", &v)?;
        }
        let t = &mut self.timeouts;
        for (name, field) in [
            ("KEYQUORUM_TIMEOUTS_PEER_MS", &mut t.peer_ms),
            ("KEYQUORUM_TIMEOUTS_CEREMONY_MS", &mut t.ceremony_ms),
            ("KEYQUORUM_TIMEOUTS_OPERATION_MS", &mut t.operation_ms),
            (
                "KEYQUORUM_TIMEOUTS_MAX_CLOCK_SKEW_MS",
                &mut t.max_clock_skew_ms,
            ),
            ("KEYQUORUM_TIMEOUTS_RECONCILE_MS", &mut t.reconcile_ms),
        ] {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        if let Some(v) = get("KEYQUORUM_AUTH_APPROVAL_TTL_MS") {
            self.auth.approval_ttl_ms = parse("KEYQUORUM_AUTH_APPROVAL_TTL_MS", &v)?;
        }
        let a = &mut self.auth;
        for (name, field) in [
            (
                "KEYQUORUM_AUTH_CLIENT_REQUESTS_PER_SECOND",
                &mut a.client_requests_per_second,
            ),
            ("KEYQUORUM_AUTH_CLIENT_BURST", &mut a.client_burst),
            (
                "KEYQUORUM_AUTH_REJECTED_PER_SECOND",
                &mut a.rejected_per_second,
            ),
            ("KEYQUORUM_AUTH_REJECTED_BURST", &mut a.rejected_burst),
        ] {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        if let Some(v) = get("KEYQUORUM_AUTH_REJECTED_SUMMARY_SECS") {
            a.rejected_summary_secs = parse("KEYQUORUM_AUTH_REJECTED_SUMMARY_SECS", &v)?;
        }
        if let Some(v) = get("KEYQUORUM_ADMIN_QUORUM") {
            self.admin.quorum = Some(parse("KEYQUORUM_ADMIN_QUORUM", &v)?);
        }
        let g = &mut self.signing;
        for (name, field) in [
            ("KEYQUORUM_SIGNING_PRESIGN_POOL", &mut g.presign_pool),
            ("KEYQUORUM_SIGNING_PRESIGN_BATCH", &mut g.presign_batch),
        ] {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        if let Some(v) = get("KEYQUORUM_SEAL_KIND") {
            self.seal.kind = v.parse().map_err(|e| anyhow!("KEYQUORUM_SEAL_KIND: {e}"))?;
        }
        if let Some(v) = get("KEYQUORUM_SEAL_MODULE") {
            self.seal.module = Some(v.into());
        }
        if let Some(v) = get("KEYQUORUM_SEAL_TOKEN_LABEL") {
            self.seal.token_label = Some(v);
        }
        if let Some(v) = get("KEYQUORUM_SEAL_KEY_LABEL") {
            self.seal.key_label = Some(v);
        }
        if let Some(v) = get("KEYQUORUM_SEAL_PIN_FILE") {
            self.seal.pin_file = Some(v.into());
        }
        if let Some(v) = get("KEYQUORUM_SEAL_IDENTITY_ON_TOKEN") {
            self.seal.identity_on_token = parse("KEYQUORUM_SEAL_IDENTITY_ON_TOKEN", &v)?;
        }
        if let Some(v) = get("KEYQUORUM_AUDIT_EXPORT_FILE") {
            self.audit.export_file = Some(v.into());
        }
        if let Some(v) = get("KEYQUORUM_AUDIT_EXPORT_STDOUT") {
            self.audit.export_stdout = parse("KEYQUORUM_AUDIT_EXPORT_STDOUT", &v)?;
        }
        let u = &mut self.audit;
        for (name, field) in [
            (
                "KEYQUORUM_AUDIT_EXPORT_ROTATE_BYTES",
                &mut u.export_rotate_bytes,
            ),
            (
                "KEYQUORUM_AUDIT_COMPACT_EVERY_SECS",
                &mut u.compact_every_secs,
            ),
        ] {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        for (name, field) in [
            ("KEYQUORUM_AUDIT_RETAIN_ENTRIES", &mut u.retain_entries),
            ("KEYQUORUM_AUDIT_RETAIN_SECS", &mut u.retain_secs),
        ] {
            if let Some(v) = get(name) {
                *field = Some(parse(name, &v)?);
            }
        }
        if let Some(v) = get("KEYQUORUM_LIMITS_STORE_CACHE_BYTES") {
            self.limits.store_cache_bytes = parse("KEYQUORUM_LIMITS_STORE_CACHE_BYTES", &v)?;
        }
        let l = &mut self.limits;
        for (name, field) in [
            (
                "KEYQUORUM_LIMITS_REPLAY_CACHE_ENTRIES",
                &mut l.replay_cache_entries,
            ),
            (
                "KEYQUORUM_LIMITS_REFUSALS_PER_PEER",
                &mut l.refusals_per_peer,
            ),
        ] {
            if let Some(v) = get(name) {
                *field = parse(name, &v)?;
            }
        }
        let (cert, key, ca) = (
            get("KEYQUORUM_TLS_CERT"),
            get("KEYQUORUM_TLS_KEY"),
            get("KEYQUORUM_TLS_CA"),
        );
        match (self.tls.as_mut(), cert, key, ca) {
            (_, None, None, None) => {}
            (Some(tls), cert, key, ca) => {
                if let Some(v) = cert {
                    tls.cert = v.into();
                }
                if let Some(v) = key {
                    tls.key = v.into();
                }
                if let Some(v) = ca {
                    tls.ca = v.into();
                }
            }
            (None, Some(cert), Some(key), Some(ca)) => {
                self.tls = Some(TlsConfig {
                    cert: cert.into(),
                    key: key.into(),
                    ca: ca.into(),
                })
            }
            (None, ..) => bail!(
                "the config has no [tls]: set all of KEYQUORUM_TLS_CERT, KEYQUORUM_TLS_KEY and \
                 KEYQUORUM_TLS_CA to enable it"
            ),
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
        if self.workers == 0 {
            bail!("workers must be at least 1");
        }
        let tls = self.tls.is_some();
        for m in &self.members {
            for url in [&m.peer_url, &m.client_url] {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    bail!("member {}: {url} is not an http:// or https:// URL", m.id);
                }
            }
            // Peers call each other with one client: all TLS or all plain.
            if m.peer_url.starts_with("https://") != tls {
                bail!(
                    "member {}: peer_url {} does not match this node's TLS setting ({})",
                    m.id,
                    m.peer_url,
                    if tls { "[tls] is set" } else { "no [tls]" }
                );
            }
        }
        if self.seal.kind == SealKind::Pkcs11 {
            self.token_settings()?;
        }
        if self.seal.identity_on_token {
            self.token_location()?;
        }
        if self.client_token_sha256.is_empty() {
            bail!("client_token_sha256 is empty: no client could ever authenticate");
        }
        if self.audit.export_rotate_bytes < 4096 {
            bail!("audit.export_rotate_bytes must be at least 4096");
        }
        if self.audit.compact_every_secs == 0 {
            bail!("audit.compact_every_secs must be at least 1");
        }
        if self.limits.replay_cache_entries < 16 {
            bail!("limits.replay_cache_entries must be at least 16");
        }
        if let Some(q) = self.admin.quorum {
            let n = self.members.len();
            let q = usize::from(q);
            if 2 * q <= n || q > n {
                bail!(
                    "admin.quorum = {q} is invalid for {n} members: it must satisfy \
                     n/2 < q <= n (2q > n, so two conflicting admin changes can never both \
                     gather q votes from honest members; q <= n, so changes can commit)"
                );
            }
        }
        Ok(())
    }

    /// Votes an admin change needs: `[admin] quorum`, or every member.
    pub fn admin_quorum(&self) -> usize {
        self.admin.quorum.map_or(self.members.len(), usize::from)
    }

    pub fn members_by_id(&self) -> BTreeMap<u16, Member> {
        self.members.iter().map(|m| (m.id, m.clone())).collect()
    }

    /// `[seal]`'s module and token label; an error names the first one missing.
    pub fn token_location(&self) -> anyhow::Result<(PathBuf, String)> {
        let missing = |field: &str| {
            anyhow!(
                "[seal] {field} is not set: a key on a PKCS#11 token needs module and token_label"
            )
        };
        let module = self.seal.module.clone().ok_or_else(|| missing("module"))?;
        let token = self.seal.token_label.clone().filter(|t| !t.is_empty());
        Ok((module, token.ok_or_else(|| missing("token_label"))?))
    }

    /// `[seal]`'s module, token and key labels; an error names the first one missing.
    pub fn token_settings(&self) -> anyhow::Result<(PathBuf, String, String)> {
        let s = &self.seal;
        let missing = |field: &str| {
            anyhow!(
                "[seal] {field} is not set: a PKCS#11 seal needs module, token_label and \
                 key_label"
            )
        };
        let module = s.module.clone().ok_or_else(|| missing("module"))?;
        let token = s.token_label.clone().filter(|t| !t.is_empty());
        let key = s.key_label.clone().filter(|k| !k.is_empty());
        Ok((
            module,
            token.ok_or_else(|| missing("token_label"))?,
            key.ok_or_else(|| missing("key_label"))?,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn config(n: u16, quorum: Option<u16>) -> NodeConfig {
        let members = (1..=n)
            .map(|i| {
                let id = Identity::generate(i);
                Member {
                    id: i,
                    name: format!("node-{i}"),
                    peer_url: format!("http://127.0.0.1:{}", 7001 + 2 * i),
                    client_url: format!("http://127.0.0.1:{}", 7000 + 2 * i),
                    sign_public_key: id.sign_public_hex(),
                    seal_public_key: id.seal_public_hex(),
                }
            })
            .collect();
        NodeConfig {
            id: 1,
            name: "node-1".into(),
            client_listen: "127.0.0.1:7002".parse().unwrap(),
            peer_listen: "127.0.0.1:7003".parse().unwrap(),
            data_dir: "data".into(),
            identity_file: "identity.json".into(),
            passphrase_file: None,
            client_token_sha256: vec!["00".repeat(32)],
            workers: 1,
            timeouts: Timeouts::default(),
            auth: AuthSettings::default(),
            admin: AdminSettings { quorum },
            signing: SigningSettings::default(),
            decryption: DecryptionSettings::default(),
            audit: AuditSettings::default(),
            limits: Limits::default(),
            bootstrap_clients: vec![],
            tls: None,
            seal: SealSettings::default(),
            members,
        }
    }

    #[test]
    fn a_token_seal_names_the_setting_it_lacks_and_the_environment_sets_it() {
        let mut c = config(3, None);
        assert_eq!(c.seal.kind, SealKind::Passphrase);
        // An identity on the token needs the token, whatever the seal kind.
        c.apply_overrides(|name| {
            (name == "KEYQUORUM_SEAL_IDENTITY_ON_TOKEN").then(|| "true".to_string())
        })
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("[seal] module is not set"), "{e}");
        c.seal.identity_on_token = false;
        // The default writes no [seal] at all, so existing configs read back unchanged.
        assert!(!toml::to_string(&c).unwrap().contains("[seal]"));
        c.seal.kind = SealKind::Pkcs11;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("[seal] module is not set"), "{e}");
        let env: BTreeMap<&str, &str> = [
            ("KEYQUORUM_SEAL_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
            ("KEYQUORUM_SEAL_TOKEN_LABEL", "keyquorum"),
        ]
        .into();
        c.apply_overrides(|name| env.get(name).map(|v| v.to_string()))
            .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("[seal] key_label is not set"), "{e}");
        c.apply_overrides(|name| {
            (name == "KEYQUORUM_SEAL_KEY_LABEL").then(|| "node-1-seal".to_string())
        })
        .unwrap();
        c.validate().unwrap();
        // Parsed back from TOML with the same settings.
        let text = toml::to_string(&c).unwrap();
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.seal, c.seal);
        assert!(text.contains("kind = \"pkcs11\""), "{text}");
        let e = c
            .apply_overrides(|name| (name == "KEYQUORUM_SEAL_KIND").then(|| "hsm".to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("passphrase or pkcs11"), "{e}");
        let e = toml::from_str::<SealSettings>("kind = \"pkcs11\"\nmodul = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("modul"), "{e}");
    }

    #[test]
    fn an_admin_quorum_must_be_a_majority_and_at_most_n() {
        // Absent: every member, today's behaviour.
        assert_eq!(config(4, None).admin_quorum(), 4);
        assert!(config(4, None).validate().is_ok());
        for (n, q) in [(3, 2), (3, 3), (4, 3), (4, 4), (5, 3), (5, 4), (5, 5)] {
            let c = config(n, Some(q));
            assert!(c.validate().is_ok(), "n={n} q={q}");
            assert_eq!(c.admin_quorum(), usize::from(q));
        }
        for (n, q) in [(4, 2), (3, 1), (2, 1), (5, 2), (3, 4), (4, 0)] {
            let err = config(n, Some(q)).validate().unwrap_err().to_string();
            assert!(err.contains("admin.quorum"), "n={n} q={q}: {err}");
            assert!(err.contains("2q > n"), "n={n} q={q}: {err}");
        }
        // The environment override is validated alike.
        let mut c = config(4, None);
        c.apply_overrides(|name| (name == "KEYQUORUM_ADMIN_QUORUM").then(|| "2".to_string()))
            .unwrap();
        assert_eq!(c.admin.quorum, Some(2));
        assert!(c.validate().is_err());
    }
}
