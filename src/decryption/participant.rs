//! A node's partial decryptions: validate each ephemeral point, compute s_i·E with a DLEQ proof,
//! and seal the batch to the coordinator, since whoever holds t partials can decrypt.

use std::sync::Arc;

use keyshares::decrypt::{partial_decrypt, ShareScalar};
use keyshares::KeyShare;

use super::{partials_context, scheme_of};
use crate::node::Node;
use crate::peer::messages::PartialOutcome;
use crate::peer::{PeerErrorCode, PeerResponse};

fn error(message: impl Into<String>) -> PeerResponse {
    PeerResponse::Error {
        code: PeerErrorCode::Invalid,
        message: message.into(),
        culprit: None,
    }
}

pub fn partials(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    ephemerals: &[Vec<u8>],
) -> PeerResponse {
    let Some(active) = node.key(key) else {
        return error(format!("node {} holds no key {key}", node.id()));
    };
    let Some(scheme) = scheme_of(active.record.algorithm) else {
        return error(format!("key {key} is a signing key; it cannot decrypt"));
    };
    if ephemerals.is_empty() || ephemerals.len() > super::MAX_BATCH {
        return error(format!(
            "a decryption batch takes 1 to {} ciphertexts",
            super::MAX_BATCH
        ));
    }
    let Some(coordinator_key) = node
        .members
        .get(&from)
        .and_then(|m| hex::decode(&m.seal_public_key).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
    else {
        return error(format!("no sealing key for node {from}"));
    };
    let share = match &active.share {
        KeyShare::Ed25519(k) => ShareScalar::from_ed25519(k),
        KeyShare::Secp256k1(k) => ShareScalar::from_secp256k1(k),
    };
    let corrupt = node.faults().corrupt_partials;
    let mut rng = rand::rngs::OsRng;
    let outcomes: Vec<PartialOutcome> = ephemerals
        .iter()
        .map(|e| match partial_decrypt(scheme, &share, e, &mut rng) {
            Ok(mut p) => {
                if corrupt {
                    if let Some(b) = p.proof.first_mut() {
                        *b ^= 1;
                    }
                }
                PartialOutcome::Partial(p)
            }
            Err(e) => PartialOutcome::Error(e.to_string()),
        })
        .collect();
    let Ok(plain) = serde_json::to_vec(&outcomes) else {
        return error("cannot encode partials");
    };
    match keyshares::seal::seal(
        &coordinator_key,
        &partials_context(session, node.id(), from),
        &plain,
        &mut rng,
    ) {
        Ok(sealed) => PeerResponse::Partials { sealed },
        Err(e) => error(e.to_string()),
    }
}
