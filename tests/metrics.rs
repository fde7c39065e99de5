//! `GET /metrics` (issue #6): Prometheus text that an independent parser (the
//! `prometheus-parse` crate) reads, whose sign counters and byte totals move after a signing.

mod common;

use api::Algorithm;
use common::Harness;

/// Scrapes node `id` without a token and parses the exposition.
fn scrape(h: &Harness, id: u16) -> prometheus_parse::Scrape {
    let url = format!("{}/metrics", h.cluster.client_url(id));
    let text = h.rt.block_on(async {
        let resp = reqwest::get(&url).await.expect("GET /metrics");
        assert_eq!(resp.status(), 200, "/metrics needs no token");
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ctype.contains("openmetrics-text"), "{ctype}");
        resp.text().await.unwrap()
    });
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"))
}

/// The sum of a metric's samples whose labels include `labels` (counters and gauges).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// A histogram's sample count for the given labels.
fn histogram_count(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> u64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max) as u64
            }
            _ => 0,
        })
        .sum()
}

#[test]
fn metrics_parse_and_move_with_signing() {
    let h = Harness::start(3);
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();

    // One request first, so that the request counters have a series to show; the status
    // check pings the peers.
    h.rt.block_on(h.client(2).health()).unwrap();
    h.rt.block_on(h.client(2).status()).unwrap();
    let before = scrape(&h, 2);
    for name in [
        "keyquorum_requests_total",
        "keyquorum_sealed",
        "keyquorum_keys",
        "keyquorum_peer_reachable",
    ] {
        assert!(
            before.samples.iter().any(|s| s.metric == name),
            "{name} is missing from {:?}",
            before.samples.iter().map(|s| &s.metric).collect::<Vec<_>>()
        );
    }
    // Once by the test, once by the (new) signing client of the status call, which learns
    // the id of the node it addresses its requests to.
    assert_eq!(
        value(
            &before,
            "keyquorum_requests_total",
            &[("operation", "health"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(value(&before, "keyquorum_sealed", &[]), 0.0);
    assert_eq!(value(&before, "keyquorum_keys", &[]), 1.0);
    // Node 2 knows both peers, and they answered its pings.
    for peer in ["1", "3"] {
        assert_eq!(
            value(&before, "keyquorum_peer_reachable", &[("peer", peer)]),
            1.0,
            "peer {peer}"
        );
    }
    let sign_ok = [("operation", "sign"), ("outcome", "ok")];
    let signs_before = value(&before, "keyquorum_requests_total", &sign_ok);
    let bytes_before = value(
        &before,
        "keyquorum_operation_peer_bytes_total",
        &[("operation", "sign")],
    );

    for i in 0..3 {
        h.rt.block_on(h.client(2).sign("manifests", format!("m{i}").as_bytes()))
            .unwrap();
    }
    // A client error is counted as one, under its operation.
    let _ = h.rt.block_on(h.client(2).sign("no-such-key", b"x"));

    let after = scrape(&h, 2);
    assert_eq!(
        value(&after, "keyquorum_requests_total", &sign_ok) - signs_before,
        3.0
    );
    assert_eq!(
        value(
            &after,
            "keyquorum_requests_total",
            &[("operation", "sign"), ("outcome", "client_error")]
        ),
        1.0
    );
    assert!(
        histogram_count(&after, "keyquorum_request_duration_seconds", &sign_ok) >= 3,
        "latency histogram did not count the signings"
    );
    let bytes_after = value(
        &after,
        "keyquorum_operation_peer_bytes_total",
        &[("operation", "sign")],
    );
    assert!(
        bytes_after > bytes_before + 1000.0,
        "peer bytes: {bytes_before} -> {bytes_after}"
    );
    assert!(
        value(
            &after,
            "keyquorum_operation_peer_requests_total",
            &[("operation", "sign")]
        ) >= 3.0
    );
    assert_eq!(
        histogram_count(
            &after,
            "keyquorum_operation_rounds",
            &[("operation", "sign")]
        ),
        3
    );
}

#[test]
fn culprits_and_unreachable_peers_are_counted() {
    let mut h = Harness::start(3);
    h.create(1, "manifests", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.cluster.stop(3);
    // A ceremony with node 3 down fails and names it.
    let _ = h.create(1, "second", Algorithm::FrostEd25519, 2, None);
    let scrape = scrape(&h, 1);
    assert!(
        value(
            &scrape,
            "keyquorum_culprits_total",
            &[
                ("operation", "create_key"),
                ("culprit", "3"),
                ("reason", "unreachable")
            ]
        ) >= 1.0,
        "{:?}",
        scrape
            .samples
            .iter()
            .filter(|s| s.metric.starts_with("keyquorum_culprits"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        value(&scrape, "keyquorum_peer_reachable", &[("peer", "3")]),
        0.0
    );
    assert_eq!(
        value(&scrape, "keyquorum_peer_reachable", &[("peer", "2")]),
        1.0
    );
}
