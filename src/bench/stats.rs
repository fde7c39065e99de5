//! Percentiles of samples and the process's CPU time.

use std::time::Duration;

/// Nearest-rank percentile; NaN for no samples.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50.0)
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User + system CPU time of this whole process (every thread: all nodes of an in-process
/// cluster and the load generator), or None where the platform does not say.
pub fn process_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes into the zeroed struct we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Some(tv(usage.ru_utime) + tv(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The CPU time of one group of threads, read from each thread's own CPU clock: the load
/// generator's runtime registers its threads here, so that the nodes' CPU time can be told
/// apart from the client's although both run in this one process.
pub struct ThreadGroupClock(parking_lot::Mutex<ThreadGroup>);

struct ThreadGroup {
    #[cfg(unix)]
    live: Vec<libc::pthread_t>,
    /// CPU time of the group's threads that have ended.
    ended: Duration,
}

/// The load generator's threads (the bench's client runtime).
pub static LOAD_GENERATOR: ThreadGroupClock =
    ThreadGroupClock(parking_lot::const_mutex(ThreadGroup {
        #[cfg(unix)]
        live: Vec::new(),
        ended: Duration::ZERO,
    }));

#[cfg(unix)]
fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    // SAFETY: clock_gettime only writes into the zeroed struct we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

impl ThreadGroupClock {
    /// Adds the calling thread (a runtime's `on_thread_start`).
    pub fn enter(&self) {
        #[cfg(unix)]
        // SAFETY: pthread_self has no preconditions.
        self.0.lock().live.push(unsafe { libc::pthread_self() });
    }

    /// Removes the calling thread, keeping the CPU time it spent (a runtime's
    /// `on_thread_stop`). A thread leaves before it ends, so every live entry names a running
    /// thread when [`Self::cpu_time`] reads its clock.
    pub fn leave(&self) {
        #[cfg(unix)]
        {
            let mut group = self.0.lock();
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() };
            group
                .live
                .retain(|t| unsafe { libc::pthread_equal(*t, me) } == 0);
            group.ended += clock_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or_default();
        }
    }

    /// CPU time of every thread of the group so far, or None where the platform does not say.
    pub fn cpu_time(&self) -> Option<Duration> {
        #[cfg(unix)]
        {
            let group = self.0.lock();
            let mut total = group.ended;
            for thread in &group.live {
                let mut clock: libc::clockid_t = 0;
                // SAFETY: `thread` is running (it would have left the group before ending),
                // and the call only writes `clock`.
                if unsafe { libc::pthread_getcpuclockid(*thread, &mut clock) } != 0 {
                    return None;
                }
                total += clock_time(clock)?;
            }
            Some(total)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

/// CPU time spent so far: the whole process's, and the load generator's part of it.
#[derive(Clone, Copy)]
pub struct CpuMark {
    process: Option<Duration>,
    load_generator: Option<Duration>,
}

/// CPU time spent between two marks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    /// Every thread but the load generator's: the nodes.
    pub nodes: Option<Duration>,
    pub load_generator: Option<Duration>,
}

impl CpuMark {
    pub fn now() -> CpuMark {
        CpuMark {
            process: process_cpu_time(),
            load_generator: LOAD_GENERATOR.cpu_time(),
        }
    }

    /// What was spent from this mark until now.
    pub fn spent(&self) -> CpuSpent {
        let later = CpuMark::now();
        let delta =
            |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let process = delta(self.process, later.process);
        let load_generator = delta(self.load_generator, later.load_generator);
        CpuSpent {
            nodes: process
                .zip(load_generator)
                .map(|(p, l)| p.saturating_sub(l)),
            load_generator,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), 50.0);
        assert_eq!(percentile(&xs, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn cpu_time_advances() {
        let before = process_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        if let (Some(a), Some(b)) = (before, process_cpu_time()) {
            assert!(b >= a);
        }
    }

    #[test]
    fn a_thread_groups_cpu_time_counts_its_threads_only() {
        static GROUP: ThreadGroupClock = ThreadGroupClock(parking_lot::const_mutex(ThreadGroup {
            #[cfg(unix)]
            live: Vec::new(),
            ended: Duration::ZERO,
        }));
        let spin = |d: Duration| {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed() < d {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        };
        let before = GROUP.cpu_time().unwrap();
        // Work outside the group is not counted.
        spin(Duration::from_millis(100));
        assert!(GROUP.cpu_time().unwrap() - before < Duration::from_millis(20));
        // A member's work is, while it runs and after it has left.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let member = std::thread::spawn(move || {
            GROUP.enter();
            spin(Duration::from_millis(100));
            ready_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            GROUP.leave();
        });
        ready_rx.recv().unwrap();
        let running = GROUP.cpu_time().unwrap() - before;
        assert!(running >= Duration::from_millis(80), "{running:?}");
        done_tx.send(()).unwrap();
        member.join().unwrap();
        let after = GROUP.cpu_time().unwrap() - before;
        assert!(after >= running, "{after:?} < {running:?}");
    }
}
