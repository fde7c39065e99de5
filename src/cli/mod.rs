//! The `keyquorum` command line: cluster set-up, the node itself, and a client for everything
//! the API does. Exit codes: 0 success, 1 a negative answer (e.g. an invalid signature),
//! 2 usage or input error, 3 the node refused or failed the request, 4 no node reachable.

mod access;
mod audit_peers;
mod audit_verify;
mod requests;
mod store;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use api::{Client, ClientError, CreateKeyRequest};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keyquorum",
    version,
    about = "Threshold key management: DKG, FROST signing and threshold decryption over HTTP",
    long_about = "Threshold key management: n nodes generate keys together (DKG), sign with any t \
of them (FROST, RFC 9591) and decrypt HPKE/ECIES ciphertexts by combining verified partials. \
No key is ever reconstructed.\n\nClient commands talk to one node (--url, KEYQUORUM_URL) with a \
bearer token (--token-file, KEYQUORUM_TOKEN_FILE); add --json for machine-readable output and \
--ca (KEYQUORUM_CA) for a node with TLS.\n\nExit codes: 0 success, 1 a negative answer (invalid \
signature, records that did not decrypt), 2 usage or input error, 3 the node refused or failed \
the request, 4 no node reachable.",
    after_help = "Example, a local cluster:\n  keyquorum cluster init --nodes 3 --dir ./cluster\n  \
keyquorum serve --config ./cluster/node-1.toml   (and node-2, node-3)\n  \
export KEYQUORUM_URL=http://127.0.0.1:7100 KEYQUORUM_TOKEN_FILE=./cluster/admin.token\n  \
keyquorum keys create manifests --algorithm frost-ed25519 --threshold 2\n  \
keyquorum sign --key manifests --file manifest.json"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct ClientOpts {
    /// A node's client URL.
    #[arg(
        long,
        env = "KEYQUORUM_URL",
        default_value = "http://127.0.0.1:7100",
        global = true
    )]
    url: String,
    /// File holding a client bearer token (e.g. DIR/admin.token from `cluster init`).
    #[arg(long, env = "KEYQUORUM_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    /// The bearer token itself (prefer --token-file: arguments show in `ps`).
    #[arg(long, env = "KEYQUORUM_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Client key file (e.g. DIR/admin.key from `cluster init`): signs every request. Needed
    /// to create keys, sign, decrypt and change clients or policies.
    #[arg(long, env = "KEYQUORUM_CLIENT_KEY", global = true)]
    client_key: Option<PathBuf>,
    /// CA certificate (PEM) to verify an https:// node against, e.g. DIR/tls/ca.crt.
    #[arg(long, env = "KEYQUORUM_CA", global = true)]
    ca: Option<PathBuf>,
    /// Print the API's JSON answer instead of a human summary.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a cluster: write every node's config, identity, passphrase (and TLS files).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run a node: both listeners, until SIGINT/SIGTERM.
    ///
    /// The config's paths are relative to the file; KEYQUORUM_* variables override its
    /// settings (see the README's list), KEYQUORUM_PASSPHRASE the passphrase file.
    #[command(
        after_help = "Example:\n  keyquorum serve --config cluster/node-1.toml\n  \
KEYQUORUM_DATA_DIR=/data keyquorum serve --config /etc/keyquorum/node.toml --log-format json"
    )]
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Log format: text or json.
        #[arg(long, default_value = "text")]
        log_format: String,
    },
    /// Create, list and show keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign a message with a signing key (prints the hex signature).
    ///
    /// Any t of the key's participants sign; a signer that fails is excluded, named on
    /// standard error, and replaced.
    #[command(
        after_help = "Example:\n  keyquorum sign --key manifests --file manifest.json > manifest.sig\n  \
echo -n hello | keyquorum sign --key manifests --file - --json"
    )]
    Sign {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        input: MessageInput,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Verify a signature (exit code 0 valid, 1 invalid).
    #[command(
        after_help = "Example:\n  keyquorum verify --key manifests --file manifest.json --signature \"$(cat manifest.sig)\""
    )]
    Verify {
        #[arg(long)]
        key: String,
        #[arg(long)]
        signature: String,
        #[command(flatten)]
        input: MessageInput,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Seal NDJSON metadata records (each with "video" and "frame") to a decryption key,
    /// binding every record to its video and frame. Works offline from the public key.
    ///
    /// Output is NDJSON, one sealed record per input record, ready for `keyquorum decrypt`.
    #[command(
        after_help = "Example:\n  keyquorum encrypt --public-key 3b6a...e1 < detections.ndjson > sealed.ndjson\n  \
keyquorum encrypt --key reid --in detections.ndjson --out sealed.ndjson"
    )]
    Encrypt {
        /// The key's published public key (hex): 32 bytes for hpke-x25519, 33 or 65 for
        /// ecies-secp256k1.
        #[arg(long, conflicts_with = "key")]
        public_key: Option<String>,
        /// Fetch the public key of this key from the cluster instead.
        #[arg(long)]
        key: Option<String>,
        /// HPKE AEAD: aes-128-gcm, aes-256-gcm or chacha20-poly1305.
        #[arg(long, default_value = "aes-128-gcm")]
        aead: String,
        /// NDJSON input (default standard input).
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// NDJSON output (default standard output).
        #[arg(long = "out")]
        output: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Decrypt sealed NDJSON records with a quorum of the cluster, in batches.
    ///
    /// Output is NDJSON, the original records in order; a record that does not open is
    /// reported on standard error and the exit code is 1.
    #[command(
        after_help = "Example:\n  keyquorum decrypt --key reid --in sealed.ndjson --out detections.ndjson"
    )]
    Decrypt {
        #[arg(long)]
        key: String,
        /// Records per request (one peer round trip each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// An approver's client key file; repeat for each approval the key's policy needs.
        #[arg(long = "approver-key")]
        approver_keys: Vec<PathBuf>,
        /// Let the node combine the partials and answer plaintexts (it learns them). By
        /// default this client combines: holders seal their partials to it (DESIGN.md §6).
        #[arg(long)]
        combine_on_node: bool,
        #[arg(long = "in")]
        input: Option<PathBuf>,
        #[arg(long = "out")]
        output: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// A node's status and which peers answer it.
    #[command(
        after_help = "Example:\n  keyquorum status --url https://127.0.0.1:7100 --ca cluster/tls/ca.crt --json"
    )]
    Status {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Measure the cost of DKG, signing and decryption on local clusters of each size and
    /// write DIR/report.md, DIR/report.json and charts (latency.svg, bytes.svg).
    ///
    /// Example: keyquorum bench --nodes 3,5,9,21 --ops dkg,sign,decrypt --out bench-report
    Bench(crate::bench::BenchArgs),
    /// Register, list and remove clients (admin-signed, applied on every node).
    #[command(subcommand, visible_alias = "clients")]
    Client(access::ClientCommand),
    /// Decryption requests that approvers review: create, list, show, approve, deny, execute.
    #[command(subcommand)]
    Requests(requests::RequestsCommand),
    /// Read a node's audit trail, or check a stopped node's trail for edits.
    #[command(subcommand)]
    Audit(access::AuditCommand),
    /// Drop all key material from a node's memory; it answers 503 "sealed" until unsealed.
    ///
    /// Example: keyquorum seal --url http://127.0.0.1:7102 --client-key cluster/admin.key
    Seal {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Unseal a node with its passphrase (from a file, or KEYQUORUM_PASSPHRASE). A node sealed
    /// by a PKCS#11 token unseals through its token: give no passphrase, sign with an admin's
    /// --client-key.
    ///
    /// Example: keyquorum unseal --url http://127.0.0.1:7102 --passphrase-file cluster/node-2/passphrase
    /// Example: keyquorum unseal --url http://127.0.0.1:7102 --client-key cluster/admin.key
    Unseal {
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Change a stopped node's store passphrase.
    #[command(subcommand)]
    Passphrase(access::PassphraseCommand),
    /// A stopped node's store: move its data key between a passphrase and a PKCS#11 token.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Check that a node answers `/v1/health` (no token needed): exit 0 if it does, 4 if not.
    /// The container image's HEALTHCHECK.
    #[command(after_help = "Example:\n  keyquorum health --url http://127.0.0.1:7100")]
    Health {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Run a local 3-node cluster, show a ceremony, signing and threshold decryption, and stop.
    #[command(after_help = "Example:\n  keyquorum demo            (or: keyquorum demo --keep)")]
    Demo {
        /// Leave the cluster running and print how to talk to it.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Write the configuration of an n-node cluster into an empty directory.
    ///
    /// Per node: node-<i>.toml, node-<i>/identity.json (and node-<i>/passphrase, 0600, only
    /// with --passphrase-files; otherwise each passphrase is printed once); with
    /// --tls also tls/ca.crt, tls/ca.key and node-<i>/tls.crt, tls.key; and admin.token. Without
    /// --hosts the nodes listen on 127.0.0.1, node i on base+2(i-1) (client) and base+2(i-1)+1
    /// (peer). With --hosts (one name per node, e.g. containers or pods) every node listens on
    /// 0.0.0.0 at base (client) and base+1 (peer), and peers call each other by those names.
    #[command(
        after_help = "Example:\n  keyquorum cluster init --nodes 3 --dir ./cluster --base-port 7100\n  \
keyquorum cluster init --nodes 3 --dir ./cluster --tls\n  \
keyquorum cluster init --nodes 3 --dir /cluster --tls --hosts node-1,node-2,node-3 --json"
    )]
    Init {
        /// Number of nodes, 2 to 64.
        #[arg(long)]
        nodes: usize,
        /// Directory to write into; must be empty or absent.
        #[arg(long)]
        dir: PathBuf,
        /// First port; see above for how the others follow.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Generate a cluster CA and per-node certificates; every listener serves https.
        #[arg(long)]
        tls: bool,
        /// Comma-separated host names, one per node, that peers and clients use.
        #[arg(long, value_delimiter = ',')]
        hosts: Option<Vec<String>>,
        /// Print the written files as JSON.
        #[arg(long)]
        json: bool,
        /// Also write each node's passphrase to node-<i>/passphrase (0600) and name it in the
        /// config. Without it the passphrases are printed once, never stored: give each node
        /// its own as KEYQUORUM_PASSPHRASE and keep it apart from the node's files.
        #[arg(long = "passphrase-files", alias = "passphrase-file")]
        passphrase_files: bool,
        /// Seal every node by a PKCS#11 token: this module (e.g.
        /// /usr/lib/softhsm/libsofthsm2.so) in each config's [seal], node i's key labelled
        /// node-<i>-seal. Needs --hsm-token.
        #[arg(long, requires = "hsm_token")]
        hsm_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long, requires = "hsm_module")]
        hsm_token: Option<String>,
        /// The token's PIN file, named in each config; without it the nodes read
        /// KEYQUORUM_SEAL_PIN.
        #[arg(long, requires = "hsm_module")]
        hsm_pin_file: Option<PathBuf>,
        /// Also generate each node's Ed25519 peer-signing key on the token ([seal]
        /// identity_on_token): the identity files then hold no signing secret. Needs the PIN
        /// now (--hsm-pin-file or KEYQUORUM_SEAL_PIN).
        #[arg(long, requires = "hsm_module")]
        hsm_identity: bool,
        /// Label prefix of the nodes' keys on the token: <prefix>-<i>-seal, <prefix>-<i>-identity.
        #[arg(long, default_value = "node", requires = "hsm_module")]
        hsm_key_prefix: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Run a key ceremony (DKG) among the participants; prints the new key's public data.
    #[command(
        after_help = "Example:\n  keyquorum keys create manifests --algorithm frost-ed25519 --threshold 2\n  \
keyquorum keys create reid --algorithm hpke-x25519 --threshold 2 --participants 1,2,3 --json"
    )]
    Create {
        name: String,
        /// frost-ed25519, frost-secp256k1, hpke-x25519 or ecies-secp256k1.
        #[arg(long)]
        algorithm: String,
        #[arg(long)]
        threshold: u16,
        /// Comma-separated node ids; all nodes when absent.
        #[arg(long, value_delimiter = ',')]
        participants: Option<Vec<u16>>,
        #[command(flatten)]
        policy: access::PolicyArgs,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Replace a key's policy (admin or a client the policy lets manage the key).
    ///
    /// Example: keyquorum keys policy reid --decrypt analyst,auditor --approve dpo --decrypt-approvals 1
    Policy {
        name: String,
        #[command(flatten)]
        policy: access::PolicyArgs,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List the keys this node holds a share of.
    #[command(
        after_help = "Example:\n  keyquorum keys list\n  keyquorum keys list --json | jq -r '.keys[].name'"
    )]
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Show one key's public data (always JSON).
    #[command(after_help = "Example:\n  keyquorum keys show reid | jq -r .public_key")]
    Show {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Give every participant a new share of the same key (the public key does not change).
    #[command(after_help = "Example:\n  keyquorum keys refresh manifests")]
    Refresh {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Rebuild the share of a node that lost it, with the help of other participants.
    #[command(after_help = "Example:\n  keyquorum keys repair manifests --node 2")]
    Repair {
        name: String,
        /// The node whose share is rebuilt.
        #[arg(long)]
        node: u16,
        /// Comma-separated helper ids; the first `threshold` other participants when absent.
        #[arg(long, value_delimiter = ',')]
        helpers: Option<Vec<u16>>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Share the same key to a new committee and/or threshold.
    #[command(
        after_help = "Example:\n  keyquorum keys reshare manifests --participants 1,2,3,4,5 --threshold 3"
    )]
    Reshare {
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        participants: Vec<u16>,
        #[arg(long)]
        threshold: u16,
        /// Comma-separated ids of current participants that deal; all when absent. Leave out
        /// only nodes that are gone for good.
        #[arg(long, value_delimiter = ',')]
        dealers: Option<Vec<u16>>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Retire a key: every share is erased; the public data stays, to verify old signatures.
    #[command(after_help = "Example:\n  keyquorum keys retire manifests")]
    Retire {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Args)]
struct MessageInput {
    /// Read the message from this file ("-" for standard input).
    #[arg(long, conflicts_with = "message")]
    file: Option<PathBuf>,
    /// The message as text.
    #[arg(long)]
    message: Option<String>,
}

impl MessageInput {
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.file, &self.message) {
            (Some(p), _) if p.as_os_str() == "-" => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                Ok(buf)
            }
            (Some(p), _) => {
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
            }
            (None, Some(m)) => Ok(m.as_bytes().to_vec()),
            (None, None) => anyhow::bail!("give --file or --message"),
        }
    }
}

impl ClientOpts {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read token file {}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let client = match &self.ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read CA file {}", path.display()))?;
                Client::with_ca(self.url.clone(), token, &pem).map_err(anyhow::Error::from)?
            }
            None => Client::new(self.url.clone(), token),
        };
        Ok(match &self.client_key {
            Some(path) => {
                client.with_signer(api::ClientKey::load(path).map_err(anyhow::Error::msg)?)
            }
            None => client,
        })
    }
}

/// An error with the exit code it maps to.
pub(crate) struct Failure(pub(crate) ExitCode, pub(crate) String);

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(ExitCode::from(2), format!("{e:#}"))
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match &e {
            ClientError::Api { body, .. } if !body.culprits.is_empty() => {
                let who: Vec<String> = body
                    .culprits
                    .iter()
                    .map(|c| format!("node {}: {}", c.node, c.reason))
                    .collect();
                Failure(
                    ExitCode::from(3),
                    format!("{e}\nculprits: {}", who.join("; ")),
                )
            }
            ClientError::Api { .. } => Failure(ExitCode::from(3), e.to_string()),
            ClientError::Transport(_) => Failure(ExitCode::from(4), e.to_string()),
        }
    }
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYQUORUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Cluster(ClusterCommand::Init {
            nodes,
            dir,
            base_port,
            tls,
            hosts,
            json,
            passphrase_files,
            hsm_module,
            hsm_token,
            hsm_pin_file,
            hsm_identity,
            hsm_key_prefix,
        }) => {
            // Distinct hosts can share ports; on one loopback address every node needs its own.
            let ports = match &hosts {
                Some(_) => vec![
                    (
                        base_port,
                        base_port.checked_add(1).context("port out of range")?
                    );
                    nodes
                ],
                None => crate::cluster::ports_from_base(nodes, base_port)?,
            };
            let hsm = match (hsm_module, hsm_token) {
                (Some(module), Some(token_label)) => Some(crate::cluster::HsmOptions {
                    module,
                    token_label,
                    pin_file: hsm_pin_file
                        .map(|p| std::path::absolute(&p))
                        .transpose()
                        .context("--hsm-pin-file")?,
                    identity: hsm_identity,
                    key_prefix: hsm_key_prefix,
                }),
                _ => None,
            };
            let by_token = hsm.is_some();
            let options = crate::cluster::InitOptions {
                tls,
                hosts,
                passphrase_files,
                hsm,
            };
            let files = crate::cluster::init_with(&dir, &ports, &options)?;
            let ca = tls.then(|| dir.join("tls").join("ca.crt"));
            // Printed once, never stored unless --passphrase-files asked for it; a node sealed
            // by a token has no use for one.
            let passphrases: std::collections::BTreeMap<u16, &str> = if passphrase_files || by_token
            {
                Default::default()
            } else {
                files
                    .passphrases
                    .iter()
                    .map(|(i, p)| (*i, p.as_str()))
                    .collect()
            };
            if json {
                print_json(&serde_json::json!({
                    "dir": dir,
                    "configs": files.configs,
                    "admin_token_file": dir.join("admin.token"),
                    "ca_file": ca,
                    "passphrases": passphrases,
                }));
            } else {
                println!("wrote a {nodes}-node cluster to {}", dir.display());
                for (i, path) in &files.configs {
                    match passphrases.get(i) {
                        Some(p) => println!(
                            "  KEYQUORUM_PASSPHRASE={p} keyquorum serve --config {}",
                            path.display()
                        ),
                        None => println!("  keyquorum serve --config {}", path.display()),
                    }
                }
                if !passphrases.is_empty() {
                    println!(
                        "the passphrases above are shown once and stored nowhere: keep each \
                         apart from its node's files (a secret manager, the operator's vault)"
                    );
                }
                println!("admin token: {}", dir.join("admin.token").display());
                if let Some(ca) = ca {
                    println!(
                        "CA certificate (for clients: --ca / KEYQUORUM_CA): {}",
                        ca.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config, log_format } => {
            init_logging(&log_format);
            let config = crate::config::NodeConfig::load(&config)?;
            let node = crate::node::Node::open(config)
                .map_err(|e| Failure(ExitCode::from(2), e.to_string()))?;
            actix_web::rt::System::new()
                .block_on(crate::http::run(std::sync::Arc::new(node)))
                .map_err(|e| Failure(ExitCode::from(2), format!("cannot serve: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(cmd) => keys(cmd),
        Command::Sign { key, input, client } => {
            let message = input.read()?;
            let answer = runtime()?.block_on(client.client()?.sign(&key, &message))?;
            if client.json {
                print_json(&answer);
            } else {
                println!("{}", answer.signature);
                eprintln!("signed by nodes {:?}", answer.signers);
                for e in &answer.excluded {
                    eprintln!("excluded node {}: {}", e.node, e.reason);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            key,
            signature,
            input,
            client,
        } => {
            let message = input.read()?;
            let answer =
                runtime()?.block_on(client.client()?.verify(&key, &message, &signature))?;
            if client.json {
                print_json(&answer);
            } else {
                println!("{}", if answer.valid { "valid" } else { "INVALID" });
            }
            Ok(if answer.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Status { client } => {
            let status = runtime()?.block_on(client.client()?.status())?;
            if client.json {
                print_json(&status);
            } else {
                println!(
                    "node {} ({}), {} keys, sealed: {} (by {}), admin log caught up: {}",
                    status.node,
                    status.name,
                    status.keys,
                    status.sealed,
                    status.seal,
                    status.admin_caught_up
                );
                for p in &status.peers {
                    match &p.error {
                        None if p.sealed == Some(true) => {
                            println!("  peer {} ({}): reachable, SEALED", p.node, p.name)
                        }
                        None => println!("  peer {} ({}): reachable", p.node, p.name),
                        Some(e) => println!("  peer {} ({}): UNREACHABLE: {e}", p.node, p.name),
                    }
                }
                for line in unsettled_lines(&status.unsettled_keys) {
                    println!("{line}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { client } => {
            let health = runtime()?.block_on(client.client()?.health())?;
            if client.json {
                print_json(&health);
            } else {
                println!("{}", health.status);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { keep } => crate::demo::run(keep).map_err(Failure::from),
        Command::Client(cmd) => access::client(cmd),
        Command::Audit(cmd) => access::audit(cmd),
        Command::Requests(cmd) => requests::run(cmd),
        Command::Seal { client } => access::seal(&client),
        Command::Unseal {
            passphrase_file,
            client,
        } => access::unseal(passphrase_file.as_ref(), &client),
        Command::Passphrase(cmd) => access::passphrase(cmd),
        Command::Store(cmd) => store::run(cmd),
        Command::Bench(args) => bench(args),
        Command::Encrypt {
            public_key,
            key,
            aead,
            input,
            output,
            client,
        } => {
            let (algorithm, public_key) = match (public_key, key) {
                (Some(hex_key), _) => {
                    let bytes = hex::decode(hex_key.trim()).context("--public-key is not hex")?;
                    let algorithm = match bytes.len() {
                        32 => api::Algorithm::HpkeX25519,
                        33 | 65 => api::Algorithm::EciesSecp256k1,
                        n => {
                            return Err(Failure(
                                ExitCode::from(2),
                                format!("a {n}-byte public key fits no decryption algorithm"),
                            ))
                        }
                    };
                    (algorithm, bytes)
                }
                (None, Some(name)) => {
                    let info = runtime()?.block_on(client.client()?.get_key(&name))?;
                    (
                        info.algorithm,
                        hex::decode(&info.public_key).context("node sent a bad public key")?,
                    )
                }
                (None, None) => {
                    return Err(Failure(
                        ExitCode::from(2),
                        "give --public-key or --key".into(),
                    ))
                }
            };
            let aead = aead
                .parse()
                .map_err(|e: keyshares::decrypt::DecryptError| {
                    Failure(ExitCode::from(2), e.to_string())
                })?;
            let mut out = open_output(output.as_ref())?;
            for (n, line) in read_lines(input.as_ref())?.iter().enumerate() {
                let record: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| Failure(ExitCode::from(2), format!("line {}: {e}", n + 1)))?;
                let sealed = crate::records::seal(algorithm, &public_key, &record, aead)
                    .map_err(|e| Failure(ExitCode::from(2), format!("line {}: {e}", n + 1)))?;
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&sealed).map_err(anyhow::Error::from)?
                )
                .map_err(anyhow::Error::from)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Decrypt {
            key,
            batch,
            approver_keys,
            combine_on_node,
            input,
            output,
            client,
        } => {
            let lines = read_lines(input.as_ref())?;
            let sealed = lines
                .iter()
                .enumerate()
                .map(|(n, l)| {
                    serde_json::from_str::<crate::records::SealedRecord>(l).map_err(|e| {
                        Failure(
                            ExitCode::from(2),
                            format!("line {}: not a sealed record: {e}", n + 1),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let bar = indicatif::ProgressBar::new(sealed.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} records {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let api_client = client.client()?;
            let approvers = approver_keys
                .iter()
                .map(|p| api::ClientKey::load(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure(ExitCode::from(2), e))?;
            let results = runtime()?.block_on(crate::records::decrypt_all(
                &api_client,
                &key,
                &sealed,
                batch,
                &approvers,
                combine_on_node,
                |done| bar.set_position(done as u64),
            ))?;
            bar.finish_and_clear();
            let mut out = open_output(output.as_ref())?;
            let mut failed = 0;
            for (n, result) in results.into_iter().enumerate() {
                match result {
                    Ok(record) => writeln!(out, "{record}").map_err(anyhow::Error::from)?,
                    Err(e) => {
                        failed += 1;
                        eprintln!("line {}: {e}", n + 1);
                    }
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} records did not decrypt", sealed.len());
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bench(args: crate::bench::BenchArgs) -> Result<ExitCode, Failure> {
    use crate::bench::{markdown, BenchError, Options};
    let soak = args.soak;
    let opts = Options::from_args(args).map_err(|e| Failure(ExitCode::from(2), e))?;
    let command = std::iter::once("keyquorum".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(seconds) = soak {
        let (threshold, nodes) = opts.sizes[0];
        let soak = crate::bench::soak::SoakOptions {
            seconds,
            threshold,
            nodes,
            concurrency: opts.concurrency,
            out: opts.out.clone(),
        };
        let report = crate::bench::soak::run(&soak, command)
            .map_err(|e| Failure(ExitCode::from(3), format!("soak failed: {e:#}")))?;
        print!("{}", crate::bench::soak::markdown(&report));
        let out = opts.out.display();
        println!("\nwrote {out}/soak.md, {out}/soak.json, {out}/soak.svg");
        return Ok(ExitCode::SUCCESS);
    }
    let report = crate::bench::run(&opts, command).map_err(|e| match e {
        BenchError::Usage(m) => Failure(ExitCode::from(2), m),
        BenchError::Failed(e) => Failure(ExitCode::from(3), format!("benchmark failed: {e:#}")),
    })?;
    print!("{}", markdown::summary_table(&report));
    let out = opts.out.display();
    println!("\nwrote {out}/report.md, {out}/report.json, {out}/latency.svg, {out}/bytes.svg");
    Ok(ExitCode::SUCCESS)
}

/// Non-empty lines of a file or standard input.
fn read_lines(path: Option<&PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    match path {
        Some(p) => {
            text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?
        }
        None => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

fn open_output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

fn keys(cmd: KeysCommand) -> Result<ExitCode, Failure> {
    match cmd {
        KeysCommand::Create {
            name,
            algorithm,
            threshold,
            participants,
            policy,
            client,
        } => {
            let algorithm = algorithm
                .parse()
                .map_err(|e: String| Failure(ExitCode::from(2), e))?;
            let request = CreateKeyRequest {
                name,
                algorithm,
                threshold,
                participants,
                policy: policy.to_policy(),
            };
            let info = runtime()?.block_on(client.client()?.create_key(&request))?;
            if client.json {
                print_json(&info);
            } else {
                println!(
                    "created {} ({}, {}-of-{})",
                    info.name,
                    info.algorithm,
                    info.threshold,
                    info.participants.len()
                );
                println!("public key: {}", info.public_key);
                if let Some(c) = info.ceremony {
                    println!(
                        "ceremony: {} rounds, {} peer bytes, {:.1} ms",
                        c.rounds, c.peer_bytes, c.elapsed_ms
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { client } => {
            let list = runtime()?.block_on(client.client()?.list_keys())?;
            if client.json {
                print_json(&list);
            } else {
                for k in &list.keys {
                    let retired = if k.state == api::KeyState::Retired {
                        "  (retired)"
                    } else {
                        ""
                    };
                    println!(
                        "{:<24} {:<16} {}-of-{}  {}{retired}",
                        k.name,
                        k.algorithm.as_str(),
                        k.threshold,
                        k.participants.len(),
                        k.public_key
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Policy {
            name,
            policy,
            client,
        } => {
            let policy = policy.to_policy().unwrap_or_default();
            let info = runtime()?.block_on(client.client()?.set_policy(&name, &policy))?;
            print_json(&info.policy);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Show { name, client } => {
            let info = runtime()?.block_on(client.client()?.get_key(&name))?;
            print_json(&info);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Refresh { name, client } => {
            let info = runtime()?.block_on(client.client()?.refresh_key(&name))?;
            print_renewed("refreshed", &info, client.json);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Repair {
            name,
            node,
            helpers,
            client,
        } => {
            let request = api::RepairRequest { node, helpers };
            let info = runtime()?.block_on(client.client()?.repair_key(&name, &request))?;
            print_renewed(
                &format!("repaired node {node}'s share of"),
                &info,
                client.json,
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Reshare {
            name,
            participants,
            threshold,
            dealers,
            client,
        } => {
            let request = api::ReshareRequest {
                participants,
                threshold,
                dealers,
            };
            let info = runtime()?.block_on(client.client()?.reshare_key(&name, &request))?;
            print_renewed("reshared", &info, client.json);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Retire { name, client } => {
            let info = runtime()?.block_on(client.client()?.retire_key(&name))?;
            if client.json {
                print_json(&info);
            } else {
                println!(
                    "retired {} at {}; public key {} stays readable",
                    info.name,
                    info.retired_at.as_deref().unwrap_or("?"),
                    info.public_key
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line on a refresh, repair or reshare, and its cost.
fn print_renewed(what: &str, info: &api::KeyInfo, json: bool) {
    if json {
        print_json(info);
        return;
    }
    println!(
        "{what} {} ({}-of-{} on nodes {:?}, generation {})",
        info.name,
        info.threshold,
        info.participants.len(),
        info.participants,
        info.generation
    );
    println!("public key (unchanged): {}", info.public_key);
    if let Some(c) = &info.ceremony {
        println!(
            "ceremony: {} rounds, {} peer bytes, {:.1} ms",
            c.rounds, c.peer_bytes, c.elapsed_ms
        );
    }
}

/// One line per key whose holders are between generations, naming each node's view.
fn unsettled_lines(keys: &[api::UnsettledKey]) -> Vec<String> {
    let mut by_key: std::collections::BTreeMap<&str, Vec<&api::UnsettledKey>> = Default::default();
    for k in keys {
        by_key.entry(&k.key).or_default().push(k);
    }
    by_key
        .into_iter()
        .map(|(key, views)| {
            let views: Vec<String> = views
                .iter()
                .map(|v| {
                    let mut text = format!("node {} on generation {}", v.node, v.generation);
                    if let Some(p) = v.pending_generation {
                        text += &format!(" (generation {p} pending)");
                    }
                    if v.keeps_previous {
                        text += " (keeps the previous generation)";
                    }
                    text
                })
                .collect();
            format!(
                "  key {key}: HOLDERS DISAGREE, settling: {}",
                views.join("; ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unsettled_keys_are_one_line_each_naming_every_view() {
        let view = |node, generation, pending_generation, keeps_previous| api::UnsettledKey {
            key: "k".into(),
            node,
            generation,
            pending_generation,
            keeps_previous,
        };
        let lines = super::unsettled_lines(&[view(1, 1, None, true), view(4, 0, Some(1), false)]);
        assert_eq!(
            lines,
            vec![
                "  key k: HOLDERS DISAGREE, settling: node 1 on generation 1 (keeps the \
                  previous generation); node 4 on generation 0 (generation 1 pending)"
            ]
        );
        assert!(super::unsettled_lines(&[]).is_empty());
    }
}
