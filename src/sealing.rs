//! What unseals a node's store, from its config: the passphrase, or the PKCS#11 token of
//! `[seal]` with its PIN (DESIGN.md §8). Secrets are read here, when the store is opened, and
//! never kept in the config.

use anyhow::{anyhow, Context};

use crate::config::{NodeConfig, SealKind};
use crate::store::{TokenSeal, Unsealer};

/// The token seal: `[seal]`'s settings with the PIN from `KEYQUORUM_SEAL_PIN` or the PIN file.
pub fn token_seal(config: &NodeConfig) -> anyhow::Result<TokenSeal> {
    let (module, token_label, key_label) = config.token_settings()?;
    Ok(TokenSeal {
        module,
        token_label,
        key_label,
        pin: pin(config)?,
    })
}

/// The token that holds the node's identity key, when `[seal] identity_on_token` says so; the
/// key's label comes from the identity file.
pub fn identity_token(config: &NodeConfig) -> anyhow::Result<Option<TokenSeal>> {
    if !config.seal.identity_on_token {
        return Ok(None);
    }
    let (module, token_label) = config.token_location()?;
    Ok(Some(TokenSeal {
        module,
        token_label,
        key_label: String::new(),
        pin: pin(config)?,
    }))
}

/// The token's user PIN: `KEYQUORUM_SEAL_PIN`, else `[seal] pin_file`.
fn pin(config: &NodeConfig) -> anyhow::Result<zeroize::Zeroizing<String>> {
    Ok(match std::env::var("KEYQUORUM_SEAL_PIN") {
        Ok(p) if !p.is_empty() => zeroize::Zeroizing::new(p),
        _ => {
            let path = config.seal.pin_file.as_ref().ok_or_else(|| {
                anyhow!("no token PIN: set KEYQUORUM_SEAL_PIN or [seal] pin_file")
            })?;
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read PIN file {}", path.display()))?,
            );
            zeroize::Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
        }
    })
}

/// What unseals the store as `kind` says: the passphrase or the token.
pub fn unsealer(config: &NodeConfig, kind: SealKind) -> anyhow::Result<Unsealer> {
    Ok(match kind {
        SealKind::Passphrase => Unsealer::Passphrase(config.passphrase()?),
        SealKind::Pkcs11 => Unsealer::Token(token_seal(config)?),
    })
}
