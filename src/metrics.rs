//! Prometheus metrics of a node, served at `GET /metrics` on the client listener.
//!
//! Label values are drawn from small fixed sets (operation names, outcome classes, member ids,
//! reason kinds) so that no client input can grow the number of series.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use api::{Excluded, OperationStats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::Member;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CulpritLabels {
    operation: &'static str,
    culprit: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SealKindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrailLabels {
    node: String,
    kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    rejected: Family<ReasonLabels, Counter>,
    trail_conflicts: Family<TrailLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    culprits: Family<CulpritLabels, Counter>,
    rounds: Family<OperationLabels, Histogram>,
    peer_requests: Family<OperationLabels, Counter>,
    peer_bytes: Family<OperationLabels, Counter>,
    peer_bytes_per_op: Family<OperationLabels, Histogram>,
    sealed: Gauge,
    seal_kind: Family<SealKindLabels, Gauge>,
    keys: Gauge,
    peer_up: Family<PeerLabels, Gauge>,
    presign_pool: Family<PeerLabels, Gauge>,
    one_round: Counter,
}

impl Metrics {
    pub fn new(members: &[Member], own_id: u16) -> Metrics {
        let mut registry = Registry::with_prefix("keyquorum");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client API requests by operation and outcome (ok, client_error, server_error)",
            requests.clone(),
        );
        // 1 ms .. ~65 s: a signature takes milliseconds, a large ceremony tens of seconds.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 17))
        });
        registry.register(
            "request_duration_seconds",
            "Client API request latency by operation and outcome",
            latency.clone(),
        );
        let culprits = Family::<CulpritLabels, Counter>::default();
        registry.register(
            "culprits",
            "Nodes named as culprits of a failed or degraded ceremony, signing or decryption, by node id and reason kind",
            culprits.clone(),
        );
        let rounds = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0])
        });
        registry.register(
            "operation_rounds",
            "Peer round trips per coordinated operation, retries included",
            rounds.clone(),
        );
        let peer_requests = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operation_peer_requests",
            "Peer requests sent while coordinating operations",
            peer_requests.clone(),
        );
        let peer_bytes = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operation_peer_bytes",
            "Bytes exchanged with peers (request and answer bodies) while coordinating operations",
            peer_bytes.clone(),
        );
        // 256 B .. 256 MiB.
        let peer_bytes_per_op = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(256.0, 4.0, 11))
        });
        registry.register(
            "operation_peer_bytes_per_operation",
            "Bytes exchanged with peers per coordinated operation",
            peer_bytes_per_op.clone(),
        );
        let sealed = Gauge::default();
        registry.register(
            "sealed",
            "1 while the node's store is sealed (no share usable), 0 when unsealed",
            sealed.clone(),
        );
        let seal_kind = Family::<SealKindLabels, Gauge>::default();
        registry.register(
            "seal_kind",
            "1 for what wraps the store's data key: passphrase or pkcs11 (a token)",
            seal_kind.clone(),
        );
        let keys = Gauge::default();
        registry.register("keys", "Keys this node holds a share of", keys.clone());
        let presign_pool = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "presign_commitments",
            "Nonce commitments this node holds, as a signing coordinator, from each signer (all keys together)",
            presign_pool.clone(),
        );
        let one_round = Counter::default();
        registry.register(
            "signatures_one_round",
            "Sign requests this node coordinated in one round trip, with preprocessed commitments",
            one_round.clone(),
        );
        let peer_up = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "peer_reachable",
            "1 if the peer answered this node's last request to it (a call or the periodic ping), 0 if it was unreachable, timed out or not asked yet",
            peer_up.clone(),
        );
        // Every peer shows from the start, as not (yet) answering, so a dashboard sees the
        // whole membership; the periodic probe and every call update it.
        for m in members.iter().filter(|m| m.id != own_id) {
            peer_up
                .get_or_create(&PeerLabels {
                    peer: m.id.to_string(),
                    name: m.name.clone(),
                })
                .set(0);
        }
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Client requests refused before they were authenticated (no or bad credentials, bad signature, stale or replayed, or the source over its rejection rate), by reason",
            rejected.clone(),
        );
        let trail_conflicts = Family::<TrailLabels, Counter>::default();
        registry.register(
            "audit_trail_conflicts",
            "Signed audit heads of a peer that contradict one recorded before (kind fork: another hash at a seq it signed before; rollback: it no longer holds an entry it signed; bad_signature), by the peer's id",
            trail_conflicts.clone(),
        );
        Metrics {
            registry,
            rejected,
            trail_conflicts,
            requests,
            latency,
            culprits,
            rounds,
            peer_requests,
            peer_bytes,
            peer_bytes_per_op,
            sealed,
            seal_kind,
            keys,
            peer_up,
            presign_pool,
            one_round,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn observe_request(&self, operation: &'static str, status: StatusCode, took: Duration) {
        let labels = RequestLabels {
            operation,
            outcome: outcome_of(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Records the cost of one coordinated operation.
    pub fn observe_cost(&self, operation: &'static str, stats: &OperationStats) {
        let labels = OperationLabels { operation };
        self.rounds
            .get_or_create(&labels)
            .observe(f64::from(stats.rounds));
        self.peer_requests
            .get_or_create(&labels)
            .inc_by(stats.peer_requests);
        self.peer_bytes
            .get_or_create(&labels)
            .inc_by(stats.peer_bytes);
        self.peer_bytes_per_op
            .get_or_create(&labels)
            .observe(stats.peer_bytes as f64);
    }

    /// Counts the nodes an operation excluded or blamed.
    pub fn observe_culprits(&self, operation: &'static str, culprits: &[Excluded]) {
        for c in culprits {
            self.culprits
                .get_or_create(&CulpritLabels {
                    operation,
                    culprit: c.node.to_string(),
                    reason: reason_kind(&c.reason),
                })
                .inc();
        }
    }

    /// Counts a request refused before authentication; `reason` is an error code.
    pub fn observe_rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a contradiction in the signed audit heads of member `node`.
    pub fn observe_trail_conflict(&self, node: u16, kind: &'static str) {
        self.trail_conflicts
            .get_or_create(&TrailLabels {
                node: node.to_string(),
                kind,
            })
            .inc();
    }

    /// Records what wraps the data key: `keyquorum_seal_kind{kind="pkcs11"} 1`.
    pub fn set_seal_kind(&self, kind: &'static str) {
        self.seal_kind
            .get_or_create(&SealKindLabels { kind })
            .set(1);
    }

    pub fn set_sealed(&self, sealed: bool) {
        self.sealed.set(i64::from(sealed));
    }

    pub fn set_keys(&self, count: usize) {
        self.keys.set(count as i64);
    }

    /// Moves the count of `peer`'s preprocessed commitments held here by `delta`.
    pub fn add_presign_commitments(&self, members: &[Member], peer: u16, delta: i64) {
        if let Some(m) = members.iter().find(|m| m.id == peer) {
            self.presign_pool
                .get_or_create(&PeerLabels {
                    peer: m.id.to_string(),
                    name: m.name.clone(),
                })
                .inc_by(delta);
        }
    }

    pub fn count_one_round_signature(&self) {
        self.one_round.inc();
    }

    /// Whether `peer` answered the last request sent to it. Unknown peers are ignored, so a
    /// bad id cannot add series.
    pub fn set_peer_reachable(&self, members: &[Member], peer: u16, reachable: bool) {
        if let Some(m) = members.iter().find(|m| m.id == peer) {
            self.peer_up
                .get_or_create(&PeerLabels {
                    peer: m.id.to_string(),
                    name: m.name.clone(),
                })
                .set(i64::from(reachable));
        }
    }
}

fn outcome_of(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "server_error"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "ok"
    }
}

/// The operation label of a client request, from its method and path (never the raw path:
/// key names would make one series per key).
pub fn operation_of(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "health"]) => "health",
        ("GET", ["v1", "status"]) => "status",
        ("GET", ["v1", "openapi.json"]) => "openapi",
        ("GET", ["metrics"]) => "metrics",
        ("POST", ["v1", "keys"]) => "create_key",
        ("GET", ["v1", "keys"]) => "list_keys",
        ("GET", ["v1", "keys", _]) => "get_key",
        ("POST", ["v1", "keys", _, "sign"]) => "sign",
        ("POST", ["v1", "keys", _, "verify"]) => "verify",
        ("POST", ["v1", "keys", _, "encrypt"]) => "encrypt",
        ("POST", ["v1", "keys", _, "decrypt"]) => "decrypt",
        ("POST", ["v1", "keys", _, "refresh"]) => "refresh_key",
        ("POST", ["v1", "keys", _, "repair"]) => "repair_key",
        ("POST", ["v1", "keys", _, "reshare"]) => "reshare_key",
        ("DELETE", ["v1", "keys", _]) => "retire_key",
        _ => "other",
    }
}

/// A culprit's reason reduced to a fixed kind; the full text is in the answer and the log.
pub fn reason_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("timed out") || r.contains("timeout") {
        "timeout"
    } else if r.contains("unreachable") {
        "unreachable"
    } else if r.contains("equivocat") || r.contains("digest") {
        "equivocation"
    } else if r.contains("proof") {
        "invalid_proof"
    } else if r.contains("share") || r.contains("partial") {
        "invalid_share"
    } else if r.contains("invalid answer") || r.contains("malformed") {
        "invalid_answer"
    } else if r.contains("rejected") || r.contains("refused") {
        "rejected"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_a_fixed_set() {
        assert_eq!(
            operation_of(&Method::POST, "/v1/keys/any-name/sign"),
            "sign"
        );
        assert_eq!(operation_of(&Method::GET, "/v1/keys/x"), "get_key");
        assert_eq!(operation_of(&Method::GET, "/v1/keys/x/y/z"), "other");
        assert_eq!(operation_of(&Method::DELETE, "/v1/keys"), "other");
    }

    #[test]
    fn reasons_reduce_to_kinds() {
        assert_eq!(reason_kind("timed out"), "timeout");
        assert_eq!(
            reason_kind("unreachable: connection refused"),
            "unreachable"
        );
        assert_eq!(
            reason_kind("sent an invalid signature share"),
            "invalid_share"
        );
        assert_eq!(reason_kind("whatever else"), "other");
    }
}
