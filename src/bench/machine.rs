//! What produced the figures: the machine and the commit.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    /// Logical CPUs this process may run on.
    pub cores: usize,
    pub os: String,
    pub kernel: String,
    pub memory_gib: Option<f64>,
    /// 1, 5 and 15 minute load averages just before the run: other work skews every figure.
    pub load_average: Option<[f64; 3]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// Full hash, or "unknown".
    pub hash: String,
    /// Tracked files differed from the commit, so the figures are not that commit's alone.
    pub dirty: Option<bool>,
    /// Where the hash came from.
    pub source: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name") || l.starts_with("Model"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("{} {}", std::env::consts::OS, s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        let memory_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            let kib: f64 = s
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some((kib / (1024.0 * 1024.0) * 10.0).round() / 10.0)
        });
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            os,
            kernel,
            memory_gib,
            load_average: load_average(),
        }
    }

    /// "2 × AMD EPYC …, Debian GNU/Linux 12, linux 6.1.0, 24 GiB".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} × {} (logical CPUs), {}, {}",
            self.cores, self.cpu_model, self.os, self.kernel
        );
        if let Some(m) = self.memory_gib {
            s.push_str(&format!(", {m} GiB RAM"));
        }
        s
    }
}

pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR")])
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Commit {
    /// `KEYQUORUM_COMMIT` at run time, else at build time (for builds outside a checkout, such
    /// as the Docker image), else `git rev-parse HEAD` in the source tree this binary was built
    /// from.
    pub fn detect() -> Commit {
        if let Ok(hash) = std::env::var("KEYQUORUM_COMMIT") {
            return Commit {
                hash,
                dirty: None,
                source: "KEYQUORUM_COMMIT at run time".into(),
            };
        }
        if let Some(hash) = option_env!("KEYQUORUM_COMMIT") {
            return Commit {
                hash: hash.into(),
                dirty: None,
                source: "KEYQUORUM_COMMIT at build time".into(),
            };
        }
        match git(&["rev-parse", "HEAD"]) {
            Some(hash) => Commit {
                hash,
                dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                    .map(|s| !s.is_empty()),
                source: format!("git rev-parse HEAD in {}", env!("CARGO_MANIFEST_DIR")),
            },
            None => Commit {
                hash: "unknown".into(),
                dirty: None,
                source: "no git checkout and no KEYQUORUM_COMMIT".into(),
            },
        }
    }

    pub fn short(&self) -> &str {
        &self.hash[..self.hash.len().min(10)]
    }
}
