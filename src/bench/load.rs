//! Driving requests at a cluster: one after another for latency, or from several client tasks
//! at once for throughput and CPU time.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::OperationStats;

use super::stats::{ms, CpuMark, CpuSpent};

/// One answered request.
pub struct Timed<T> {
    pub latency_ms: f64,
    pub stats: OperationStats,
    pub value: T,
}

/// The answered requests of a phase and what failed.
pub struct Phase<T> {
    pub done: Vec<Timed<T>>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// CPU time spent during the phase by the nodes and by the load generator (None where
    /// the platform does not say).
    pub cpu: CpuSpent,
}

impl<T> Phase<T> {
    fn new() -> Phase<T> {
        Phase {
            done: Vec::new(),
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            cpu: CpuSpent::default(),
        }
    }

    fn record(&mut self, started: Instant, outcome: anyhow::Result<(OperationStats, T)>) {
        let latency_ms = ms(started.elapsed());
        match outcome {
            Ok((stats, value)) => self.done.push(Timed {
                latency_ms,
                stats,
                value,
            }),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }

    fn merge(&mut self, other: Phase<T>) {
        self.done.extend(other.done);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// An error if nothing succeeded: there is nothing to report then.
    pub fn require_some(&self, what: &str) -> anyhow::Result<()> {
        if self.done.is_empty() {
            anyhow::bail!(
                "{what}: no request succeeded ({} failed; first error: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("none")
            );
        }
        Ok(())
    }
}

/// `warmup` untimed requests, then `count` timed ones, one after another.
pub async fn sequential<T, F, Fut>(warmup: usize, count: usize, mut f: F) -> Phase<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<(OperationStats, T)>>,
{
    for _ in 0..warmup {
        // A failing warm-up shows again, counted, in the timed requests.
        let _ = f().await;
    }
    let mut phase = Phase::new();
    let cpu = CpuMark::now();
    let start = Instant::now();
    for _ in 0..count {
        let sent = Instant::now();
        let outcome = f().await;
        phase.record(sent, outcome);
    }
    phase.elapsed = start.elapsed();
    phase.cpu = cpu.spent();
    phase
}

/// `concurrency` client tasks share `total` requests (a closed loop: each sends its next
/// request when the last is answered), after one untimed request per task. `f(k)` makes
/// request k; the caller spreads requests over the nodes by k.
pub async fn concurrent<T, F, Fut>(concurrency: usize, total: usize, f: F) -> Phase<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<(OperationStats, T)>> + Send + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let warmups: Vec<_> = (0..concurrency)
        .map(|k| tokio::spawn((f.clone())(k)))
        .collect();
    for w in warmups {
        let _ = w.await;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuMark::now();
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                let mut phase = Phase::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        break;
                    }
                    let sent = Instant::now();
                    let outcome = f(concurrency + k).await;
                    phase.record(sent, outcome);
                }
                phase
            })
        })
        .collect();
    let mut all = Phase::new();
    for task in tasks {
        match task.await {
            Ok(p) => all.merge(p),
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("client task failed: {e}"));
            }
        }
    }
    all.elapsed = start.elapsed();
    all.cpu = cpu.spent();
    all
}
