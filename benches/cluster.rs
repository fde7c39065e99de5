//! End-to-end cost of the service against the bare cryptography it drives (DESIGN.md §9):
//! key ceremonies (issue #2), signing (issue #3) and batch decryption (issue #4), each over HTTP
//! on an in-process loopback cluster next to the same computation done in-process, all measured
//! in the same run so that the ratios are meaningful on whatever machine runs it.
//!
//! `cargo bench --bench cluster [-- [dkg|sign|decrypt]... [--quick]]`
//!
//! The report (Markdown) goes to stdout, progress to stderr.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use api::{Algorithm, Client, CreateKeyRequest, DecryptRequest, KeyInfo, OperationStats};
use keyquorum::cluster::LocalCluster;
use keyquorum::http::ops::ciphertext_item;
use keyshares::decrypt::{
    combine_and_open, encrypt, partial_decrypt, verify_partial, Ciphertext, HpkeAead, Scheme,
    ShareScalar,
};
use keyshares::dkg::run_in_memory;
use keyshares::{sign, Curve, KeyShare, ProtocolError, PublicKeys};
use rand::rngs::OsRng;

// ---------------------------------------------------------------------------------------------
// Options and sizes

struct Options {
    quick: bool,
    dkg: bool,
    sign: bool,
    decrypt: bool,
}

impl Options {
    fn parse() -> Options {
        let mut quick = false;
        let mut filters: Vec<String> = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                // cargo passes `--bench`; other libtest flags mean nothing here.
                a if a.starts_with("--") => {}
                a => filters.extend(
                    a.split([',', '|'])
                        .filter(|f| !f.is_empty())
                        .map(str::to_string),
                ),
            }
        }
        let on = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
        Options {
            quick,
            dkg: on("dkg"),
            sign: on("sign"),
            decrypt: on("decrypt"),
        }
    }

    fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50.0)
}

/// Nearest-rank percentile; NaN for no samples.
fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Milliseconds with precision that suits the magnitude.
fn fmt_ms(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

fn fmt_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn goal(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**not met**"
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn print_header(opts: &Options) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let rev = command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or("?".into());
    // Uncommitted changes to tracked files mean the numbers are not those of `rev` alone.
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    println!("# keyquorum cluster benchmark\n");
    println!(
        "- commit: `{rev}`{}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        }
    );
    println!("- machine: {cpus} × {model} (nproc = {cpus})");
    // Other work on the machine skews everything; the load average says whether there was any.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let avg: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("- load average before the run: {}", avg.join(" "));
    }
    println!(
        "- mode: {}; every node of a cluster runs in this process on loopback (own thread, own \
         actix system, own sled store), and the load generator shares the same cores",
        if opts.quick {
            "`--quick` (smoke run: few repetitions, numbers are rough)"
        } else {
            "full"
        }
    );
    println!(
        "- in-process figures: the same keyshares calls, sequential, on one thread of this run\n"
    );
}

/// A cluster in a temporary directory; the cluster is stopped before the directory goes.
struct Bench {
    cluster: LocalCluster,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn start(n: usize, workers: Option<usize>, slow_ceremonies: bool) -> anyhow::Result<Bench> {
        let dir = tempfile::tempdir()?;
        let mut cluster = LocalCluster::create(&dir.path().join("cluster"), n)?;
        cluster.adjust = Some(Box::new(move |c| {
            if let Some(w) = workers {
                c.workers = w;
            }
            if slow_ceremonies {
                // 21 nodes sharing 2 cores are far slower than the one node per machine the
                // defaults are meant for; a timeout would measure nothing.
                c.timeouts.peer_ms = 120_000;
                c.timeouts.ceremony_ms = 600_000;
            }
        }));
        cluster.start_all()?;
        Ok(Bench { cluster, _dir: dir })
    }

    fn clients(&self) -> Vec<Client> {
        self.cluster
            .ids()
            .into_iter()
            .map(|id| self.cluster.client(id))
            .collect()
    }
}

async fn create_key(
    client: &Client,
    name: &str,
    algorithm: Algorithm,
    threshold: u16,
) -> anyhow::Result<KeyInfo> {
    let request = CreateKeyRequest {
        name: name.into(),
        algorithm,
        threshold,
        participants: None,
        policy: None,
    };
    client
        .create_key(&request)
        .await
        .with_context(|| format!("creating {name} ({algorithm}, t = {threshold})"))
}

/// The whole frost DKG (with the echo check) for participants 1..=n, every participant in turn
/// on this thread.
fn dkg_in_process(curve: Curve, t: u16, n: u16) -> anyhow::Result<Vec<(KeyShare, PublicKeys)>> {
    let ids: Vec<u16> = (1..=n).collect();
    Ok(run_in_memory(curve, t, &ids, &mut OsRng)?)
}

// ---------------------------------------------------------------------------------------------
// 1. DKG

fn bench_dkg(opts: &Options, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    // (t, n, repetitions after one untimed cold ceremony)
    let sizes: &[(u16, u16, usize)] = opts.pick(
        &[(2, 3, 10), (3, 5, 8), (5, 9, 5), (11, 21, 4)],
        &[(2, 3, 2), (3, 5, 2), (5, 9, 1)],
    );
    struct Row {
        t: u16,
        n: u16,
        reps: usize,
        startup_ms: f64,
        cold_ms: f64,
        http_ms: f64,
        coordinator_ms: f64,
        inproc_ms: f64,
        stats: OperationStats,
    }
    let mut rows = Vec::new();
    for &(t, n, reps) in sizes {
        progress(format!("dkg ({t},{n}): in-process, {reps} runs"));
        let mut inproc = Vec::new();
        for _ in 0..reps.max(3) {
            let start = Instant::now();
            let out = dkg_in_process(Curve::Ed25519, t, n)?;
            inproc.push(ms(start.elapsed()));
            assert_eq!(out.len(), usize::from(n));
        }

        progress(format!("dkg ({t},{n}): starting {n} nodes"));
        let start = Instant::now();
        // One HTTP worker per listener: a ceremony gives each node one request at a time, and
        // 21 nodes × 2 listeners × 2 workers would only add threads.
        let bench = Bench::start(usize::from(n), Some(1), true)?;
        let startup_ms = ms(start.elapsed());
        let client = bench.cluster.client(1);
        let mut http = Vec::new();
        let mut coordinator = Vec::new();
        let mut stats = Vec::new();
        let mut cold_ms = f64::NAN;
        for i in 0..=reps {
            progress(format!("dkg ({t},{n}): ceremony {i} of {reps} over HTTP"));
            let start = Instant::now();
            let info = rt.block_on(create_key(
                &client,
                &format!("dkg-{i}"),
                Algorithm::FrostEd25519,
                t,
            ))?;
            let elapsed = ms(start.elapsed());
            let s = info.ceremony.context("no ceremony stats in the answer")?;
            // The first ceremony also opens every connection; kept apart from the median.
            if i == 0 {
                cold_ms = elapsed;
                continue;
            }
            http.push(elapsed);
            coordinator.push(s.elapsed_ms);
            stats.push(s);
        }
        drop(bench);
        let last = *stats.last().context("no ceremony measured")?;
        rows.push(Row {
            t,
            n,
            reps,
            startup_ms,
            cold_ms,
            http_ms: median(&http),
            coordinator_ms: median(&coordinator),
            inproc_ms: median(&inproc),
            stats: OperationStats {
                peer_bytes: median(
                    &stats
                        .iter()
                        .map(|s| s.peer_bytes as f64)
                        .collect::<Vec<_>>(),
                ) as u64,
                ..last
            },
        });
    }

    println!("## 1. Key ceremony (DKG), frost-ed25519, `POST /v1/keys` (issue #2)\n");
    println!(
        "Wall time of the create call at the client, median of the repetitions after one cold \
         ceremony (which also opens the connections); in-process: the whole frost DKG with the \
         echo check for all n participants, one thread. Bytes: the coordinator's count of \
         request and answer bodies to and from its peers.\n"
    );
    println!(
        "| t-of-n | reps | HTTP median | coordinator's own | HTTP cold (1st) | in-process | \
         HTTP / in-process | rounds | peer requests | bytes / ceremony | bytes / participant |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {}-of-{} | {} | {} | {} | {} | {} | **{:.2}×** | {} | {} | {} | {} |",
            r.t,
            r.n,
            r.reps,
            fmt_ms(r.http_ms),
            fmt_ms(r.coordinator_ms),
            fmt_ms(r.cold_ms),
            fmt_ms(r.inproc_ms),
            r.http_ms / r.inproc_ms,
            r.stats.rounds,
            r.stats.peer_requests,
            fmt_bytes(r.stats.peer_bytes as f64),
            fmt_bytes(r.stats.peer_bytes as f64 / f64::from(r.n)),
        );
    }
    println!();
    if let Some(r) = rows.iter().find(|r| (r.t, r.n) == (11, 21)) {
        println!(
            "Goal: 11-of-21 within 3× in-process: {:.2}× → {}.\n",
            r.http_ms / r.inproc_ms,
            goal(r.http_ms / r.inproc_ms <= 3.0)
        );
    }
    let startups: Vec<String> = rows
        .iter()
        .map(|r| format!("{} nodes {}", r.n, fmt_ms(r.startup_ms)))
        .collect();
    println!(
        "Cluster start-up (not in the figures; Argon2 unseal + sled open per node): {}.\n",
        startups.join(", ")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Signing

#[derive(Default)]
struct Load {
    latencies_ms: Vec<f64>,
    /// When each answer arrived, seconds after the start: shows throughput drifting.
    done_at: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    rounds: u64,
    peer_requests: u64,
    peer_bytes: u64,
    /// One (message, signature) per task, checked after the run.
    samples: Vec<(Vec<u8>, String)>,
}

impl Load {
    fn ok(&self) -> usize {
        self.latencies_ms.len()
    }
    fn per_second(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64()
    }
    fn per_op(&self, total: u64) -> f64 {
        total as f64 / self.ok().max(1) as f64
    }
    /// Throughput of the second half of the run over that of the first.
    fn drift(&self) -> f64 {
        let half = self.elapsed.as_secs_f64() / 2.0;
        let first = self.done_at.iter().filter(|t| **t < half).count();
        (self.ok() - first) as f64 / first.max(1) as f64
    }
}

/// `concurrency` tasks, each signing one message after another for `duration`, request k of
/// task i going to node (i + k) mod n so that every node coordinates its share.
async fn sign_load(clients: &[Client], key: &str, concurrency: usize, duration: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let clients = clients.to_vec();
            let key = key.to_string();
            tokio::spawn(async move {
                let mut load = Load::default();
                let mut k = 0usize;
                while Instant::now() < deadline {
                    let message = format!("bench message {task}/{k}").into_bytes();
                    let client = &clients[(task + k) % clients.len()];
                    k += 1;
                    let sent = Instant::now();
                    match client.sign(&key, &message).await {
                        Ok(resp) => {
                            load.latencies_ms.push(ms(sent.elapsed()));
                            load.done_at.push(start.elapsed().as_secs_f64());
                            if let Some(s) = resp.stats {
                                load.rounds += u64::from(s.rounds);
                                load.peer_requests += s.peer_requests;
                                load.peer_bytes += s.peer_bytes;
                            }
                            if load.samples.is_empty() {
                                load.samples.push((message, resp.signature));
                            }
                        }
                        Err(e) => {
                            load.errors += 1;
                            load.first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                load
            })
        })
        .collect();
    let mut total = Load::default();
    for task in tasks {
        let l = task.await.expect("load task panicked");
        total.latencies_ms.extend(l.latencies_ms);
        total.done_at.extend(l.done_at);
        total.errors += l.errors;
        total.first_error = total.first_error.or(l.first_error);
        total.rounds += l.rounds;
        total.peer_requests += l.peer_requests;
        total.peer_bytes += l.peer_bytes;
        total.samples.extend(l.samples);
    }
    // Tasks finish their last request after the deadline; count up to the last answer.
    total.elapsed = start.elapsed();
    total
}

/// commit by t signers, signing package, t signature shares, aggregate (which verifies).
fn sign_in_process(keys: &[(KeyShare, PublicKeys)], t: usize, message: &[u8]) -> Vec<u8> {
    let mut nonces = Vec::with_capacity(t);
    let mut commitments = BTreeMap::new();
    for (share, _) in &keys[..t] {
        let (n, c) = sign::commit(share, &mut OsRng).expect("commit");
        nonces.push(n);
        commitments.insert(share.identifier(), c);
    }
    let package = sign::signing_package(Curve::Ed25519, &commitments, message).expect("package");
    let mut shares = BTreeMap::new();
    for ((share, _), n) in keys[..t].iter().zip(nonces) {
        shares.insert(
            share.identifier(),
            sign::sign(share, n, &package, |_| Ok::<(), ProtocolError>(())).expect("sign"),
        );
    }
    sign::aggregate(&keys[0].1, &package, &shares).expect("aggregate")
}

fn bench_sign(opts: &Options, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let warmup = opts.pick(Duration::from_millis(500), Duration::from_millis(200));
    let run_1 = opts.pick(Duration::from_secs(5), Duration::from_secs(1));
    let run_32 = opts.pick(Duration::from_secs(8), Duration::from_secs(1));
    let inproc_run = opts.pick(Duration::from_secs(2), Duration::from_millis(300));
    struct Row {
        t: u16,
        n: u16,
        inproc_per_s: f64,
        inproc_ms: f64,
        loads: Vec<(usize, Load)>,
    }
    let mut rows = Vec::new();
    for (t, n) in [(2u16, 3u16), (3, 5)] {
        progress(format!("sign {t}-of-{n}: in-process"));
        let keys = dkg_in_process(Curve::Ed25519, t, n)?;
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed() < inproc_run {
            let message = format!("in-process {}", times.len()).into_bytes();
            let s = Instant::now();
            let sig = sign_in_process(&keys, usize::from(t), &message);
            times.push(ms(s.elapsed()));
            debug_assert_eq!(sig.len(), 64);
        }
        let inproc_per_s = times.len() as f64 / start.elapsed().as_secs_f64();

        progress(format!("sign {t}-of-{n}: starting {n} nodes"));
        // Default node settings: this is the configuration a deployment runs.
        let bench = Bench::start(usize::from(n), None, false)?;
        let clients = bench.clients();
        let info = rt.block_on(create_key(&clients[0], "sign", Algorithm::FrostEd25519, t))?;
        let group_key = hex::decode(&info.group_verifying_key)?;
        let mut loads = Vec::new();
        for (concurrency, run) in [(1usize, run_1), (32, run_32)] {
            progress(format!(
                "sign {t}-of-{n}: concurrency {concurrency}, {} s",
                run.as_secs_f64()
            ));
            rt.block_on(sign_load(&clients, "sign", concurrency, warmup));
            let load = rt.block_on(sign_load(&clients, "sign", concurrency, run));
            for (message, signature) in &load.samples {
                let sig = hex::decode(signature)?;
                if !sign::verify(Curve::Ed25519, &group_key, message, &sig) {
                    bail!("the cluster returned an invalid signature");
                }
            }
            if load.ok() == 0 {
                bail!(
                    "no signature at concurrency {concurrency}: {}",
                    load.first_error.as_deref().unwrap_or("?")
                );
            }
            loads.push((concurrency, load));
        }
        drop(bench);
        rows.push(Row {
            t,
            n,
            inproc_per_s,
            inproc_ms: median(&times),
            loads,
        });
    }

    println!("## 2. Signing, frost-ed25519, `POST /v1/keys/{{name}}/sign` (issue #3)\n");
    println!(
        "Closed loop: each of `c` client tasks sends one single-message sign request after \
         another, spread round-robin over the nodes (each node coordinates in turn), for a fixed \
         time after a short warm-up. Latency is the client's. In-process: commit by t shares, \
         signing package, t signature shares, aggregate with its verification; sequential, one \
         thread.\n"
    );
    println!(
        "| cluster | c | duration | signatures | signatures/s | 2nd half / 1st half | p50 | p99 \
         | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        for (c, l) in &r.loads {
            println!(
                "| {}-of-{} | {c} | {:.1} s | {} | {} | {:.2} | {} | {} | {} |",
                r.t,
                r.n,
                l.elapsed.as_secs_f64(),
                l.ok(),
                fmt_rate(l.per_second()),
                l.drift(),
                fmt_ms(percentile(&l.latencies_ms, 50.0)),
                fmt_ms(percentile(&l.latencies_ms, 99.0)),
                l.errors,
            );
        }
    }
    println!();
    println!(
        "| cluster | in-process sig/s | in-process per sig | HTTP sig/s @32 | @32 / in-process \
         (goal ≥ 0.5) | HTTP p50 @1 | p50@1 / in-process (goal ≤ 3) | rounds / sig | peer \
         requests / sig | peer bytes / sig |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let at = |c: usize| &r.loads.iter().find(|(x, _)| *x == c).expect("load").1;
        let (l1, l32) = (at(1), at(32));
        let throughput = l32.per_second() / r.inproc_per_s;
        let latency = percentile(&l1.latencies_ms, 50.0) / r.inproc_ms;
        println!(
            "| {}-of-{} | {} | {} | {} | {:.2} ({}) | {} | {:.2}× ({}) | {:.1} | {:.1} | {} |",
            r.t,
            r.n,
            fmt_rate(r.inproc_per_s),
            fmt_ms(r.inproc_ms),
            fmt_rate(l32.per_second()),
            throughput,
            goal(throughput >= 0.5),
            fmt_ms(percentile(&l1.latencies_ms, 50.0)),
            latency,
            goal(latency <= 3.0),
            l32.per_op(l32.rounds),
            l32.per_op(l32.peer_requests),
            fmt_bytes(l32.per_op(l32.peer_bytes)),
        );
    }
    println!();
    println!(
        "Rounds, requests and bytes are the coordinator's `stats` at c = 32. It counts answered \
         requests to other nodes only: round 1 asks all n signers, and the n − t commitments \
         it stops waiting for (and its calls to itself) are not in the figures.\n"
    );
    for r in &rows {
        if let Some(e) = r.loads.iter().find_map(|(_, l)| l.first_error.as_ref()) {
            println!("First error seen for {}-of-{}: `{e}`\n", r.t, r.n);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Decryption

fn records(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            format!(
                "record {i:05}: plate KQ-{:04}; box 120,44,310,96",
                i * 7 % 10_000
            )
            .into_bytes()
        })
        .collect()
}

/// Encrypts every record to `group_key` as a standard encryptor would.
fn encrypt_all(
    scheme: Scheme,
    group_key: &[u8],
    plain: &[Vec<u8>],
) -> anyhow::Result<Vec<Ciphertext>> {
    plain
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // HPKE records bound to their frame like a real producer would; eciespy has no AAD.
            let (info, aad) = match scheme {
                Scheme::HpkeX25519 => (
                    b"keyquorum bench".to_vec(),
                    format!("frame {i}").into_bytes(),
                ),
                Scheme::EciesSecp256k1 => (Vec::new(), Vec::new()),
            };
            Ok(encrypt(
                scheme,
                group_key,
                p,
                &info,
                &aad,
                HpkeAead::Aes128Gcm,
                &mut OsRng,
            )?)
        })
        .collect()
}

/// Seconds spent in each step of the in-process threshold decryption of a batch.
#[derive(Default, Clone, Copy)]
struct Steps {
    partial: f64,
    verify: f64,
    combine: f64,
}

impl Steps {
    fn total(&self) -> f64 {
        self.partial + self.verify + self.combine
    }
}

/// What the service does per record, sequentially: t partials, each verified, then combine.
fn threshold_in_process(
    scheme: Scheme,
    keys: &[(KeyShare, PublicKeys)],
    t: usize,
    cts: &[Ciphertext],
) -> anyhow::Result<Steps> {
    let shares: Vec<(u16, ShareScalar)> = keys[..t]
        .iter()
        .map(|(k, _)| {
            let s = match k {
                KeyShare::Ed25519(kp) => ShareScalar::from_ed25519(kp),
                KeyShare::Secp256k1(kp) => ShareScalar::from_secp256k1(kp),
            };
            (k.identifier(), s)
        })
        .collect();
    let public = &keys[0].1;
    let verifying = public.verifying_shares();
    let group = public.group_key();
    let mut steps = Steps::default();
    for ct in cts {
        let e = ct.ephemeral()?;
        let mut partials = BTreeMap::new();
        for (id, share) in &shares {
            let start = Instant::now();
            let p = partial_decrypt(scheme, share, e, &mut OsRng)?;
            let computed = Instant::now();
            verify_partial(scheme, &verifying[id], e, &p)?;
            steps.partial += (computed - start).as_secs_f64();
            steps.verify += computed.elapsed().as_secs_f64();
            partials.insert(*id, p);
        }
        let start = Instant::now();
        combine_and_open(&group, &partials, ct)?;
        steps.combine += start.elapsed().as_secs_f64();
    }
    Ok(steps)
}

/// Opens `count` records with an ordinary single private key: the non-threshold baseline.
fn single_key_per_s(scheme: Scheme, plain: &[Vec<u8>], reps: usize) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    match scheme {
        Scheme::HpkeX25519 => {
            use hpke::aead::AesGcm128;
            use hpke::kdf::HkdfSha256;
            use hpke::kem::X25519HkdfSha256;
            use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
            let (sk, pk) = X25519HkdfSha256::gen_keypair(&mut OsRng);
            let sealed: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = plain
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let aad = format!("frame {i}").into_bytes();
                    let (enc, ct) = hpke::single_shot_seal::<
                        AesGcm128,
                        HkdfSha256,
                        X25519HkdfSha256,
                        _,
                    >(
                        &OpModeS::Base, &pk, b"keyquorum bench", p, &aad, &mut OsRng
                    )
                    .map_err(|e| anyhow::anyhow!("hpke seal: {e}"))?;
                    Ok((enc.to_bytes().to_vec(), ct, aad))
                })
                .collect::<anyhow::Result<_>>()?;
            for _ in 0..reps {
                let start = Instant::now();
                for (enc, ct, aad) in &sealed {
                    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc)
                        .map_err(|e| anyhow::anyhow!("enc: {e}"))?;
                    hpke::single_shot_open::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
                        &OpModeR::Base,
                        &sk,
                        &enc,
                        b"keyquorum bench",
                        ct,
                        aad,
                    )
                    .map_err(|e| anyhow::anyhow!("hpke open: {e}"))?;
                }
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Scheme::EciesSecp256k1 => {
            let (sk, pk) = ecies::utils::generate_keypair();
            let (sk, pk) = (sk.serialize(), pk.serialize());
            let blobs: Vec<Vec<u8>> = plain
                .iter()
                .map(|p| ecies::encrypt(&pk, p).map_err(|e| anyhow::anyhow!("ecies: {e}")))
                .collect::<anyhow::Result<_>>()?;
            for _ in 0..reps {
                let start = Instant::now();
                for b in &blobs {
                    ecies::decrypt(&sk, b).map_err(|e| anyhow::anyhow!("ecies: {e}"))?;
                }
                times.push(start.elapsed().as_secs_f64());
            }
        }
    }
    Ok(plain.len() as f64 / median(&times))
}

fn bench_decrypt(opts: &Options, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let count = opts.pick(1_000, 200);
    let http_reps = opts.pick(5, 1);
    let inproc_reps = opts.pick(3, 1);
    let (t, n) = (3u16, 5u16);
    let plain = records(count);

    progress(format!("decrypt {t}-of-{n}: starting {n} nodes"));
    let bench = Bench::start(usize::from(n), None, false)?;
    let client = bench.cluster.client(1);
    struct Row {
        scheme: Scheme,
        http_s: f64,
        coordinator_s: f64,
        stats: OperationStats,
        inproc_per_s: f64,
        steps: Steps,
        single_per_s: f64,
    }
    let mut rows = Vec::new();
    for (scheme, algorithm, curve) in [
        (Scheme::HpkeX25519, Algorithm::HpkeX25519, Curve::Ed25519),
        (
            Scheme::EciesSecp256k1,
            Algorithm::EciesSecp256k1,
            Curve::Secp256k1,
        ),
    ] {
        progress(format!(
            "decrypt {scheme}: in-process threshold and single key"
        ));
        let keys = dkg_in_process(curve, t, n)?;
        let cts = encrypt_all(scheme, &keys[0].1.group_key(), &plain)?;
        let mut runs = Vec::new();
        for _ in 0..inproc_reps {
            runs.push(threshold_in_process(scheme, &keys, usize::from(t), &cts)?);
        }
        runs.sort_by(|a, b| a.total().total_cmp(&b.total()));
        let steps = runs[runs.len() / 2];
        let inproc_per_s = count as f64 / steps.total();
        let single_per_s = single_key_per_s(scheme, &plain, inproc_reps)?;

        progress(format!(
            "decrypt {scheme}: {http_reps} batches of {count} over HTTP"
        ));
        let name = format!("decrypt-{scheme}");
        let info = rt.block_on(create_key(&client, &name, algorithm, t))?;
        let group = hex::decode(&info.group_verifying_key)?;
        let request = DecryptRequest {
            ciphertexts: encrypt_all(scheme, &group, &plain)?
                .iter()
                .map(ciphertext_item)
                .collect(),
        };
        let mut times = Vec::new();
        let mut coordinator = Vec::new();
        let mut stats = None;
        // One warm-up batch, then the measured ones.
        for i in 0..=http_reps {
            let start = Instant::now();
            let resp = rt.block_on(client.decrypt(&name, &request))?;
            let elapsed = start.elapsed().as_secs_f64();
            for (result, expected) in resp.results.iter().zip(&plain) {
                let got = result
                    .plaintext
                    .as_deref()
                    .with_context(|| format!("record failed: {:?}", result.error))?;
                if api::client::unb64(got).map_err(anyhow::Error::msg)? != *expected {
                    bail!("a record decrypted to the wrong plaintext");
                }
            }
            if i > 0 {
                times.push(elapsed);
                coordinator.extend(resp.stats.map(|s| s.elapsed_ms / 1e3));
                stats = resp.stats;
            }
        }
        rows.push(Row {
            scheme,
            http_s: median(&times),
            coordinator_s: median(&coordinator),
            stats: stats.context("no stats in the decrypt answer")?,
            inproc_per_s,
            steps,
            single_per_s,
        });
    }
    drop(bench);

    println!("## 3. Batch decryption, 3-of-5, `POST /v1/keys/{{name}}/decrypt` (issue #4)\n");
    println!(
        "One request carrying {count} records (~45-byte plaintexts, encrypted locally to the \
         key's group key), median of {http_reps} after a warm-up batch. In-process threshold: \
         per record 3 partials, each proof verified, then combine and open; sequential, one \
         thread. Single key: the `hpke` / `ecies` crate opening with an ordinary private key.\n"
    );
    println!(
        "| scheme | batch time | HTTP records/s | in-process threshold rec/s | single-key rec/s | \
         HTTP / in-process threshold (goal ≥ 0.5) | HTTP / single key | ≥ 1,000 rec/s | rounds | \
         peer bytes / batch | peer bytes / record |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let per_s = count as f64 / r.http_s;
        let ratio = per_s / r.inproc_per_s;
        println!(
            "| {} | {} | {} | {} | {} | {:.2} ({}) | {:.3} | {} | {} | {} | {} |",
            r.scheme,
            fmt_ms(r.http_s * 1e3),
            fmt_rate(per_s),
            fmt_rate(r.inproc_per_s),
            fmt_rate(r.single_per_s),
            ratio,
            goal(ratio >= 0.5),
            per_s / r.single_per_s,
            goal(per_s >= 1_000.0),
            r.stats.rounds,
            fmt_bytes(r.stats.peer_bytes as f64),
            fmt_bytes(r.stats.peer_bytes as f64 / count as f64),
        );
    }
    println!();
    println!(
        "Where the time goes, per record: in-process steps (3 partials, 3 proof checks, one \
         combine-and-open) and, for the HTTP batch, the coordinator's own time against the \
         client's.\n"
    );
    println!(
        "| scheme | 3 partials | 3 verifications | combine + open | in-process total | HTTP, \
         coordinator's own | HTTP, at the client |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let us = |s: f64| format!("{:.0} µs", s * 1e6 / count as f64);
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.scheme,
            us(r.steps.partial),
            us(r.steps.verify),
            us(r.steps.combine),
            us(r.steps.total()),
            us(r.coordinator_s),
            us(r.http_s),
        );
    }
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    // Two client threads: the load generator shares the machine with every node.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    print_header(&opts);
    if opts.dkg {
        bench_dkg(&opts, &rt)?;
    }
    if opts.sign {
        bench_sign(&opts, &rt)?;
    }
    if opts.decrypt {
        bench_decrypt(&opts, &rt)?;
    }
    println!(
        "_Report produced in {:.0} s._",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
