//! `keyquorum bench` options: what to measure, how often, and where the report goes.

use std::path::PathBuf;

use clap::Args;

/// Cluster sizes `LocalCluster` can start (`cluster::init`).
const NODES: std::ops::RangeInclusive<u16> = 2..=64;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Cluster sizes, comma-separated (2 to 64 nodes each).
    #[arg(long, value_delimiter = ',', default_value = "3,5,9,21", value_parser = parse_nodes)]
    pub nodes: Vec<u16>,
    /// Operations, comma-separated: dkg, sign, decrypt (HPKE and ECIES, the node combines),
    /// decrypt-hpke, decrypt-ecies, decrypt-e2e (both schemes, the client combines), refresh
    /// (new shares of one key, same public key).
    #[arg(long, value_delimiter = ',', default_value = "dkg,sign,decrypt", value_parser = parse_op)]
    pub ops: Vec<OpChoice>,
    /// Directory for report.md, report.json and the charts; created if absent.
    #[arg(long, default_value = "keyquorum-bench")]
    pub out: PathBuf,
    /// The threshold t for each n: "majority" (⌊n/2⌋+1), "all" (t = n), a number, or "n-K".
    #[arg(long, default_value = "majority", value_parser = parse_threshold)]
    pub threshold: ThresholdRule,
    /// Client requests in flight while throughput and CPU time are measured.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Sequential requests measured per (operation, n); by default fewer for larger n.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub iterations: Option<u32>,
    /// Records per decryption request.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: Option<u32>,
    /// Smoke run: a handful of requests per figure. Proves the command works; the numbers
    /// are rough.
    #[arg(long)]
    pub quick: bool,
    /// Network distance to simulate: every peer request waits this many milliseconds before
    /// its node handles it, so each peer round trip costs at least that much (0: loopback).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub rtt_ms: u64,
    /// Soak instead: sustained sign + decrypt load for SECONDS against a cluster of separate
    /// node processes (the smallest --nodes size), sampling each node's resident memory and
    /// store size; writes soak.md, soak.json and soak.svg into --out.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub soak: Option<u64>,
}

/// An operation as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpChoice {
    Dkg,
    Sign,
    Decrypt,
    DecryptHpke,
    DecryptEcies,
    /// Both schemes end to end: the client opens, checks and combines (DESIGN.md §6).
    DecryptE2e,
    Refresh,
}

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Dkg,
    Sign,
    DecryptHpke,
    DecryptEcies,
    /// End-to-end decryption: the typed client combines, the node relays sealed partials.
    DecryptHpkeE2e,
    DecryptEciesE2e,
    Refresh,
}

impl Op {
    /// Any decryption, in either mode.
    pub fn is_decrypt(self) -> bool {
        matches!(
            self,
            Op::DecryptHpke | Op::DecryptEcies | Op::DecryptHpkeE2e | Op::DecryptEciesE2e
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Dkg => "dkg",
            Op::Sign => "sign",
            Op::DecryptHpke | Op::DecryptEcies => "decrypt",
            Op::DecryptHpkeE2e | Op::DecryptEciesE2e => "decrypt-e2e",
            Op::Refresh => "refresh",
        }
    }

    pub fn algorithm(self) -> api::Algorithm {
        match self {
            Op::Dkg | Op::Sign | Op::Refresh => api::Algorithm::FrostEd25519,
            Op::DecryptHpke | Op::DecryptHpkeE2e => api::Algorithm::HpkeX25519,
            Op::DecryptEcies | Op::DecryptEciesE2e => api::Algorithm::EciesSecp256k1,
        }
    }

    /// What one item of the operation is: the figures "per op" are per item.
    pub fn unit(self) -> &'static str {
        match self {
            Op::Dkg | Op::Refresh => "ceremony",
            Op::Sign => "signature",
            _ => "record",
        }
    }

    /// `dkg`, `sign`, `decrypt hpke-x25519`: the label of charts and tables.
    pub fn label(self) -> String {
        match self {
            Op::Dkg | Op::Sign | Op::Refresh => self.name().to_string(),
            _ => format!("{} {}", self.name(), self.algorithm()),
        }
    }
}

fn parse_op(s: &str) -> Result<OpChoice, String> {
    Ok(match s.trim() {
        "dkg" => OpChoice::Dkg,
        "sign" => OpChoice::Sign,
        "decrypt" => OpChoice::Decrypt,
        "decrypt-hpke" => OpChoice::DecryptHpke,
        "decrypt-ecies" => OpChoice::DecryptEcies,
        "decrypt-e2e" => OpChoice::DecryptE2e,
        "refresh" => OpChoice::Refresh,
        other => {
            return Err(format!(
                "unknown operation {other:?}; expected dkg, sign, decrypt, decrypt-hpke, \
                 decrypt-ecies, decrypt-e2e or refresh"
            ))
        }
    })
}

fn parse_nodes(s: &str) -> Result<u16, String> {
    let n: u16 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of nodes"))?;
    if NODES.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "a cluster has {} to {} nodes, not {n}",
            NODES.start(),
            NODES.end()
        ))
    }
}

/// How t follows from n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdRule {
    /// ⌊n/2⌋ + 1.
    Majority,
    /// t = n.
    All,
    Fixed(u16),
    /// t = n − K.
    NMinus(u16),
}

impl ThresholdRule {
    /// t for `n` nodes; an error when the rule gives no valid threshold (2 ≤ t ≤ n).
    pub fn threshold(self, n: u16) -> Result<u16, String> {
        let t = match self {
            ThresholdRule::Majority => n / 2 + 1,
            ThresholdRule::All => n,
            ThresholdRule::Fixed(t) => t,
            ThresholdRule::NMinus(k) => n.saturating_sub(k),
        };
        if (2..=n).contains(&t) {
            Ok(t)
        } else {
            Err(format!(
                "--threshold {self} gives t = {t} for n = {n}; a key needs 2 ≤ t ≤ n"
            ))
        }
    }
}

impl std::fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdRule::Majority => f.write_str("majority"),
            ThresholdRule::All => f.write_str("all"),
            ThresholdRule::Fixed(t) => write!(f, "{t}"),
            ThresholdRule::NMinus(k) => write!(f, "n-{k}"),
        }
    }
}

fn parse_threshold(s: &str) -> Result<ThresholdRule, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a threshold rule: use majority, all, a number, or n-K");
    match s {
        "majority" => Ok(ThresholdRule::Majority),
        "all" => Ok(ThresholdRule::All),
        _ => match s.strip_prefix("n-") {
            Some(k) => k.parse().map(ThresholdRule::NMinus).map_err(|_| bad()),
            None => s.parse().map(ThresholdRule::Fixed).map_err(|_| bad()),
        },
    }
}

/// How much to measure for one (operation, n).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Sequential requests for the latency percentiles, after one warm-up request.
    pub samples: usize,
    /// Requests in flight during the throughput phase.
    pub concurrency: usize,
    /// Requests of the throughput phase, after one warm-up request per client task.
    pub throughput_requests: usize,
    /// Items per request (records for decryption, 1 otherwise).
    pub batch: usize,
    /// Repetitions of the in-process figure.
    pub in_process_samples: usize,
}

/// The checked options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    pub sizes: Vec<(u16, u16)>,
    pub ops: Vec<Op>,
    pub out: PathBuf,
    pub threshold: ThresholdRule,
    pub concurrency: usize,
    pub iterations: Option<usize>,
    pub batch: Option<usize>,
    pub quick: bool,
    pub rtt_ms: u64,
}

impl Options {
    /// Resolves the thresholds and operations; an error (a usage error) if a rule gives no
    /// valid threshold for some n.
    pub fn from_args(args: BenchArgs) -> Result<Options, String> {
        let mut nodes = args.nodes;
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.is_empty() {
            return Err("--nodes names no cluster size".into());
        }
        let sizes = nodes
            .into_iter()
            .map(|n| Ok((args.threshold.threshold(n)?, n)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut ops = Vec::new();
        for choice in args.ops {
            ops.extend(match choice {
                OpChoice::Dkg => &[Op::Dkg][..],
                OpChoice::Sign => &[Op::Sign],
                OpChoice::Decrypt => &[Op::DecryptHpke, Op::DecryptEcies],
                OpChoice::DecryptHpke => &[Op::DecryptHpke],
                OpChoice::DecryptEcies => &[Op::DecryptEcies],
                OpChoice::DecryptE2e => &[Op::DecryptHpkeE2e, Op::DecryptEciesE2e],
                OpChoice::Refresh => &[Op::Refresh],
            });
        }
        ops.sort_unstable();
        ops.dedup();
        if ops.is_empty() {
            return Err("--ops names no operation".into());
        }
        Ok(Options {
            sizes,
            ops,
            out: args.out,
            threshold: args.threshold,
            concurrency: usize::from(args.concurrency),
            iterations: args.iterations.map(|i| i as usize),
            batch: args.batch.map(|b| b as usize),
            quick: args.quick,
            rtt_ms: args.rtt_ms,
        })
    }

    /// Enough requests for stable medians while the default run (3, 5, 9 and 21 nodes, all
    /// operations) stays within minutes: a 21-node ceremony costs hundreds of times a
    /// 3-node signature.
    pub fn plan(&self, op: Op, n: u16) -> Plan {
        let c = self.concurrency;
        let batch = if op.is_decrypt() {
            self.batch.unwrap_or(if self.quick { 4 } else { 100 })
        } else {
            1
        };
        if self.quick {
            return Plan {
                samples: self.iterations.unwrap_or(3),
                concurrency: c,
                throughput_requests: c,
                batch,
                in_process_samples: 2,
            };
        }
        let big = n > 9;
        let (samples, per_client, in_process) = match op {
            Op::Dkg | Op::Refresh if big => (4, 1, 3),
            Op::Dkg | Op::Refresh if n > 5 => (8, 1, 5),
            Op::Dkg | Op::Refresh => (15, 2, 10),
            Op::Sign if big => (100, 10, 100),
            Op::Sign => (200, 25, 200),
            _ if big => (5, 1, 3),
            _ => (10, 2, 5),
        };
        let samples = self.iterations.unwrap_or(samples);
        Plan {
            samples,
            concurrency: c,
            throughput_requests: (c * per_client).max(samples.min(c * 4)),
            batch,
            in_process_samples: in_process,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_rule() {
        assert_eq!(ThresholdRule::Majority.threshold(3), Ok(2));
        assert_eq!(ThresholdRule::Majority.threshold(21), Ok(11));
        assert_eq!(ThresholdRule::All.threshold(5), Ok(5));
        assert_eq!(ThresholdRule::NMinus(1).threshold(5), Ok(4));
        assert!(ThresholdRule::Fixed(4).threshold(3).is_err());
        assert!(ThresholdRule::NMinus(4).threshold(5).is_err());
        assert_eq!(parse_threshold("n-2"), Ok(ThresholdRule::NMinus(2)));
        assert!(parse_threshold("half").is_err());
        assert!(parse_nodes("1").is_err());
        assert!(parse_op("encrypt").is_err());
    }
}
