//! report.json: the figures of one run, machine-readable. `schema` names this layout; a
//! change that breaks readers bumps it.

use serde::{Deserialize, Serialize};

use super::baseline::Baseline;
use super::cluster::Measured;
use super::machine::{Commit, Machine};
use super::options::{Op, Options, Plan};
use super::stats::{mean, median, percentile};

pub const SCHEMA: &str = "keyquorum-bench/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub duration_s: f64,
    pub machine: Machine,
    /// 1, 5 and 15 minute load averages right after the run (`machine` has those before).
    pub load_average_after: Option<[f64; 3]>,
    pub commit: Commit,
    /// The command line that produced the report.
    pub command: String,
    pub options: OptionsRecord,
    pub clusters: Vec<ClusterRecord>,
    pub rows: Vec<Row>,
    pub baselines: Vec<Baseline>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptionsRecord {
    pub nodes: Vec<u16>,
    pub ops: Vec<String>,
    pub threshold_rule: String,
    pub concurrency: usize,
    pub iterations: Option<usize>,
    pub batch: Option<usize>,
    pub quick: bool,
    /// Simulated network distance per peer round trip, milliseconds.
    #[serde(default)]
    pub rtt_ms: u64,
}

impl OptionsRecord {
    pub fn of(opts: &Options) -> OptionsRecord {
        OptionsRecord {
            nodes: opts.sizes.iter().map(|(_, n)| *n).collect(),
            ops: opts.ops.iter().map(|op| op.label()).collect(),
            threshold_rule: opts.threshold.to_string(),
            concurrency: opts.concurrency,
            iterations: opts.iterations,
            batch: opts.batch,
            quick: opts.quick,
            rtt_ms: opts.rtt_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub n: u16,
    /// Configuration written and every node started (Argon2 unseal, sled open, bind).
    pub startup_ms: f64,
}

/// The security threshold of a t-of-n key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// t − 1: nodes that can be compromised without the key leaking.
    pub compromised_tolerated: u16,
    /// n − t: nodes that can be lost with the key still usable.
    pub lost_tolerated: u16,
}

impl Security {
    pub fn of(t: u16, n: u16) -> Security {
        Security {
            compromised_tolerated: t - 1,
            lost_tolerated: n - t,
        }
    }
}

/// Requests one after another, all coordinated by node 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// Client tasks in a closed loop, requests spread round-robin over the nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub concurrency: usize,
    pub requests: usize,
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Peer-protocol body bytes as a node counted its own traffic, mean per request.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct NodeBytes {
    pub sent: f64,
    pub received: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeBytesById {
    pub node: u16,
    pub sent: f64,
    pub received: f64,
}

/// Bytes written to disk per item, summed over every node (DESIGN.md §8: the trail shares
/// the disk with the shares).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Disk {
    /// The audit trail's entries as stored.
    pub audit_bytes_per_item: f64,
    /// Growth of the stores' size on disk (sled's log and pages: it grows in steps, so few
    /// requests may show 0 or a whole step).
    pub store_bytes_per_item: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bytes {
    /// Everything between nodes for one request: the sum of what every node sent.
    pub total_per_request: f64,
    pub total_per_item: f64,
    /// `peer_bytes` of the API's `stats`: the coordinator's count of answered exchanges only,
    /// without requests it stopped waiting for (signing round 1 asks all n, uses t).
    pub coordinator_stats_per_request: f64,
    /// Node 1, which coordinated every sequential request.
    pub coordinator: NodeBytes,
    /// Mean over the other nodes.
    pub other_node_mean: NodeBytes,
    /// The other node that sent the most.
    pub other_node_max: NodeBytes,
    pub per_node: Vec<NodeBytesById>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratios {
    /// Cluster p50 per item over the in-process time per item.
    pub latency_vs_in_process: f64,
    /// Cluster p50 per item over the single-key time per item.
    pub latency_vs_single_key: f64,
    /// Cluster CPU per item over the in-process time per item (one thread, so CPU time).
    pub cpu_vs_in_process: Option<f64>,
    pub cpu_vs_single_key: Option<f64>,
    /// Cluster items/s at the chosen concurrency over sequential in-process items/s.
    pub throughput_vs_in_process: f64,
}

/// One (operation, t, n).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub operation: String,
    pub algorithm: String,
    /// What "per item" counts: ceremony, signature or record.
    pub unit: String,
    pub t: u16,
    pub n: u16,
    pub security: Security,
    pub items_per_request: usize,
    pub latency: Latency,
    pub throughput: Throughput,
    /// Failed requests in both phases (not in the figures).
    pub errors: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Peer round trips per request (median).
    pub rounds: u32,
    pub peer_requests_per_request: f64,
    pub bytes: Bytes,
    /// What the sequential requests wrote to the nodes' stores, all nodes, per item.
    #[serde(default)]
    pub disk: Disk,
    /// CPU time of the nodes (every thread of the process but the load generator's) per item
    /// in the throughput phase.
    pub cpu_ms_per_item: Option<f64>,
    /// The load generator's CPU time per item in the same phase (client request signing,
    /// HTTP client), left out of `cpu_ms_per_item`.
    #[serde(default)]
    pub load_generator_cpu_ms_per_item: Option<f64>,
    pub in_process_ms_per_item: f64,
    pub single_key_ms_per_item: f64,
    pub ratios: Ratios,
}

/// Each node's own counts over the sequential requests, per request.
fn node_bytes(m: &Measured) -> Vec<NodeBytesById> {
    let requests = (m.sequential.done.len() + m.sequential.errors).max(1) as f64;
    m.wire
        .iter()
        .map(|w| NodeBytesById {
            node: w.node,
            sent: w.sent as f64 / requests,
            received: w.received as f64 / requests,
        })
        .collect()
}

impl Row {
    pub fn build(
        op: Op,
        (t, n): (u16, u16),
        plan: &Plan,
        m: &Measured,
        in_process_ms_per_item: f64,
        single: &Baseline,
    ) -> Row {
        let seq = &m.sequential;
        let conc = &m.concurrent;
        let lat: Vec<f64> = seq.done.iter().map(|d| d.latency_ms).collect();
        let conc_lat: Vec<f64> = conc.done.iter().map(|d| d.latency_ms).collect();
        let batch = plan.batch.max(1);
        let items = conc.done.len() * batch;
        let seconds = conc.elapsed.as_secs_f64();
        let items_per_s = items as f64 / seconds;

        let per_node = node_bytes(m);
        let coordinator = per_node
            .iter()
            .find(|b| b.node == 1)
            .map(|b| NodeBytes {
                sent: b.sent,
                received: b.received,
            })
            .unwrap_or_default();
        let others: Vec<&NodeBytesById> = per_node.iter().filter(|b| b.node != 1).collect();
        let other_node_mean = NodeBytes {
            sent: mean(&others.iter().map(|b| b.sent).collect::<Vec<_>>()),
            received: mean(&others.iter().map(|b| b.received).collect::<Vec<_>>()),
        };
        let other_node_max = others
            .iter()
            .max_by(|a, b| a.sent.total_cmp(&b.sent))
            .map(|b| NodeBytes {
                sent: b.sent,
                received: b.received,
            })
            .unwrap_or_default();
        // Every byte one node sends another receives: the total is what all nodes sent.
        let total_per_request: f64 = per_node.iter().map(|b| b.sent).sum();
        let seq_items = (seq.done.len() + seq.errors).max(1) as f64 * batch as f64;
        let disk = Disk {
            audit_bytes_per_item: m.wire.iter().map(|w| w.audit_bytes as f64).sum::<f64>()
                / seq_items,
            store_bytes_per_item: m.wire.iter().map(|w| w.store_bytes as f64).sum::<f64>()
                / seq_items,
        };

        let rounds: Vec<f64> = seq.done.iter().map(|d| f64::from(d.stats.rounds)).collect();
        let coordinator_counted: Vec<f64> =
            seq.done.iter().map(|d| d.stats.peer_bytes as f64).collect();
        let peer_requests: Vec<f64> = seq
            .done
            .iter()
            .map(|d| d.stats.peer_requests as f64)
            .collect();
        let per_item = |cpu: Option<std::time::Duration>| {
            cpu.filter(|_| items > 0)
                .map(|c| c.as_secs_f64() * 1e3 / items as f64)
        };
        let cpu_ms_per_item = per_item(conc.cpu.nodes);
        let load_generator_cpu_ms_per_item = per_item(conc.cpu.load_generator);
        let p50 = percentile(&lat, 50.0);
        let p50_per_item = p50 / batch as f64;
        let single_ms = single.ms_per_op;
        Row {
            operation: op.name().into(),
            algorithm: op.algorithm().to_string(),
            unit: op.unit().into(),
            t,
            n,
            security: Security::of(t, n),
            items_per_request: batch,
            latency: Latency {
                samples: lat.len(),
                p50_ms: p50,
                p99_ms: percentile(&lat, 99.0),
                mean_ms: mean(&lat),
            },
            throughput: Throughput {
                concurrency: plan.concurrency,
                requests: conc.done.len(),
                items,
                seconds,
                items_per_s,
                p50_ms: percentile(&conc_lat, 50.0),
                p99_ms: percentile(&conc_lat, 99.0),
            },
            errors: seq.errors + conc.errors,
            first_error: seq.first_error.clone().or(conc.first_error.clone()),
            rounds: median(&rounds) as u32,
            peer_requests_per_request: mean(&peer_requests),
            disk,
            bytes: Bytes {
                total_per_request,
                total_per_item: total_per_request / batch as f64,
                coordinator_stats_per_request: mean(&coordinator_counted),
                coordinator,
                other_node_mean,
                other_node_max,
                per_node,
            },
            cpu_ms_per_item,
            load_generator_cpu_ms_per_item,
            in_process_ms_per_item,
            single_key_ms_per_item: single_ms,
            ratios: Ratios {
                latency_vs_in_process: p50_per_item / in_process_ms_per_item,
                latency_vs_single_key: p50_per_item / single_ms,
                cpu_vs_in_process: cpu_ms_per_item.map(|c| c / in_process_ms_per_item),
                cpu_vs_single_key: cpu_ms_per_item.map(|c| c / single_ms),
                throughput_vs_in_process: items_per_s * in_process_ms_per_item / 1e3,
            },
        }
    }

    pub fn label(&self) -> String {
        if self.operation.starts_with("decrypt") {
            format!("{} {}", self.operation, self.algorithm)
        } else {
            self.operation.clone()
        }
    }
}
