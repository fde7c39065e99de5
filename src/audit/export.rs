//! Streams the trail out as it is written, the way logs are collected: one JSON line per entry
//! (the entry with its hash-chain fields and the node's id, so `keyquorum audit verify --file`
//! checks the copy offline) to a file rotated by size and/or to standard output.
//!
//! An entry is exported after it is stored and before its operation answers; a sink that
//! cannot be written fails the operation (DESIGN.md §8: no answer without its trail). Entries
//! stored but not exported (a sink failed, or the node stopped) are exported before the next
//! one, so the copy has no gaps; after a restart the copy resumes from the last point recorded
//! durably, and may repeat a few entries, which verification counts once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use parking_lot::Mutex;

use super::ExportedEntry;

/// The file sink: `path` is written, and renamed to `path.N` (N = 1, 2, … in order) when the
/// next line would take it past `rotate_bytes`. Rotated files are left for the operator's
/// collector; none is deleted here.
struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotate_bytes: u64,
    next_index: u64,
}

impl RotatingFile {
    fn open(path: &Path, rotate_bytes: u64) -> anyhow::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the audit export {}", path.display()))?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            rotate_bytes,
            next_index: rotated(path).last().map_or(1, |(n, _)| n + 1),
        })
    }

    fn write(&mut self, line: &[u8]) -> anyhow::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.rotate_bytes {
            self.rotate()?;
        }
        self.file
            .write_all(line)
            .with_context(|| format!("writing the audit export {}", self.path.display()))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        self.file.sync_data()?;
        let to = indexed(&self.path, self.next_index);
        std::fs::rename(&self.path, &to)
            .with_context(|| format!("rotating {} to {}", self.path.display(), to.display()))?;
        self.next_index += 1;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open the audit export {}", self.path.display()))?;
        self.size = 0;
        Ok(())
    }
}

fn indexed(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated files of `path`, oldest first.
pub fn rotated(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let n = file.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The seq of the last entry in the export at `path` (or its newest rotated file when `path`
/// is empty): where a restarted node resumes, beyond the point it recorded.
pub fn last_in_file(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let newest_rotated = rotated(path).pop().map(|(_, p)| p);
    for candidate in std::iter::once(path.to_path_buf()).chain(newest_rotated) {
        let Ok(mut file) = File::open(&candidate) else {
            continue;
        };
        let len = file.metadata().ok()?.len();
        if len == 0 {
            continue;
        }
        // An entry is well under 8 KiB (strings are capped), so the tail holds the last one.
        let start = len.saturating_sub(16 * 1024);
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut tail = String::new();
        file.read_to_string(&mut tail).ok()?;
        return tail
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<ExportedEntry>(l).ok())
            .map(|e| e.entry.seq);
    }
    None
}

/// The entries of the export at `path` after entry `seq`, from the end of the current file
/// (what a node killed within its store's flush interval may have exported but not kept).
pub fn tail_after(path: &Path, seq: u64) -> Vec<ExportedEntry> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    // Far more than a flush interval's entries.
    let start = len.saturating_sub(4 * 1024 * 1024);
    let mut tail = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut tail).is_err() {
        return Vec::new();
    }
    String::from_utf8_lossy(&tail)
        .lines()
        .filter_map(|l| serde_json::from_str::<ExportedEntry>(l).ok())
        .filter(|e| e.entry.seq > seq)
        .collect()
}

pub struct Exporter {
    node: u16,
    file: Option<Mutex<RotatingFile>>,
    stdout: bool,
    /// The last entry written to every sink.
    exported: AtomicU64,
    /// Test fault: every write fails, as a full disk would.
    fail: AtomicBool,
}

impl Exporter {
    /// `None` when export is off. `exported` is the last entry known written.
    pub fn open(
        node: u16,
        settings: &crate::config::AuditSettings,
        exported: u64,
    ) -> anyhow::Result<Option<Exporter>> {
        if !settings.exports() {
            return Ok(None);
        }
        let file = match &settings.export_file {
            Some(path) => Some(Mutex::new(RotatingFile::open(
                path,
                settings.export_rotate_bytes,
            )?)),
            None => None,
        };
        Ok(Some(Exporter {
            node,
            file,
            stdout: settings.export_stdout,
            exported: AtomicU64::new(exported),
            fail: AtomicBool::new(false),
        }))
    }

    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::SeqCst)
    }

    /// Writes `entry` to every sink; it must follow the last one exported.
    pub fn write(&self, entry: &api::AuditEntry) -> anyhow::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            anyhow::bail!("the audit export cannot be written (fault injected)");
        }
        let mut line = serde_json::to_vec(&ExportedEntry {
            node: self.node,
            entry: entry.clone(),
        })?;
        line.push(b'\n');
        if let Some(file) = &self.file {
            file.lock().write(&line)?;
        }
        if self.stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(&line)
                .and_then(|_| out.flush())
                .context("writing the audit export to standard output")?;
        }
        self.exported.store(entry.seq, Ordering::SeqCst);
        Ok(())
    }

    /// Makes what was exported durable; returns the last entry it covers.
    pub fn sync(&self) -> anyhow::Result<u64> {
        let exported = self.exported();
        if let Some(file) = &self.file {
            file.lock().file.sync_data()?;
        }
        Ok(exported)
    }

    /// Test hook: make every write fail (a full disk) or succeed again.
    #[doc(hidden)]
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}
