//! `keyquorum audit verify --peers`: checks a stopped node's trail against the signed heads of
//! it that the other members recorded (DESIGN.md §11), which a truncated or rewritten trail
//! cannot match.

use api::AuditEntry;

use super::{runtime, ClientOpts};
use crate::audit::heads::check_against;
use crate::audit::Verified;
use crate::config::NodeConfig;

/// The breaks found, one line each; an unreachable peer is a warning, not a break.
pub(crate) fn check(
    config: &NodeConfig,
    client: &ClientOpts,
    tree: &sled::Tree,
    checkpoint: Option<&api::AuditHead>,
    verified: &Verified,
) -> anyhow::Result<Vec<String>> {
    let rt = runtime()?;
    let signers = crate::state::statement::Signers::new(&config.members)?;
    let hash_at = |seq: u64| -> Option<String> {
        if let Some(cp) = checkpoint.filter(|cp| cp.seq == seq) {
            return Some(cp.hash.clone());
        }
        let json = tree.get(seq.to_be_bytes()).ok()??;
        serde_json::from_slice::<AuditEntry>(&json)
            .ok()
            .map(|e| e.hash)
    };
    let mut breaks = Vec::new();
    for member in config.members.iter().filter(|m| m.id != config.id) {
        let opts = ClientOpts {
            url: member.client_url.clone(),
            token_file: client.token_file.clone(),
            token: client.token.clone(),
            client_key: client.client_key.clone(),
            ca: client.ca.clone(),
            json: false,
        };
        let heads = match opts
            .client()
            .and_then(|c| Ok(rt.block_on(c.audit_heads())?))
        {
            Ok(h) => h,
            Err(e) => {
                eprintln!(
                    "warning: node {} ({}) not asked: {e:#}",
                    member.id, member.client_url
                );
                continue;
            }
        };
        let Some(recorded) = heads.peers.iter().find(|r| r.head.node == config.id) else {
            continue;
        };
        // A head the peer recorded counts only if this node signed it.
        let head = &recorded.head;
        if let Err(e) =
            crate::audit::heads::verify(&signers, config.id, head.seq, &head.hash, &head.signature)
        {
            eprintln!(
                "warning: node {} holds a head that does not verify: {e}",
                member.id
            );
            continue;
        }
        // Compacted away: the signed checkpoint after it vouches for that part of the chain.
        let compacted = checkpoint.is_some_and(|cp| head.seq < cp.seq);
        if !compacted {
            if let Err(e) = check_against(head, verified.entries, hash_at) {
                breaks.push(format!("node {} says: {e}", member.id));
            }
        }
        if let Some(c) = &recorded.conflict {
            breaks.push(format!(
                "node {} saw a {} of this trail: it recorded entry {} and later was shown entry {}",
                member.id, c.kind, c.recorded.seq, c.seen.seq
            ));
        }
    }
    Ok(breaks)
}
