//! Requests refused before they were authenticated (no or a malformed `Authorization`, an
//! unknown client or token, a signature that does not verify, a stale or replayed request),
//! counted per source address instead of one audit entry each (DESIGN.md §8: the disk that
//! holds the trail holds the shares).
//!
//! Each rejection takes a token from its source's bucket; a source whose bucket is empty is
//! refused (429) before anything of its request is checked. Rejections since the last summary
//! are returned as at most one summary per source and interval, for the caller to audit.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Sources tracked at most; beyond it, sources idle for longest are forgotten first.
const MAX_SOURCES: usize = 4096;

struct Source {
    tokens: f64,
    last: Instant,
    /// Rejections not yet summarised, by reason.
    pending: BTreeMap<&'static str, u64>,
    last_summary: Option<Instant>,
}

/// Rejections of one source since its previous summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub source: IpAddr,
    pub by_reason: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}

pub struct Rejections {
    per_second: f64,
    burst: f64,
    interval: Duration,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

impl Rejections {
    pub fn new(per_second: u32, burst: u32, interval: Duration) -> Rejections {
        Rejections {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            interval,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, source: &mut Source, now: Instant) {
        source.tokens = (source.tokens
            + now.duration_since(source.last).as_secs_f64() * self.per_second)
            .min(self.burst);
        source.last = now;
    }

    /// Whether `ip` may be heard at all: `Err` with the wait when its rejections used up its
    /// bucket. Takes nothing; only rejections do.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut sources = self.sources.lock();
        let Some(source) = sources.get_mut(&ip) else {
            return Ok(());
        };
        self.refill(source, now);
        if source.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - source.tokens) / self.per_second,
            ))
        }
    }

    /// Counts a rejection of `ip` for `reason`; returns a summary when one is due.
    pub fn reject(&self, ip: IpAddr, reason: &'static str) -> Option<Summary> {
        let now = Instant::now();
        let mut sources = self.sources.lock();
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
            if let Some(oldest) = sources.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k) {
                sources.remove(&oldest);
            }
        }
        let source = sources.entry(ip).or_insert(Source {
            tokens: self.burst,
            last: now,
            pending: BTreeMap::new(),
            last_summary: None,
        });
        self.refill(source, now);
        source.tokens = (source.tokens - 1.0).max(0.0);
        *source.pending.entry(reason).or_default() += 1;
        let due = source
            .last_summary
            .map_or(true, |at| now.duration_since(at) >= self.interval);
        due.then(|| {
            source.last_summary = Some(now);
            Summary {
                source: ip,
                by_reason: std::mem::take(&mut source.pending),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_refused_after_its_burst_and_summarised_once_per_interval() {
        let r = Rejections::new(1, 3, Duration::from_secs(3600));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = r.reject(a, "bad_signature").unwrap();
        assert_eq!(first.total(), 1);
        assert!(r.admit(a).is_ok());
        assert!(r.reject(a, "unknown_client").is_none());
        assert!(r.reject(a, "unknown_client").is_none());
        let wait = r.admit(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(r.admit(b).is_ok());
    }
}
