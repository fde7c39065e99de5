//! `keyquorum bench --soak SECONDS`: sustained mixed load (signatures and decryptions, half
//! each) against a local cluster whose nodes are separate processes of this binary, sampling
//! every node's resident memory (VmRSS from /proc/PID/status) and store size on disk over time.
//! Writes soak.md, soak.json and soak.svg (memory and store against time).
//!
//! The nodes inherit the environment, so settings under test are given the usual way, e.g.
//! `KEYQUORUM_AUDIT_RETAIN_ENTRIES=10000 keyquorum bench --soak 600`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use api::{Algorithm, Client, CreateKeyRequest, DecryptRequest};
use keyshares::decrypt::Scheme;
use keyshares::{sign, Curve};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::chart;
use crate::cluster::LocalCluster;

pub struct SoakOptions {
    pub seconds: u64,
    pub threshold: u16,
    pub nodes: u16,
    pub concurrency: usize,
    pub out: PathBuf,
}

/// One node at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSample {
    pub node: u16,
    /// Resident memory, bytes (VmRSS).
    pub rss_bytes: u64,
    /// Bytes of every file under the node's data directory.
    pub store_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t_s: f64,
    /// Operations answered so far.
    pub ops: u64,
    pub errors: u64,
    pub nodes: Vec<NodeSample>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: u16,
    pub rss_start_bytes: u64,
    pub rss_end_bytes: u64,
    pub rss_max_bytes: u64,
    pub store_start_bytes: u64,
    pub store_end_bytes: u64,
    /// Store growth over the run divided by every operation the cluster answered.
    pub store_bytes_per_op: f64,
    /// Audit entries in the node's store at the end, and their stored bytes (keys and
    /// values) per operation the cluster answered: the part of the growth that is the trail.
    pub audit_entries: u64,
    pub audit_bytes_per_op: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakReport {
    pub schema: String,
    pub generated_at: String,
    pub command: String,
    pub machine: String,
    pub commit: String,
    /// `release` or `debug`: the build of the binary that ran the nodes.
    pub build: String,
    pub nodes: u16,
    pub threshold: u16,
    pub concurrency: usize,
    pub seconds: f64,
    pub signatures: u64,
    pub sign_errors: u64,
    pub decryptions: u64,
    pub decrypt_errors: u64,
    pub first_error: Option<String>,
    pub ops_per_second: f64,
    pub per_node: Vec<NodeSummary>,
    pub samples: Vec<Sample>,
}

/// The node processes; killed when dropped, so a failed run leaves none behind.
struct Processes(Vec<(u16, Child, PathBuf)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn sample(processes: &Processes, t_s: f64, counters: &Counters) -> Sample {
    Sample {
        t_s,
        ops: counters.ok(),
        errors: counters.errors(),
        nodes: processes
            .0
            .iter()
            .map(|(id, child, data)| NodeSample {
                node: *id,
                rss_bytes: rss_bytes(child.id()).unwrap_or(0),
                store_bytes: dir_bytes(data),
            })
            .collect(),
    }
}

#[derive(Default)]
struct Counters {
    signatures: AtomicU64,
    sign_errors: AtomicU64,
    decryptions: AtomicU64,
    decrypt_errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn ok(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed) + self.decryptions.load(Ordering::Relaxed)
    }
    fn errors(&self) -> u64 {
        self.sign_errors.load(Ordering::Relaxed) + self.decrypt_errors.load(Ordering::Relaxed)
    }
    fn failed(&self, counter: &AtomicU64, e: anyhow::Error) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.first_error
            .lock()
            .get_or_insert_with(|| format!("{e:#}"));
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[soak] {}", msg.as_ref());
}

async fn wait_healthy(client: &Client, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match client.health().await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => bail!("a node never answered: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn create(
    client: &Client,
    name: &str,
    algorithm: Algorithm,
    t: u16,
) -> anyhow::Result<api::KeyInfo> {
    let request = CreateKeyRequest {
        name: name.into(),
        algorithm,
        threshold: t,
        participants: None,
        policy: None,
    };
    // The nodes may still be catching up with each other just after they start.
    let mut tries = 0;
    loop {
        match client.create_key(&request).await {
            Ok(info) => return Ok(info),
            Err(e) if tries >= 30 => return Err(e).with_context(|| format!("creating {name}")),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Runs the soak and writes its report into `opts.out`.
pub fn run(opts: &SoakOptions, command: String) -> anyhow::Result<SoakReport> {
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let machine = super::machine::Machine::detect().summary();
    let commit = super::machine::Commit::detect().short().to_string();
    let dir = tempfile::Builder::new()
        .prefix("keyquorum-soak-")
        .tempdir()?;
    let cluster = LocalCluster::create(&dir.path().join("cluster"), usize::from(opts.nodes))?;
    let exe = std::env::current_exe().context("finding this program to start the nodes")?;
    let mut processes = Processes(Vec::new());
    for id in cluster.ids() {
        let config = cluster.files.configs[&id].clone();
        let data = crate::config::NodeConfig::load(&config)?.data_dir;
        let log = std::fs::File::create(opts.out.join(format!("soak-node-{id}.log")))?;
        let child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            // One benchmark client drives the whole load: the per-client limit would measure
            // itself.
            .env("KEYQUORUM_AUTH_CLIENT_REQUESTS_PER_SECOND", "0")
            .env(
                "KEYQUORUM_LOG",
                std::env::var("KEYQUORUM_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        processes.0.push((id, child, data));
    }
    progress(format!(
        "{} node processes started ({machine}, {commit})",
        opts.nodes
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clients: Vec<Client> = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.client(id))
        .collect();
    let t = opts.threshold;
    let (sign_key, decrypt_key) = rt.block_on(async {
        for c in &clients {
            wait_healthy(c, Duration::from_secs(120)).await?;
        }
        let s = create(&clients[0], "soak-sign", Algorithm::FrostEd25519, t).await?;
        let d = create(&clients[0], "soak-decrypt", Algorithm::HpkeX25519, t).await?;
        anyhow::Ok((s, d))
    })?;
    let group_key = Arc::new(hex::decode(&sign_key.group_verifying_key)?);
    let plain = super::inprocess::records(1);
    let decrypt_request = Arc::new(DecryptRequest {
        ciphertexts: super::inprocess::encrypt_all(
            Scheme::HpkeX25519,
            &hex::decode(&decrypt_key.group_verifying_key)?,
            &plain,
        )?
        .iter()
        .map(crate::http::ops::ciphertext_item)
        .collect(),
        ..Default::default()
    });
    let plain = Arc::new(plain);

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let mut samples = vec![sample(&processes, 0.0, &counters)];
    progress(format!(
        "{} s of sign + decrypt at concurrency {}",
        opts.seconds, opts.concurrency
    ));
    let tasks: Vec<_> = (0..opts.concurrency)
        .map(|task| {
            let clients = clients.clone();
            let counters = counters.clone();
            let (group_key, decrypt_request, plain) =
                (group_key.clone(), decrypt_request.clone(), plain.clone());
            rt.spawn(async move {
                // A sign then a decryption on each node in turn.
                let mut k = task;
                while Instant::now() < deadline {
                    let client = &clients[(k / 2) % clients.len()];
                    if k % 2 == 0 {
                        let message = format!("soak {task} {k}");
                        let outcome = async {
                            let resp = client.sign("soak-sign", message.as_bytes()).await?;
                            let sig = hex::decode(&resp.signature)?;
                            if !sign::verify(Curve::Ed25519, &group_key, message.as_bytes(), &sig) {
                                bail!("the cluster returned an invalid signature");
                            }
                            Ok(())
                        }
                        .await;
                        match outcome {
                            Ok(()) => {
                                counters.signatures.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => counters.failed(&counters.sign_errors, e),
                        }
                    } else {
                        let outcome = async {
                            let resp = client
                                .decrypt_combined_by_node("soak-decrypt", &decrypt_request)
                                .await?;
                            let got = resp
                                .results
                                .first()
                                .and_then(|r| r.plaintext.as_deref())
                                .context("the record did not decrypt")?;
                            if api::client::unb64(got).map_err(anyhow::Error::msg)? != plain[0] {
                                bail!("the record decrypted to the wrong plaintext");
                            }
                            Ok(())
                        }
                        .await;
                        match outcome {
                            Ok(()) => {
                                counters.decryptions.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => counters.failed(&counters.decrypt_errors, e),
                        }
                    }
                    k += 1;
                }
            })
        })
        .collect();
    // About 20 samples over the run, none closer than a second apart.
    let every = Duration::from_secs((opts.seconds / 20).max(1));
    let mut next = started + every;
    while Instant::now() < deadline {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += every;
        let s = sample(&processes, started.elapsed().as_secs_f64(), &counters);
        progress(format!(
            "{:>5.0} s: {} ops, {} errors, RSS {} MB",
            s.t_s,
            s.ops,
            s.errors,
            s.nodes
                .iter()
                .map(|n| format!("{:.1}", n.rss_bytes as f64 / 1e6))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
        samples.push(s);
    }
    rt.block_on(async {
        for task in tasks {
            let _ = task.await;
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let last = sample(&processes, elapsed, &counters);
    samples.push(last);
    let data_dirs: Vec<PathBuf> = processes.0.iter().map(|(_, _, d)| d.clone()).collect();
    drop(processes);
    let trails: Vec<(u64, u64)> = data_dirs.iter().map(|d| audit_bytes(d)).collect();

    let ops = counters.ok();
    let first = &samples[0];
    let last = samples.last().expect("at least two samples");
    let per_node = first
        .nodes
        .iter()
        .zip(&last.nodes)
        .zip(&trails)
        .map(|((a, b), &(audit_entries, audit_bytes))| NodeSummary {
            audit_entries,
            audit_bytes_per_op: if ops == 0 {
                0.0
            } else {
                audit_bytes as f64 / ops as f64
            },
            node: a.node,
            rss_start_bytes: a.rss_bytes,
            rss_end_bytes: b.rss_bytes,
            rss_max_bytes: samples
                .iter()
                .flat_map(|s| s.nodes.iter().filter(|n| n.node == a.node))
                .map(|n| n.rss_bytes)
                .max()
                .unwrap_or(0),
            store_start_bytes: a.store_bytes,
            store_end_bytes: b.store_bytes,
            store_bytes_per_op: if ops == 0 {
                0.0
            } else {
                b.store_bytes.saturating_sub(a.store_bytes) as f64 / ops as f64
            },
        })
        .collect();
    let report = SoakReport {
        schema: "keyquorum-soak/1".into(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        command,
        machine,
        commit,
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        nodes: opts.nodes,
        threshold: t,
        concurrency: opts.concurrency,
        seconds: elapsed,
        signatures: counters.signatures.load(Ordering::Relaxed),
        sign_errors: counters.sign_errors.load(Ordering::Relaxed),
        decryptions: counters.decryptions.load(Ordering::Relaxed),
        decrypt_errors: counters.decrypt_errors.load(Ordering::Relaxed),
        first_error: counters.first_error.lock().clone(),
        ops_per_second: ops as f64 / elapsed,
        per_node,
        samples,
    };
    write(&opts.out, &report)?;
    Ok(report)
}

/// (entries, bytes of keys and values) of the audit trail in the stopped node's store.
fn audit_bytes(data: &Path) -> (u64, u64) {
    // A node killed a moment ago: its lock goes with the process.
    let Ok(db) = crate::store::open_db(data, 1 << 20) else {
        return (0, 0);
    };
    let Ok(tree) = db.open_tree("audit") else {
        return (0, 0);
    };
    tree.iter().flatten().fold((0, 0), |(n, b), (k, v)| {
        (n + 1, b + (k.len() + v.len()) as u64)
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

pub fn markdown(r: &SoakReport) -> String {
    let mut md = format!(
        "# keyquorum soak\n\n`{}`\n\n{} nodes (t = {}) as separate processes, {} build, {}, commit {}, \
         {:.0} s at concurrency {}: {} signatures and {} decryptions ({:.1} ops/s), {} errors.\n",
        r.command,
        r.nodes,
        r.threshold,
        r.build,
        r.machine,
        r.commit,
        r.seconds,
        r.concurrency,
        r.signatures,
        r.decryptions,
        r.ops_per_second,
        r.sign_errors + r.decrypt_errors,
    );
    if let Some(e) = &r.first_error {
        md.push_str(&format!("\nFirst error: {e}\n"));
    }
    md.push_str(
        "\n| node | RSS start (MB) | RSS end (MB) | RSS max (MB) | store start (MB) | store end (MB) | store bytes / op | audit entries | audit bytes / op |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for n in &r.per_node {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {:.0} |\n",
            n.node,
            mb(n.rss_start_bytes),
            mb(n.rss_end_bytes),
            mb(n.rss_max_bytes),
            mb(n.store_start_bytes),
            mb(n.store_end_bytes),
            n.store_bytes_per_op,
            n.audit_entries,
            n.audit_bytes_per_op
        ));
    }
    md.push_str("\nStore bytes per op: a node's store growth over the run divided by every operation the cluster answered (each operation reaches t nodes); audit bytes per op: the trail's entries alone, as stored (the rest is the store's own overhead: its log and pages not yet reclaimed).\n\n");
    let header: Vec<String> = r
        .per_node
        .iter()
        .map(|n| format!("RSS {0} (MB) | store {0} (MB)", n.node))
        .collect();
    md.push_str(&format!(
        "| t (s) | ops | errors | {} |\n",
        header.join(" | ")
    ));
    md.push_str(&format!(
        "|---:|---:|---:|{}\n",
        "---:|---:|".repeat(r.per_node.len())
    ));
    for s in &r.samples {
        let cells: Vec<String> = s
            .nodes
            .iter()
            .map(|n| format!("{} | {}", mb(n.rss_bytes), mb(n.store_bytes)))
            .collect();
        md.push_str(&format!(
            "| {:.0} | {} | {} | {} |\n",
            s.t_s,
            s.ops,
            s.errors,
            cells.join(" | ")
        ));
    }
    md.push_str("\nChart: soak.svg (resident memory and store size per node against time).\n");
    md
}

fn write(dir: &Path, report: &SoakReport) -> anyhow::Result<()> {
    let save = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    save("soak.json", &serde_json::to_string_pretty(report)?)?;
    save("soak.md", &markdown(report))?;
    let mut series = Vec::new();
    for n in &report.per_node {
        for (what, pick) in [
            (
                "RSS",
                (|s: &NodeSample| s.rss_bytes) as fn(&NodeSample) -> u64,
            ),
            ("store", |s: &NodeSample| s.store_bytes),
        ] {
            series.push(chart::Series {
                label: format!("{what} node {}", n.node),
                points: report
                    .samples
                    .iter()
                    .filter_map(|s| {
                        let node = s.nodes.iter().find(|x| x.node == n.node)?;
                        Some((s.t_s.round(), pick(node) as f64))
                    })
                    .collect(),
            });
        }
    }
    let chart = chart::Chart {
        title: "Resident memory and store size per node over the soak",
        x_label: "seconds",
        y_label: "bytes (log scale)",
        y_format: chart::format_bytes,
        series,
    };
    save("soak.svg", &chart.to_svg())?;
    Ok(())
}
