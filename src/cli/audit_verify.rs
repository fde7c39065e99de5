//! `keyquorum audit verify`: checks a stopped node's trail in its store, or an exported copy
//! of it (offline, from the JSON-lines files alone).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{ClientOpts, Failure};
use crate::audit::chain::{self, Line, Verified};
use crate::config::NodeConfig;

pub(crate) fn run(
    config: Option<&Path>,
    files: &[PathBuf],
    peers: bool,
    client: &ClientOpts,
) -> Result<ExitCode, Failure> {
    let config = config.map(NodeConfig::load).transpose()?;
    if !files.is_empty() {
        return exported(config.as_ref(), files);
    }
    let config = config.ok_or_else(|| {
        Failure(
            ExitCode::from(2),
            "give --config (the node's trail) or --file (an exported copy)".into(),
        )
    })?;
    let db = open_stopped(&config)?;
    let tree = db.open_tree("audit").map_err(anyhow::Error::from)?;
    let meta = db.open_tree("audit_meta").map_err(anyhow::Error::from)?;
    let checkpoint = crate::audit::retention::checkpoint(&meta)?;
    let signers = crate::state::statement::Signers::new(&config.members)?;
    let verified =
        match chain::verify_store(&tree, checkpoint.as_ref(), Some((config.id, &signers))) {
            Ok(v) => v,
            Err(broken) => {
                println!("audit trail BROKEN: {broken}");
                return Ok(ExitCode::from(1));
            }
        };
    if peers {
        let breaks =
            super::audit_peers::check(&config, client, &tree, checkpoint.as_ref(), &verified)?;
        if !breaks.is_empty() {
            for b in &breaks {
                println!("audit trail BROKEN: {b}");
            }
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "audit trail intact: {}, signatures verified{}{}",
        span(&verified),
        unsigned(&verified),
        if peers {
            ", consistent with the heads peers recorded"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The trail needs no passphrase: it holds hashes, never secrets. A node stopped a moment ago
/// may hold its lock a few seconds more; a running one, for good.
fn open_stopped(config: &NodeConfig) -> anyhow::Result<sled::Db> {
    crate::store::open_db_within(
        &config.data_dir,
        crate::store::DEFAULT_CACHE_BYTES,
        std::time::Duration::from_secs(5),
    )
    .with_context(|| {
        format!(
            "is the node of {} still running?",
            config.data_dir.display()
        )
    })
}

fn span(v: &Verified) -> String {
    match v.checkpoint {
        Some(cp) => format!(
            "{} entries after the signed checkpoint at entry {cp} (entries {}..={})",
            v.entries - cp,
            cp + 1,
            v.entries
        ),
        None if v.first > 1 => format!(
            "entries {}..={} (the copy starts at entry {})",
            v.first, v.entries, v.first
        ),
        None => format!("{} entries", v.entries),
    }
}

fn unsigned(v: &Verified) -> String {
    match v.unsigned {
        0 => String::new(),
        n => format!(" ({n} written before entries were signed)"),
    }
}

fn read_lines(files: &[PathBuf]) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    for path in files {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        for (i, text) in std::io::BufReader::new(file).lines().enumerate() {
            lines.push(Line {
                source: path.display().to_string(),
                number: i + 1,
                text: text.with_context(|| format!("reading {}", path.display()))?,
            });
        }
    }
    Ok(lines)
}

fn exported(config: Option<&NodeConfig>, files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let lines = read_lines(files)?;
    let signers = config
        .map(|c| crate::state::statement::Signers::new(&c.members))
        .transpose()?;
    let checked = chain::verify_exported(lines, signers.as_ref(), config.map(|c| c.id));
    let (node, verified) = match checked {
        Ok(v) => v,
        Err(broken) => {
            println!("exported audit trail BROKEN: {broken}");
            return Ok(ExitCode::from(1));
        }
    };
    // With the node's store at hand, the copy must hold the entry its checkpoint stands for.
    let mut joined = String::new();
    if let Some(config) = config {
        if let Ok(db) = open_stopped(config) {
            let meta = db.open_tree("audit_meta").map_err(anyhow::Error::from)?;
            if let Some(cp) = crate::audit::retention::checkpoint(&meta)? {
                let lines = read_lines(files)?;
                let at_cut = lines.iter().find_map(|l| {
                    let e: crate::audit::ExportedEntry = serde_json::from_str(&l.text).ok()?;
                    (e.entry.seq == cp.seq).then_some(e.entry.hash)
                });
                match at_cut {
                    Some(hash) if hash == cp.hash => {
                        joined = format!(", joins the store's checkpoint at entry {}", cp.seq)
                    }
                    Some(_) => {
                        println!(
                            "exported audit trail BROKEN: entry {}: its hash differs from the store's signed checkpoint",
                            cp.seq
                        );
                        return Ok(ExitCode::from(1));
                    }
                    None => {}
                }
            }
        }
    }
    println!(
        "exported audit trail of node {node} intact: {}{}{}{joined}",
        span(&verified),
        if signers.is_some() {
            ", signatures verified"
        } else {
            " (chain only: give --config to check signatures)"
        },
        unsigned(&verified),
    );
    Ok(ExitCode::SUCCESS)
}
