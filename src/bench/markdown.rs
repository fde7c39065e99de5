//! report.md: the same figures as report.json, for people.

use std::fmt::Write;

use super::report::{Report, Row};

/// Milliseconds with precision that suits the magnitude.
pub fn fmt_ms(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 1000.0 {
        format!("{:.2} s", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else if x >= 0.1 {
        format!("{x:.2} ms")
    } else {
        format!("{:.1} µs", x * 1e3)
    }
}

pub fn fmt_bytes(b: f64) -> String {
    if !b.is_finite() {
        "–".into()
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() && x >= 100.0 => format!("{x:.0}×"),
        Some(x) if x.is_finite() => format!("{x:.2}×"),
        _ => "–".into(),
    }
}

fn size(r: &Row) -> String {
    format!("{}-of-{}", r.t, r.n)
}

/// The one table a reader sizing a cluster needs; also what the README shows.
pub fn summary_table(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| operation | t-of-n | compromised / lost tolerated | p50 | p99 | throughput | rounds | \
         bytes / op (all nodes) | CPU / op | CPU ÷ in-process | CPU ÷ single key |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &report.rows {
        let per = if r.items_per_request > 1 {
            format!(" ({} {}s)", r.items_per_request, r.unit)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} / {} | {}{per} | {} | {} {}/s @{} | {} | {} | {} | {} | {} |",
            r.label(),
            size(r),
            r.security.compromised_tolerated,
            r.security.lost_tolerated,
            fmt_ms(r.latency.p50_ms),
            fmt_ms(r.latency.p99_ms),
            fmt_rate(r.throughput.items_per_s),
            r.unit,
            r.throughput.concurrency,
            r.rounds,
            fmt_bytes(r.bytes.total_per_item),
            r.cpu_ms_per_item.map_or("–".into(), fmt_ms),
            fmt_ratio(r.ratios.cpu_vs_in_process),
            fmt_ratio(r.ratios.cpu_vs_single_key),
        );
    }
    s
}

pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let m = &report.machine;
    let c = &report.commit;
    let _ = writeln!(s, "# keyquorum cost report\n");
    let _ = writeln!(
        s,
        "- commit: `{}`{} ({})",
        c.hash,
        if c.dirty == Some(true) {
            " **with uncommitted changes**"
        } else {
            ""
        },
        c.source
    );
    let _ = writeln!(s, "- machine: {}", m.summary());
    // Other work on the machine skews every timing; the load averages say whether there was.
    let load = |l: Option<[f64; 3]>| l.map_or("?".into(), |[a, b, c]| format!("{a} {b} {c}"));
    let _ = writeln!(
        s,
        "- load average (1, 5, 15 min) before the run: {}; after: {}",
        load(m.load_average),
        load(report.load_average_after)
    );
    let _ = writeln!(s, "- command: `{}`", report.command);
    if report.options.rtt_ms > 0 {
        let _ = writeln!(
            s,
            "- simulated network distance: every peer round trip takes at least {} ms \
             (`--rtt-ms`)",
            report.options.rtt_ms
        );
    }
    let _ = writeln!(
        s,
        "- generated {} in {:.0} s{}",
        report.generated_at,
        report.duration_s,
        if report.options.quick {
            "; **`--quick`: a smoke run, the numbers are rough**"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "\nEvery node of each cluster runs in this one process on loopback (own thread, actix \
         system, HTTP listeners and sled store), and the load generator shares the same cores. \
         Latency: requests one after another, each coordinated by node 1, at the client, after \
         one warm-up request. Throughput: client tasks in a closed loop with requests spread \
         round-robin over the nodes. Bytes: request and answer bodies of the peer protocol as \
         each node counted its own traffic, as coordinator and as participant (HTTP headers and \
         TCP/IP framing not included), over the sequential requests; the total is what all \
         nodes sent, including requests the coordinator stopped waiting for, which the API's \
         `stats.peer_bytes` (shown too) leaves out. CPU: user + system time of every node \
         (this whole process less the load generator's threads, read from their own CPU \
         clocks and shown apart) during the throughput phase, divided by the items done. In-process: the same \
         `keyshares` cryptography for all parties, one thread, no transport (decryption there \
         verifies all t partials; the service skips the proof of the coordinator's own, so its \
         CPU per record can be lower). Single key: the plain operation with one ordinary key \
         (for a key ceremony: generating one Ed25519 key pair). Compromised tolerated = t − 1 (nodes that can \
         leak their shares without the key leaking); lost tolerated = n − t (nodes that can be \
         down with the key still usable). Per op means per ceremony, signature or record.\n"
    );

    let _ = writeln!(s, "## Summary\n");
    s.push_str(&summary_table(report));
    let _ = writeln!(s, "\n![latency](latency.svg)\n\n![bytes](bytes.svg)\n");

    let _ = writeln!(s, "## Latency and throughput\n");
    let _ = writeln!(
        s,
        "| operation | t-of-n | items / request | samples | p50 | p99 | mean | concurrency | \
         requests | items/s | p50 under load | p99 under load | errors |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label(),
            size(r),
            r.items_per_request,
            r.latency.samples,
            fmt_ms(r.latency.p50_ms),
            fmt_ms(r.latency.p99_ms),
            fmt_ms(r.latency.mean_ms),
            r.throughput.concurrency,
            r.throughput.requests,
            fmt_rate(r.throughput.items_per_s),
            fmt_ms(r.throughput.p50_ms),
            fmt_ms(r.throughput.p99_ms),
            r.errors
        );
    }

    let _ = writeln!(s, "\n## Communication (per request, mean)\n");
    let _ = writeln!(
        s,
        "| operation | t-of-n | rounds | peer requests | bytes, all nodes | per item | API \
         `stats.peer_bytes` | coordinator sent / received | other node sent / received (mean) | busiest other node \
         sent / received |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &report.rows {
        let b = &r.bytes;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} / {} | {} / {} | {} / {} |",
            r.label(),
            size(r),
            r.rounds,
            r.peer_requests_per_request,
            fmt_bytes(b.total_per_request),
            fmt_bytes(b.total_per_item),
            fmt_bytes(b.coordinator_stats_per_request),
            fmt_bytes(b.coordinator.sent),
            fmt_bytes(b.coordinator.received),
            fmt_bytes(b.other_node_mean.sent),
            fmt_bytes(b.other_node_mean.received),
            fmt_bytes(b.other_node_max.sent),
            fmt_bytes(b.other_node_max.received),
        );
    }

    let _ = writeln!(s, "\n## Disk (per item, all nodes)\n");
    let _ = writeln!(
        s,
        "| operation | t-of-n | audit trail, as stored | store growth on disk (sled log and pages) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|");
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.label(),
            size(r),
            fmt_bytes(r.disk.audit_bytes_per_item),
            fmt_bytes(r.disk.store_bytes_per_item),
        );
    }

    let _ = writeln!(s, "\n## Computational overhead (per item)\n");
    let _ = writeln!(
        s,
        "| operation | t-of-n | cluster p50 | cluster CPU | load generator CPU | in-process | \
         single key | p50 ÷ in-process | CPU ÷ in-process | p50 ÷ single key | CPU ÷ single key \
         | throughput ÷ in-process rate |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label(),
            size(r),
            fmt_ms(r.latency.p50_ms / r.items_per_request as f64),
            r.cpu_ms_per_item.map_or("–".into(), fmt_ms),
            r.load_generator_cpu_ms_per_item.map_or("–".into(), fmt_ms),
            fmt_ms(r.in_process_ms_per_item),
            fmt_ms(r.single_key_ms_per_item),
            fmt_ratio(Some(r.ratios.latency_vs_in_process)),
            fmt_ratio(r.ratios.cpu_vs_in_process),
            fmt_ratio(Some(r.ratios.latency_vs_single_key)),
            fmt_ratio(r.ratios.cpu_vs_single_key),
            fmt_ratio(Some(r.ratios.throughput_vs_in_process)),
        );
    }

    let _ = writeln!(s, "\n## Single-key baselines (same run)\n");
    let _ = writeln!(s, "| stands for | what was timed | per op | ops/s |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    for b in &report.baselines {
        let _ = writeln!(
            s,
            "| {} {} | {} | {} | {} |",
            b.operation,
            b.algorithm,
            b.name,
            fmt_ms(b.ms_per_op),
            fmt_rate(b.ops_per_s)
        );
    }

    let _ = writeln!(s, "\n## Clusters\n");
    for c in &report.clusters {
        let _ = writeln!(
            s,
            "- {} nodes: started in {} (not in any figure)",
            c.n,
            fmt_ms(c.startup_ms)
        );
    }
    let failed: Vec<&Row> = report.rows.iter().filter(|r| r.errors > 0).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\n## Failed requests (left out of the figures)\n");
        for r in failed {
            let _ = writeln!(
                s,
                "- {} {}: {} failed; first: `{}`",
                r.label(),
                size(r),
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    s
}
