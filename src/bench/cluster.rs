//! The operations measured over HTTP on an in-process loopback cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use api::{Algorithm, Client, CreateKeyRequest, DecryptRequest, KeyInfo};
use keyshares::decrypt::Scheme;
use keyshares::{sign, Curve};

use super::inprocess;
use super::load::{self, Phase};
use super::options::{Op, Plan};
use super::stats::ms;
use crate::cluster::LocalCluster;
use crate::http::ops::ciphertext_item;

/// A cluster in a temporary directory; the cluster stops before the directory goes.
pub struct BenchCluster {
    cluster: LocalCluster,
    _dir: tempfile::TempDir,
    pub clients: Vec<Client>,
    /// Writing the configuration and starting every node (Argon2 unseal, sled open, bind).
    pub startup_ms: f64,
}

impl BenchCluster {
    /// Starts `n` nodes; with `rtt_ms`, every peer request waits that long before it is
    /// handled, as if the nodes were that far apart.
    pub fn start(n: u16, rtt_ms: u64) -> anyhow::Result<BenchCluster> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("keyquorum-bench-")
            .tempdir()?;
        let mut cluster = LocalCluster::create(&dir.path().join("cluster"), usize::from(n))?;
        cluster.adjust = Some(Box::new(|c| {
            // Many nodes sharing a few cores are far slower than the one node per machine the
            // default timeouts are meant for; a timeout would measure nothing.
            c.timeouts.peer_ms = c.timeouts.peer_ms.max(120_000);
            c.timeouts.ceremony_ms = c.timeouts.ceremony_ms.max(600_000);
            // One benchmark client drives the whole load: the per-client limit would measure
            // itself.
            c.auth.client_requests_per_second = 0;
        }));
        cluster.start_all()?;
        for id in cluster.ids() {
            if let Some(node) = cluster.node(id) {
                node.faults.write().added_rtt_ms = rtt_ms;
            }
        }
        let clients = cluster
            .ids()
            .into_iter()
            .map(|id| cluster.client(id))
            .collect();
        Ok(BenchCluster {
            cluster,
            _dir: dir,
            clients,
            startup_ms: ms(started.elapsed()),
        })
    }

    pub fn n(&self) -> usize {
        self.cluster.ids().len()
    }

    /// Every node's own count of the peer bytes it sent and received so far.
    fn wire(&self) -> Vec<NodeWire> {
        self.cluster
            .ids()
            .into_iter()
            .filter_map(|id| {
                let (sent, received) = self.cluster.node(id)?.wire.totals();
                Some(NodeWire {
                    node: id,
                    sent,
                    received,
                })
            })
            .collect()
    }

    /// The counts once background traffic (preprocessed-nonce refills) has stopped: two reads
    /// 50 ms apart that agree, or the last read after 3 s. A refill in flight at a snapshot
    /// would count its request before the window and its answer inside it.
    fn quiet_wire(&self) -> Vec<NodeWire> {
        let same = |a: &[NodeWire], b: &[NodeWire]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x.sent, x.received) == (y.sent, y.received))
        };
        let mut last = self.wire();
        for _ in 0..60 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = self.wire();
            if same(&last, &now) {
                return now;
            }
            last = now;
        }
        last
    }

    /// One warm-up request, then `samples` timed ones, with what each node sent and received
    /// during the timed ones, background refills they caused included.
    fn sequential<T, F, Fut>(
        &self,
        rt: &tokio::runtime::Runtime,
        samples: usize,
        mut f: F,
    ) -> (Phase<T>, Vec<NodeWire>)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(api::OperationStats, T)>>,
    {
        rt.block_on(load::sequential(1, 0, &mut f));
        let before = self.quiet_wire();
        let phase = rt.block_on(load::sequential(0, samples, &mut f));
        let after = self.quiet_wire();
        let delta = after
            .into_iter()
            .map(|a| {
                let b = before.iter().find(|b| b.node == a.node);
                NodeWire {
                    node: a.node,
                    sent: a.sent - b.map_or(0, |b| b.sent),
                    received: a.received - b.map_or(0, |b| b.received),
                }
            })
            .collect();
        (phase, delta)
    }
}

/// Peer-protocol body bytes one node counted over a phase.
#[derive(Debug, Clone, Copy)]
pub struct NodeWire {
    pub node: u16,
    pub sent: u64,
    pub received: u64,
}

/// Both phases of one (operation, t, n).
pub struct Measured {
    /// Requests one after another, all coordinated by node 1.
    pub sequential: Phase<()>,
    /// What each node sent and received during the sequential requests.
    pub wire: Vec<NodeWire>,
    /// `plan.concurrency` client tasks, requests spread round-robin over the nodes.
    pub concurrent: Phase<()>,
}

async fn create_key(
    client: Client,
    name: String,
    algorithm: Algorithm,
    t: u16,
) -> anyhow::Result<KeyInfo> {
    let request = CreateKeyRequest {
        name: name.clone(),
        algorithm,
        threshold: t,
        participants: None,
        policy: None,
    };
    client
        .create_key(&request)
        .await
        .with_context(|| format!("creating {name} ({algorithm}, t = {t})"))
}

impl BenchCluster {
    /// Both phases of one operation: `request` made by node 1's client one after another,
    /// then by `plan.concurrency` client tasks spread round-robin over the nodes; every
    /// answer passes `check`.
    fn both_phases<T, F, Fut>(
        &self,
        rt: &tokio::runtime::Runtime,
        plan: &Plan,
        request: F,
        check: impl Fn(&T) -> anyhow::Result<()>,
    ) -> anyhow::Result<Measured>
    where
        F: Fn(Client) -> Fut + Clone + Send + Sync + 'static,
        Fut:
            std::future::Future<Output = anyhow::Result<(api::OperationStats, T)>> + Send + 'static,
        T: Send + 'static,
    {
        let first = self.clients[0].clone();
        let (seq, wire) = self.sequential(rt, plan.samples, || request(first.clone()));
        let clients = self.clients.clone();
        let conc = rt.block_on(load::concurrent(
            plan.concurrency,
            plan.throughput_requests,
            move |k| request(clients[k % clients.len()].clone()),
        ));
        Ok(Measured {
            sequential: checked(seq, &check)?,
            wire,
            concurrent: checked(conc, &check)?,
        })
    }
}

/// Drops the values once checked, so that both phases have one type.
fn checked<T>(
    phase: Phase<T>,
    mut check: impl FnMut(&T) -> anyhow::Result<()>,
) -> anyhow::Result<Phase<()>> {
    let mut out = Phase {
        done: Vec::with_capacity(phase.done.len()),
        errors: phase.errors,
        first_error: phase.first_error,
        elapsed: phase.elapsed,
        cpu: phase.cpu,
    };
    for d in phase.done {
        check(&d.value)?;
        out.done.push(load::Timed {
            latency_ms: d.latency_ms,
            stats: d.stats,
            value: (),
        });
    }
    Ok(out)
}

pub fn measure(
    rt: &tokio::runtime::Runtime,
    cluster: &BenchCluster,
    op: Op,
    t: u16,
    plan: &Plan,
) -> anyhow::Result<Measured> {
    let m = match op {
        Op::Dkg => dkg(rt, cluster, t, plan)?,
        Op::Refresh => refresh(rt, cluster, t, plan)?,
        Op::Sign => signing(rt, cluster, t, plan)?,
        Op::DecryptHpke => decryption(rt, cluster, Scheme::HpkeX25519, t, plan, false)?,
        Op::DecryptEcies => decryption(rt, cluster, Scheme::EciesSecp256k1, t, plan, false)?,
        Op::DecryptHpkeE2e => decryption(rt, cluster, Scheme::HpkeX25519, t, plan, true)?,
        Op::DecryptEciesE2e => decryption(rt, cluster, Scheme::EciesSecp256k1, t, plan, true)?,
    };
    m.sequential
        .require_some(&format!("{} sequential", op.label()))?;
    m.concurrent
        .require_some(&format!("{} concurrent", op.label()))?;
    Ok(m)
}

fn dkg(
    rt: &tokio::runtime::Runtime,
    cluster: &BenchCluster,
    t: u16,
    plan: &Plan,
) -> anyhow::Result<Measured> {
    let n = cluster.n();
    let names = Arc::new(AtomicUsize::new(0));
    let ceremony = move |client: Client| {
        let name = format!("dkg-{}", names.fetch_add(1, Ordering::Relaxed));
        async move {
            let info = create_key(client, name, Algorithm::FrostEd25519, t).await?;
            let stats = info.ceremony.clone().context("no ceremony stats")?;
            Ok((stats, info))
        }
    };
    let check = |info: &KeyInfo| {
        if info.participants.len() != n {
            bail!(
                "a ceremony gave {} shares, not {n}",
                info.participants.len()
            );
        }
        Ok(())
    };
    cluster.both_phases(rt, plan, ceremony, check)
}

/// Refreshes of keys made once, one per client task (two refreshes of one key cannot run at
/// once): each request takes an idle key from the pool and puts it back.
fn refresh(
    rt: &tokio::runtime::Runtime,
    cluster: &BenchCluster,
    t: u16,
    plan: &Plan,
) -> anyhow::Result<Measured> {
    let n = cluster.n();
    let mut names = Vec::new();
    for k in 0..plan.concurrency.max(1) {
        let name = format!("refresh-{k}");
        let client = cluster.clients[0].clone();
        rt.block_on(create_key(client, name.clone(), Algorithm::FrostEd25519, t))?;
        names.push(name);
    }
    let pool = Arc::new(tokio::sync::Mutex::new(names));
    let refresh = move |client: Client| {
        let pool = pool.clone();
        async move {
            let name = pool.lock().await.pop().context("no idle key to refresh")?;
            let outcome = client.refresh_key(&name).await;
            pool.lock().await.push(name);
            let info = outcome?;
            let stats = info.ceremony.clone().context("no ceremony stats")?;
            Ok((stats, info))
        }
    };
    let check = |info: &KeyInfo| {
        if info.participants.len() != n || info.generation == 0 {
            bail!("a refresh answered {info:?}");
        }
        Ok(())
    };
    cluster.both_phases(rt, plan, refresh, check)
}

fn signing(
    rt: &tokio::runtime::Runtime,
    cluster: &BenchCluster,
    t: u16,
    plan: &Plan,
) -> anyhow::Result<Measured> {
    let info = rt.block_on(create_key(
        cluster.clients[0].clone(),
        "sign".into(),
        Algorithm::FrostEd25519,
        t,
    ))?;
    let group_key = hex::decode(&info.group_verifying_key)?;
    let counter = Arc::new(AtomicUsize::new(0));
    let request = move |client: Client| {
        let message = format!("bench message {}", counter.fetch_add(1, Ordering::Relaxed));
        async move {
            let resp = client.sign("sign", message.as_bytes()).await?;
            let stats = resp.stats.context("no stats in the sign answer")?;
            Ok((stats, (message, resp.signature)))
        }
    };
    let check = |(message, signature): &(String, String)| {
        let sig = hex::decode(signature)?;
        if !sign::verify(Curve::Ed25519, &group_key, message.as_bytes(), &sig) {
            bail!("the cluster returned an invalid signature");
        }
        Ok(())
    };
    cluster.both_phases(rt, plan, request, check)
}

fn decryption(
    rt: &tokio::runtime::Runtime,
    cluster: &BenchCluster,
    scheme: Scheme,
    t: u16,
    plan: &Plan,
    end_to_end: bool,
) -> anyhow::Result<Measured> {
    let algorithm = match scheme {
        Scheme::HpkeX25519 => Algorithm::HpkeX25519,
        Scheme::EciesSecp256k1 => Algorithm::EciesSecp256k1,
    };
    let name = format!("decrypt-{scheme}{}", if end_to_end { "-e2e" } else { "" });
    let info = rt.block_on(create_key(
        cluster.clients[0].clone(),
        name.clone(),
        algorithm,
        t,
    ))?;
    let plain = inprocess::records(plan.batch);
    let group = hex::decode(&info.group_verifying_key)?;
    let request = Arc::new(DecryptRequest {
        ciphertexts: inprocess::encrypt_all(scheme, &group, &plain)?
            .iter()
            .map(ciphertext_item)
            .collect(),
        ..Default::default()
    });
    let name = Arc::new(name);
    let batch = {
        let (request, name) = (request.clone(), name.clone());
        move |client: Client| {
            let (request, name) = (request.clone(), name.clone());
            async move {
                // End to end, the figures include the client's checks and combination.
                let resp = if end_to_end {
                    client.decrypt(&name, &request).await?
                } else {
                    client.decrypt_combined_by_node(&name, &request).await?
                };
                let stats = resp.stats.context("no stats in the decrypt answer")?;
                Ok((stats, resp.results))
            }
        }
    };
    let check = |results: &Vec<api::DecryptResult>| {
        if results.len() != plain.len() {
            bail!("{} results for {} records", results.len(), plain.len());
        }
        for (result, expected) in results.iter().zip(&plain) {
            let got = result
                .plaintext
                .as_deref()
                .with_context(|| format!("a record failed: {:?}", result.error))?;
            if api::client::unb64(got).map_err(anyhow::Error::msg)? != *expected {
                bail!("a record decrypted to the wrong plaintext");
            }
        }
        Ok(())
    };
    cluster.both_phases(rt, plan, batch, check)
}
