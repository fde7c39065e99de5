//! `keyquorum store rewrap`: moves a stopped node's data key between a passphrase and a
//! PKCS#11 token (DESIGN.md §8). The shares are not touched: only the data key's wrapping
//! changes, and the old wrapping stays in force until the new one is written and checked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::Failure;
use crate::config::{NodeConfig, SealKind};
use crate::store::{Store, StoreError};

#[derive(Subcommand)]
pub(crate) enum StoreCommand {
    /// Re-wrap a stopped node's data key by the token of its config's [seal] settings
    /// (`--to pkcs11`) or by its passphrase (`--to passphrase`), then set [seal] kind in the
    /// config to match. The old wrapping is read whatever the config's kind says.
    ///
    /// Example: keyquorum store rewrap --config cluster/node-1.toml --to pkcs11
    Rewrap {
        #[arg(long)]
        config: PathBuf,
        /// passphrase or pkcs11.
        #[arg(long)]
        to: String,
    },
}

fn failure(e: StoreError) -> Failure {
    Failure(ExitCode::from(2), e.to_string())
}

pub(crate) fn run(cmd: StoreCommand) -> Result<ExitCode, Failure> {
    let StoreCommand::Rewrap { config: path, to } = cmd;
    let to: SealKind = to.parse().map_err(|e| Failure(ExitCode::from(2), e))?;
    let config = NodeConfig::load(&path)?;
    // Everything the new wrapping needs is read, and the token logged in to, before the store
    // is opened.
    let target = crate::sealing::unsealer(&config, to)?;
    if let crate::store::Unsealer::Token(token) = &target {
        token.key_present().map_err(|e| failure(e.into()))?;
    }
    let store = Store::open_existing(&config.data_dir, |kind| {
        let kind: SealKind = kind.parse().map_err(anyhow::Error::msg)?;
        Ok(crate::sealing::unsealer(&config, kind)?)
    })
    .map_err(failure)?;
    let from = store.seal_kind().map_err(failure)?;
    store.rewrap(&target).map_err(failure)?;
    drop(store);
    println!(
        "node {}: the data key is now wrapped by {} (was {from})",
        config.id,
        to.as_str()
    );
    match set_config_kind(&path, to) {
        Ok(true) => println!("{}: [seal] kind = \"{}\"", path.display(), to.as_str()),
        Ok(false) => {}
        Err(e) => println!(
            "could not update {} ({e:#}): set [seal] kind = \"{}\" (or KEYQUORUM_SEAL_KIND) \
             before starting the node",
            path.display(),
            to.as_str()
        ),
    }
    if std::env::var("KEYQUORUM_SEAL_KIND").is_ok_and(|k| k != to.as_str()) {
        println!(
            "KEYQUORUM_SEAL_KIND overrides the config: set it to {} for the node",
            to.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets `[seal] kind` in the config file, keeping its comments and layout; false when it
/// already said so. Written aside and renamed, so the file is never half-written.
fn set_config_kind(path: &Path, kind: SealKind) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let current = doc
        .get("seal")
        .and_then(|s| s.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("passphrase");
    if current == kind.as_str() {
        return Ok(false);
    }
    if doc.get("seal").is_none() {
        doc["seal"] = toml_edit::table();
    }
    doc["seal"]["kind"] = toml_edit::value(kind.as_str());
    let aside = path.with_extension("toml.new");
    std::fs::write(&aside, doc.to_string())?;
    std::fs::set_permissions(&aside, std::fs::metadata(path)?.permissions())?;
    std::fs::rename(&aside, path)?;
    Ok(true)
}
