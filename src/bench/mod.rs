//! `keyquorum bench`: the cost report (issue #7). Starts loopback clusters of each size,
//! measures every operation over HTTP next to the same cryptography in-process and the plain
//! single-key equivalent, all in the same run, and writes report.md, report.json and charts.

pub mod baseline;
pub mod chart;
pub mod cluster;
pub mod inprocess;
pub mod load;
pub mod machine;
pub mod markdown;
pub mod options;
pub mod report;
pub mod soak;
pub mod stats;

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use keyshares::decrypt::Scheme;

pub use options::{BenchArgs, Op, Options};
use report::{ClusterRecord, OptionsRecord, Report, Row};

/// Why a run produced no report.
#[derive(Debug)]
pub enum BenchError {
    /// The options or the output directory: exit code 2.
    Usage(String),
    /// A measurement failed: exit code 3.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for BenchError {
    fn from(e: anyhow::Error) -> Self {
        BenchError::Failed(e)
    }
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

/// The in-process figure of `op` in milliseconds per item.
fn in_process_ms(op: Op, t: u16, n: u16, plan: &options::Plan) -> anyhow::Result<f64> {
    let samples = plan.in_process_samples;
    match op {
        Op::Dkg => inprocess::dkg_ms(t, n, samples),
        Op::Refresh => inprocess::refresh_ms(t, n, samples),
        Op::Sign => inprocess::sign_ms(t, n, samples),
        Op::DecryptHpke | Op::DecryptHpkeE2e => {
            inprocess::decrypt_ms(Scheme::HpkeX25519, t, n, plan.batch, samples)
        }
        Op::DecryptEcies | Op::DecryptEciesE2e => {
            inprocess::decrypt_ms(Scheme::EciesSecp256k1, t, n, plan.batch, samples)
        }
    }
}

/// Measures everything `opts` asks for and writes the report into `opts.out`. `command` is
/// the command line, for the report.
pub fn run(opts: &Options, command: String) -> Result<Report, BenchError> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| BenchError::Usage(format!("cannot create {}: {e}", opts.out.display())))?;
    let started = Instant::now();
    let machine = machine::Machine::detect();
    let commit = machine::Commit::detect();
    progress(format!("{} at {}", machine.summary(), commit.short()));
    // Two client threads: the load generator shares the machine with every node.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(|| stats::LOAD_GENERATOR.enter())
        .on_thread_stop(|| stats::LOAD_GENERATOR.leave())
        .enable_all()
        .build()
        .context("starting the client runtime")?;

    let (batches, per_batch) = if opts.quick { (3, 20) } else { (15, 200) };
    let mut baselines = Vec::new();
    for &op in &opts.ops {
        progress(format!("single key: {}", op.label()));
        baselines.push(baseline::measure(op, batches, per_batch)?);
    }

    let mut rows = Vec::new();
    let mut clusters = Vec::new();
    for &(t, n) in &opts.sizes {
        progress(format!("{n} nodes (t = {t}): starting"));
        let bench = cluster::BenchCluster::start(n, opts.rtt_ms)?;
        clusters.push(ClusterRecord {
            n,
            startup_ms: bench.startup_ms,
        });
        for (&op, single) in opts.ops.iter().zip(&baselines) {
            let plan = opts.plan(op, n);
            progress(format!("{} {t}-of-{n}: in-process", op.label()));
            let inproc = in_process_ms(op, t, n, &plan)?;
            progress(format!(
                "{} {t}-of-{n}: {} sequential, then {} at concurrency {}",
                op.label(),
                plan.samples,
                plan.throughput_requests,
                plan.concurrency
            ));
            let measured = cluster::measure(&rt, &bench, op, t, &plan)?;
            rows.push(Row::build(op, (t, n), &plan, &measured, inproc, single));
        }
    }
    // Operation by operation, in the order of `--ops`, each by growing n.
    let rank = |r: &Row| opts.ops.iter().position(|op| op.label() == r.label());
    rows.sort_by_key(|r| (rank(r), r.n));

    let report = Report {
        schema: report::SCHEMA.into(),
        generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        duration_s: started.elapsed().as_secs_f64(),
        machine,
        load_average_after: machine::load_average(),
        commit,
        command,
        options: OptionsRecord::of(opts),
        clusters,
        rows,
        baselines,
    };
    write(&opts.out, &report)?;
    Ok(report)
}

fn series(report: &Report, y: impl Fn(&Row) -> f64) -> Vec<chart::Series> {
    let mut labels: Vec<String> = report.rows.iter().map(Row::label).collect();
    labels.dedup();
    labels
        .into_iter()
        .map(|label| {
            let rows: Vec<&Row> = report.rows.iter().filter(|r| r.label() == label).collect();
            let label = match rows.first() {
                Some(r) if r.items_per_request > 1 => {
                    format!("{label} ({} {}s)", r.items_per_request, r.unit)
                }
                _ => label,
            };
            chart::Series {
                label,
                points: rows.iter().map(|r| (f64::from(r.n), y(r))).collect(),
            }
        })
        .collect()
}

fn write(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let save = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    save("report.json", &serde_json::to_string_pretty(report)?)?;
    save("report.md", &markdown::render(report))?;
    let latency = chart::Chart {
        title: "Latency per request (p50, sequential) against cluster size",
        x_label: "nodes (n); t = threshold rule",
        y_label: "milliseconds (log scale)",
        y_format: chart::format_ms,
        series: series(report, |r| r.latency.p50_ms),
    };
    save("latency.svg", &latency.to_svg())?;
    let bytes = chart::Chart {
        title: "Bytes between nodes per item against cluster size",
        x_label: "nodes (n); t = threshold rule",
        y_label: "bytes, all nodes (log scale)",
        y_format: chart::format_bytes,
        series: series(report, |r| r.bytes.total_per_item),
    };
    save("bytes.svg", &bytes.to_svg())?;
    Ok(())
}
