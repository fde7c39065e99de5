//! The CLI's access-control commands (issue #5): clients, key policies, the audit trail,
//! sealing, and changing a store's passphrase.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use api::{ClientInfo, KeyPolicy, Role};
use clap::{Args, Subcommand};

use super::{print_json, runtime, ClientOpts, Failure};

fn usage(message: impl Into<String>) -> Failure {
    Failure(ExitCode::from(2), message.into())
}

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Register a client (or replace its key and roles) on every node.
    ///
    /// Example: keyquorum client add analyst --public-key 9f2c…e1 --role key-creator --client-key cluster/admin.key
    Add {
        name: String,
        /// Hex, the client's 32-byte Ed25519 public key (see `client keygen`).
        #[arg(long)]
        public_key: String,
        /// admin, key-creator or auditor; repeat for several. None: the client acts only
        /// where key policies name it.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List the registered clients.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Remove a client on every node.
    Remove {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Create a client key file (private, 0600) and print its public key.
    ///
    /// Example: keyquorum client keygen analyst --out analyst.key
    Keygen {
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Page through a node's audit trail (admin or auditor).
    List {
        /// Start after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Check a stopped node's audit trail: the hash chain and every entry's signature with
    /// the node's identity key from the config; with --peers, also against the signed heads
    /// of this node its peers recorded (GET /v1/audit/heads on each member's client URL), so a
    /// truncated or rewritten trail shows. Names the first break (exit code 1).
    ///
    /// Example: keyquorum audit verify --config cluster/node-2.toml --peers --token-file cluster/admin.token
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// Ask the other members for the heads of this node they recorded.
        #[arg(long)]
        peers: bool,
        #[command(flatten)]
        client: ClientOpts,
    },
}

#[derive(Subcommand)]
pub(crate) enum PassphraseCommand {
    /// Re-wrap a stopped node's data key under a new passphrase. The new passphrase is read
    /// from --new-passphrase-file (or KEYQUORUM_NEW_PASSPHRASE) and, when the config names a
    /// passphrase file, written there so the node starts with it.
    ///
    /// Example: keyquorum passphrase change --config cluster/node-1.toml --new-passphrase-file new.txt
    Change {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
}

/// A key policy from the command line.
#[derive(Args, Clone, Default)]
pub(crate) struct PolicyArgs {
    /// Clients that may sign ("*" for all).
    #[arg(long, value_delimiter = ',')]
    sign: Option<Vec<String>>,
    /// Clients that may decrypt.
    #[arg(long, value_delimiter = ',')]
    decrypt: Option<Vec<String>>,
    /// Clients that may read the key's data with a signed request.
    #[arg(long, value_delimiter = ',')]
    read: Option<Vec<String>>,
    /// Clients that may change the policy.
    #[arg(long, value_delimiter = ',')]
    manage: Option<Vec<String>>,
    /// Clients that may approve decryptions.
    #[arg(long, value_delimiter = ',')]
    approve: Option<Vec<String>>,
    /// Distinct approvals (besides the requester) a decryption needs.
    #[arg(long)]
    decrypt_approvals: Option<u16>,
    /// `end_to_end` forbids coordinator-combine decryption of the key (DESIGN.md §6).
    #[arg(long, value_parser = ["any", "end_to_end"])]
    decrypt_mode: Option<String>,
    /// Whether one approver's refusal closes a decryption request (default true).
    #[arg(long)]
    deny_closes: Option<bool>,
    /// Seconds until a decryption request expires unexecuted (default 86400).
    #[arg(long)]
    request_ttl_seconds: Option<u64>,
}

impl PolicyArgs {
    /// `None` when no policy flag was given (the node's default applies).
    pub fn to_policy(&self) -> Option<KeyPolicy> {
        let given = self.sign.is_some()
            || self.decrypt.is_some()
            || self.read.is_some()
            || self.manage.is_some()
            || self.approve.is_some()
            || self.decrypt_approvals.is_some()
            || self.decrypt_mode.is_some()
            || self.deny_closes.is_some()
            || self.request_ttl_seconds.is_some();
        given.then(|| KeyPolicy {
            sign: self.sign.clone().unwrap_or_default(),
            decrypt: self.decrypt.clone().unwrap_or_default(),
            read: self.read.clone().unwrap_or_default(),
            manage: self.manage.clone().unwrap_or_default(),
            decrypt_approvals: self.decrypt_approvals.unwrap_or(0),
            approve: self.approve.clone().unwrap_or_default(),
            decrypt_mode: match self.decrypt_mode.as_deref() {
                Some("end_to_end") => api::DecryptMode::EndToEnd,
                _ => api::DecryptMode::Any,
            },
            deny_closes: self.deny_closes.unwrap_or(true),
            request_ttl_seconds: self
                .request_ttl_seconds
                .unwrap_or(api::DEFAULT_REQUEST_TTL_SECONDS),
        })
    }
}

pub(crate) fn client(cmd: ClientCommand) -> Result<ExitCode, Failure> {
    match cmd {
        ClientCommand::Add {
            name,
            public_key,
            roles,
            client,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(usage)?;
            let info = ClientInfo {
                name,
                public_key,
                roles,
            };
            crate::store::clients::validate(&info).map_err(usage)?;
            let applied = runtime()?.block_on(client.client()?.put_client(&info))?;
            if client.json {
                print_json(&applied);
            } else {
                println!(
                    "client {} registered on nodes {:?} (change {})",
                    info.name, applied.nodes, applied.admin_seq
                );
            }
        }
        ClientCommand::List { client } => {
            let list = runtime()?.block_on(client.client()?.list_clients())?;
            if client.json {
                print_json(&list);
            } else {
                for c in &list.clients {
                    let roles: Vec<&str> = c.roles.iter().map(Role::as_str).collect();
                    println!("{:<24} {}  {}", c.name, c.public_key, roles.join(","));
                }
            }
        }
        ClientCommand::Remove { name, client } => {
            let applied = runtime()?.block_on(client.client()?.remove_client(&name))?;
            if client.json {
                print_json(&applied);
            } else {
                println!("client {name} removed on nodes {:?}", applied.nodes);
            }
        }
        ClientCommand::Keygen { name, out } => {
            crate::validate::client_name(&name).map_err(usage)?;
            if out.exists() {
                return Err(usage(format!(
                    "{} exists; refusing to overwrite",
                    out.display()
                )));
            }
            let key = api::ClientKey::generate(name);
            crate::fsutil::write_private(&out, key.to_file_text().as_bytes())?;
            println!("{}", key.public_hex());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn audit(cmd: AuditCommand) -> Result<ExitCode, Failure> {
    match cmd {
        AuditCommand::List {
            after,
            limit,
            client,
        } => {
            let page = runtime()?.block_on(client.client()?.audit(Some(after), limit))?;
            if client.json {
                print_json(&page);
            } else {
                for e in &page.entries {
                    println!(
                        "{:>6} {} {:<14} {:<11} {:<8} client={} key={}",
                        e.seq,
                        e.time,
                        e.action,
                        e.role,
                        e.outcome,
                        e.client.as_deref().unwrap_or("-"),
                        e.key.as_deref().unwrap_or("-"),
                    );
                }
                if let Some(next) = page.next_after {
                    println!("more: --after {next}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            config,
            peers,
            client,
        } => {
            let config = crate::config::NodeConfig::load(&config)?;
            // The trail needs no passphrase: it holds hashes, never secrets.
            let db = sled::open(&config.data_dir).with_context(|| {
                format!(
                    "cannot open {} (is the node still running?)",
                    config.data_dir.display()
                )
            })?;
            let tree = db.open_tree("audit").map_err(anyhow::Error::from)?;
            let signers = crate::state::statement::Signers::new(&config.members)?;
            let verified = match crate::audit::verify_tree(&tree, Some((config.id, &signers))) {
                Ok(v) => v,
                Err(broken) => {
                    println!("audit trail BROKEN: {broken}");
                    return Ok(ExitCode::from(1));
                }
            };
            if peers {
                let breaks = super::audit_peers::check(&config, &client, &tree, &verified)?;
                if !breaks.is_empty() {
                    for b in &breaks {
                        println!("audit trail BROKEN: {b}");
                    }
                    return Ok(ExitCode::from(1));
                }
            }
            let unsigned = match verified.unsigned {
                0 => String::new(),
                n => format!(" ({n} written before entries were signed)"),
            };
            println!(
                "audit trail intact: {} entries, signatures verified{unsigned}{}",
                verified.entries,
                if peers {
                    ", consistent with the heads peers recorded"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn seal(client: &ClientOpts) -> Result<ExitCode, Failure> {
    let state = runtime()?.block_on(client.client()?.seal())?;
    println!("sealed: {}", state.sealed);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn unseal(
    passphrase_file: Option<&PathBuf>,
    client: &ClientOpts,
) -> Result<ExitCode, Failure> {
    // A node sealed by a PKCS#11 token needs no passphrase: the request goes empty, signed by
    // the client key (it must be an admin's).
    let passphrase = match passphrase_file {
        Some(path) => zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        None => zeroize::Zeroizing::new(std::env::var("KEYQUORUM_PASSPHRASE").unwrap_or_default()),
    };
    let state = runtime()?.block_on(client.client()?.unseal(&passphrase))?;
    println!("sealed: {}", state.sealed);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn passphrase(cmd: PassphraseCommand) -> Result<ExitCode, Failure> {
    let PassphraseCommand::Change {
        config,
        new_passphrase_file,
    } = cmd;
    let config = crate::config::NodeConfig::load(&config)?;
    let new = match &new_passphrase_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => std::env::var("KEYQUORUM_NEW_PASSPHRASE")
            .map_err(|_| usage("give --new-passphrase-file or set KEYQUORUM_NEW_PASSPHRASE"))?,
    };
    let new = zeroize::Zeroizing::new(new);
    let old = config.passphrase()?;
    let store = crate::store::Store::open(&config.data_dir, &old)
        .map_err(|e| Failure(ExitCode::from(3), e.to_string()))?;
    // The new passphrase file is written aside first and moved into place only after the data
    // key is re-wrapped, so a failure at any step leaves a file that opens the store.
    let staged = config
        .passphrase_file
        .as_ref()
        .map(|file| -> anyhow::Result<_> {
            let aside = file.with_extension("new");
            let _ = std::fs::remove_file(&aside);
            crate::fsutil::write_private(&aside, format!("{}\n", new.as_str()).as_bytes())?;
            Ok((aside, file.clone()))
        })
        .transpose()?;
    store
        .change_passphrase(&new)
        .map_err(|e| Failure(ExitCode::from(3), e.to_string()))?;
    drop(store);
    match staged {
        Some((aside, file)) => {
            std::fs::rename(&aside, &file)
                .with_context(|| format!("cannot replace {}", file.display()))?;
            println!("passphrase changed; {} holds the new one", file.display());
        }
        None => println!("passphrase changed; start the node with the new KEYQUORUM_PASSPHRASE"),
    }
    Ok(ExitCode::SUCCESS)
}
