//! The `keyquorum` command line: cluster set-up, the node itself, and a client for everything
//! the API does. Exit codes: 0 success, 1 a negative answer (e.g. an invalid signature),
//! 2 usage or input error, 3 the node refused or failed the request, 4 no node reachable.

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
    about = "Threshold key management: DKG, FROST signing and threshold decryption over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct ClientOpts {
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
    /// Print the API's JSON answer instead of a human summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run a node.
    ///
    /// Example: keyquorum serve --config cluster/node-1.toml
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
    /// Example: keyquorum sign --key manifests --file manifest.json --token-file cluster/admin.token
    Sign {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        input: MessageInput,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Verify a signature (exit code 0 valid, 1 invalid).
    ///
    /// Example: keyquorum verify --key manifests --file manifest.json --signature 3fa1...
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
    /// Example: keyquorum encrypt --public-key 3b6a...e1 < detections.ndjson > sealed.ndjson
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
    /// Example: keyquorum decrypt --key reid --in sealed.ndjson --token-file cluster/admin.token
    Decrypt {
        #[arg(long)]
        key: String,
        /// Records per request (one peer round trip each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long = "in")]
        input: Option<PathBuf>,
        #[arg(long = "out")]
        output: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// A node's status and which peers answer it.
    Status {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Measure the cost of DKG, signing and decryption on local clusters of each size and
    /// write DIR/report.md, DIR/report.json and charts (latency.svg, bytes.svg).
    ///
    /// Example: keyquorum bench --nodes 3,5,9,21 --ops dkg,sign,decrypt --out bench-report
    Bench(crate::bench::BenchArgs),
    /// Run a local 3-node cluster, show a ceremony, signing and threshold decryption, and stop.
    ///
    /// Example: keyquorum demo            (or: keyquorum demo --keep)
    Demo {
        /// Leave the cluster running and print how to talk to it.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Write the configuration of an n-node loopback cluster into an empty directory.
    ///
    /// Example: keyquorum cluster init --nodes 3 --dir ./cluster --base-port 7100
    Init {
        #[arg(long)]
        nodes: usize,
        #[arg(long)]
        dir: PathBuf,
        /// Node i listens on base+2(i-1) (client) and base+2(i-1)+1 (peer).
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Run a key ceremony.
    ///
    /// Example: keyquorum keys create manifests --algorithm frost-ed25519 --threshold 2
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
        client: ClientOpts,
    },
    /// List keys.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Show one key's public data.
    Show {
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
    fn client(&self) -> anyhow::Result<Client> {
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
        Ok(Client::new(self.url.clone(), token))
    }
}

/// An error with the exit code it maps to.
struct Failure(ExitCode, String);

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

fn print_json<T: serde::Serialize>(value: &T) {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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
        }) => {
            let ports = crate::cluster::ports_from_base(nodes, base_port)?;
            let files = crate::cluster::init(&dir, &ports)?;
            println!("wrote a {nodes}-node cluster to {}", dir.display());
            for path in files.configs.values() {
                println!("  keyquorum serve --config {}", path.display());
            }
            println!("admin token: {}", dir.join("admin.token").display());
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
                    "node {} ({}), {} keys, sealed: {}",
                    status.node, status.name, status.keys, status.sealed
                );
                for p in &status.peers {
                    match &p.error {
                        None => println!("  peer {} ({}): reachable", p.node, p.name),
                        Some(e) => println!("  peer {} ({}): UNREACHABLE: {e}", p.node, p.name),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { keep } => crate::demo::run(keep).map_err(Failure::from),
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
            let results = runtime()?.block_on(crate::records::decrypt_all(
                &api_client,
                &key,
                &sealed,
                batch,
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
    let opts = Options::from_args(args).map_err(|e| Failure(ExitCode::from(2), e))?;
    let command = std::iter::once("keyquorum".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
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
                    println!(
                        "{:<24} {:<16} {}-of-{}  {}",
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
        KeysCommand::Show { name, client } => {
            let info = runtime()?.block_on(client.client()?.get_key(&name))?;
            print_json(&info);
            Ok(ExitCode::SUCCESS)
        }
    }
}
