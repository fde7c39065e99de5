//! A node's side of a client or policy change: prepare (verify and hold), commit, abort, and
//! serve its log to nodes catching up.

use std::sync::Arc;
use std::time::Instant;

use super::{apply, authorize, AdminEntry, Change, Staged};
use crate::auth::{authenticate, ClientRequest};
use crate::node::Node;
use crate::peer::{PeerErrorCode, PeerResponse};

fn error(code: PeerErrorCode, message: impl Into<String>) -> PeerResponse {
    PeerResponse::Error {
        code,
        message: message.into(),
        culprit: None,
    }
}

pub fn prepare(node: &Arc<Node>, from: u16, seq: u64, request: ClientRequest) -> PeerResponse {
    if seq != request.admin_seq + 1 {
        return error(
            PeerErrorCode::Invalid,
            "change number does not follow the coordinator's",
        );
    }
    let caller = match authenticate(node, from, &request) {
        Ok(c) => c,
        Err(e) => return crate::auth::peer_refusal(node, &e),
    };
    let change = match Change::of(&request) {
        Ok(c) => c,
        Err(e) => return error(PeerErrorCode::Invalid, e),
    };
    if let Err(e) = authorize(node, &caller, &change) {
        return crate::auth::peer_refusal(node, &e);
    }
    let mut staged = node.admin.staged.lock();
    if let Some(s) = staged.as_ref() {
        // A prepared change that was since applied (through catch-up) is no longer pending.
        let busy =
            s.at.elapsed() < node.config.timeouts.operation() && s.entry.seq > node.admin_seq();
        if busy && (s.coordinator != from || s.entry.seq != seq) {
            return error(
                PeerErrorCode::Conflict,
                format!("node {} is preparing another change; try again", node.id()),
            );
        }
    }
    *staged = Some(Staged {
        coordinator: from,
        entry: AdminEntry { seq, request },
        change,
        caller: caller.name().to_string(),
        at: Instant::now(),
    });
    PeerResponse::Ack
}

pub fn commit(node: &Arc<Node>, from: u16, seq: u64) -> PeerResponse {
    let Some(staged) = node
        .admin
        .staged
        .lock()
        .take_if(|s| s.coordinator == from && s.entry.seq == seq)
    else {
        return error(
            PeerErrorCode::UnknownSession,
            format!(
                "node {} holds no prepared change {seq} from node {from}",
                node.id()
            ),
        );
    };
    match apply(
        node,
        &staged.entry,
        &staged.change,
        &staged.caller,
        "participant",
    ) {
        Ok(()) => PeerResponse::Ack,
        Err(e) => error(PeerErrorCode::Invalid, e.to_string()),
    }
}

pub fn abort(node: &Arc<Node>, from: u16, seq: u64) -> PeerResponse {
    node.admin
        .staged
        .lock()
        .take_if(|s| s.coordinator == from && s.entry.seq == seq);
    PeerResponse::Ack
}

/// The applied changes after `since` (at most 1000; a node far behind asks again).
pub fn log(node: &Arc<Node>, since: u64) -> PeerResponse {
    let entries: Result<Vec<AdminEntry>, String> = node
        .store
        .admin_log()
        .range((since + 1).to_be_bytes()..)
        .take(1000)
        .map(|item| {
            let (_, json) = item.map_err(|e| e.to_string())?;
            serde_json::from_slice(&json).map_err(|e| e.to_string())
        })
        .collect();
    match entries {
        Ok(entries) => PeerResponse::AdminEntries { entries },
        Err(e) => error(
            PeerErrorCode::Invalid,
            format!("reading the admin log: {e}"),
        ),
    }
}
