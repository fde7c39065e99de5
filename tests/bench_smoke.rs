//! `keyquorum bench` works end to end (issue #7): a tiny run on one 3-node cluster writes a
//! report whose figures come from the running system. Nothing about speed is asserted.

use std::process::{Command, Output};

use keyquorum::bench::report::Report;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn bench(args: &[&str]) -> Output {
    Command::new(BIN).arg("bench").args(args).output().unwrap()
}

#[test]
fn a_tiny_run_writes_the_report_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = bench(&[
        "--nodes",
        "3",
        "--ops",
        "dkg,sign,decrypt,refresh",
        "--quick",
        "--concurrency",
        "2",
        "--iterations",
        "2",
        "--rtt-ms",
        "3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );

    let json = std::fs::read_to_string(out_dir.join("report.json")).unwrap();
    let report: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(report.schema, "keyquorum-bench/1");
    assert_eq!(
        report.options.rtt_ms, 3,
        "the simulated distance is recorded"
    );
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        markdown.contains("at least 3 ms (`--rtt-ms`)"),
        "{markdown}"
    );
    assert!(report.machine.cores > 0);
    assert!(!report.machine.cpu_model.is_empty());
    assert!(!report.commit.hash.is_empty());
    let labels: Vec<String> = report.rows.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        [
            "dkg",
            "sign",
            "decrypt hpke-x25519",
            "decrypt ecies-secp256k1",
            "refresh"
        ]
    );
    for r in &report.rows {
        let what = r.label();
        assert_eq!((r.t, r.n), (2, 3), "{what}");
        assert_eq!(r.security.compromised_tolerated, r.t - 1, "{what}");
        assert_eq!(r.security.lost_tolerated, r.n - r.t, "{what}");
        assert_eq!(r.errors, 0, "{what}: {:?}", r.first_error);
        assert!(r.rounds > 0, "{what}");
        assert!(r.latency.samples == 2 && r.latency.p50_ms > 0.0, "{what}");
        assert!(r.throughput.items_per_s > 0.0, "{what}");
        assert!(r.in_process_ms_per_item > 0.0, "{what}");
        assert!(r.single_key_ms_per_item > 0.0, "{what}");
        // The nodes' CPU and the load generator's are measured apart, and both did work.
        let nodes = r.cpu_ms_per_item.expect("nodes' CPU measured");
        let client = r
            .load_generator_cpu_ms_per_item
            .expect("client CPU measured");
        assert!(nodes > 0.0 && client > 0.0, "{what}: {nodes} / {client}");
        // Bytes each node counted: the total is what all nodes sent; every byte received was
        // sent (a signing coordinator may stop reading before an answer comes); the API's
        // count of answered exchanges is part of it.
        let b = &r.bytes;
        assert_eq!(b.per_node.len(), 3, "{what}");
        assert!(
            b.coordinator.sent > 0.0 && b.coordinator.received > 0.0,
            "{what}"
        );
        let sent: f64 = b.per_node.iter().map(|n| n.sent).sum();
        let received: f64 = b.per_node.iter().map(|n| n.received).sum();
        assert_eq!(b.total_per_request, sent, "{what}");
        assert!(
            received > 0.0 && received <= sent,
            "{what}: {received} > {sent}"
        );
        assert!(b.coordinator_stats_per_request > 0.0, "{what}");
        assert!(b.coordinator_stats_per_request <= sent + received, "{what}");
        // Every operation leaves audit entries on the nodes it reached.
        assert!(r.disk.audit_bytes_per_item > 0.0, "{what}");
    }
    assert_eq!(report.baselines.len(), 5);

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("# keyquorum cost report"));
    assert!(md.contains(&report.commit.hash));
    assert!(md.contains("2-of-3"));
    for chart in ["latency.svg", "bytes.svg"] {
        let svg = std::fs::read_to_string(out_dir.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}"
        );
        assert_eq!(svg.matches("<polyline").count(), 5, "{chart}");
    }
}

#[test]
fn a_short_soak_samples_memory_and_store_of_separate_node_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("soak");
    let out = bench(&[
        "--soak",
        "3",
        "--nodes",
        "3",
        "--concurrency",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(out_dir.join("soak.json")).unwrap();
    let report: keyquorum::bench::soak::SoakReport = serde_json::from_str(&json).unwrap();
    assert_eq!(report.schema, "keyquorum-soak/1");
    assert!(
        report.signatures > 0 && report.decryptions > 0,
        "{report:?}"
    );
    assert_eq!(
        report.sign_errors + report.decrypt_errors,
        0,
        "{:?}",
        report.first_error
    );
    assert!(report.samples.len() >= 3);
    assert_eq!(report.per_node.len(), 3);
    for n in &report.per_node {
        // Figures from /proc and the data directories of running processes.
        assert!(n.rss_start_bytes > 0 && n.rss_end_bytes > 0, "{n:?}");
        assert!(n.store_end_bytes > 0, "{n:?}");
        assert!(n.audit_entries > 0, "{n:?}");
    }
    let md = std::fs::read_to_string(out_dir.join("soak.md")).unwrap();
    assert!(md.contains("separate processes"), "{md}");
    let svg = std::fs::read_to_string(out_dir.join("soak.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 6);
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["--nodes", "1"][..],
        &["--nodes", "3,x"],
        &["--ops", "encrypt"],
        &["--nodes", "3", "--threshold", "4"],
        &["--threshold", "half"],
        &["--concurrency", "0"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
