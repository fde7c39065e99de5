//! Client and policy changes (issue #5): admin-signed requests that every node checks itself
//! and applies in the same order, as numbered entries of a replicated admin log.
//!
//! The coordinator asks every node to prepare change `seq` (each verifies the signed request
//! and the caller's authority against its own state, which must be at `seq - 1`); only when
//! all have, it tells them to commit. A node that missed a commit is behind: it notices when
//! a coordinator's next request carries a higher sequence number and fetches the entries it
//! lacks, verifying each admin signature again, before it serves; it never serves a key under
//! a policy older than the coordinator's.

pub mod coordinator;
pub mod participant;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use api::{ClientInfo, KeyPolicy, Role};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::audit::{hex_sha256, Record};
use crate::auth::policy::{self, Permission};
use crate::auth::{registry, AuthError, Caller, ClientRequest};
use crate::node::Node;
use crate::store::Store;

/// One applied change: its number and the signed request it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEntry {
    pub seq: u64,
    pub request: ClientRequest,
}

/// What a signed admin request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutClient(ClientInfo),
    RemoveClient(String),
    SetPolicy {
        key: String,
        policy: KeyPolicy,
    },
    /// Erase every share of the key; its public data stays, marked retired.
    RetireKey(String),
}

impl Change {
    /// Reads the change from the request itself, so no node relies on another's reading.
    pub fn of(request: &ClientRequest) -> Result<Change, String> {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "clients"]) => serde_json::from_slice(&request.body)
                .map(Change::PutClient)
                .map_err(|e| format!("invalid client: {e}")),
            ("DELETE", ["v1", "clients", name]) => Ok(Change::RemoveClient(name.to_string())),
            ("DELETE", ["v1", "keys", key]) => Ok(Change::RetireKey(key.to_string())),
            ("PUT", ["v1", "keys", key, "policy"]) => serde_json::from_slice(&request.body)
                .map(|policy| Change::SetPolicy {
                    key: key.to_string(),
                    policy,
                })
                .map_err(|e| format!("invalid policy: {e}")),
            (method, _) => Err(format!(
                "{method} {} is not a client or policy change",
                request.path
            )),
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Change::PutClient(_) => "client.put",
            Change::RemoveClient(_) => "client.remove",
            Change::SetPolicy { .. } => "policy.set",
            Change::RetireKey(_) => "key.retire",
        }
    }
}

/// Checks that `caller` may make `change` given this node's current state.
pub fn authorize(node: &Node, caller: &Caller, change: &Change) -> Result<(), AuthError> {
    let admin_only = || {
        if caller.has_role(Role::Admin) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "client {} is not an admin",
                caller.name()
            )))
        }
    };
    match change {
        Change::PutClient(client) => {
            admin_only()?;
            registry::validate(client).map_err(AuthError::Malformed)?;
            let mut after = node.clients.read().clone();
            after.insert(client.name.clone(), client.clone());
            if !registry::has_admin(&after) {
                return Err(AuthError::Forbidden(
                    "the cluster would have no admin left".into(),
                ));
            }
            Ok(())
        }
        Change::RemoveClient(name) => {
            admin_only()?;
            let mut after = node.clients.read().clone();
            if after.remove(name).is_none() {
                return Err(AuthError::Malformed(format!("no client named {name}")));
            }
            if !registry::has_admin(&after) {
                return Err(AuthError::Forbidden(
                    "the cluster would have no admin left".into(),
                ));
            }
            Ok(())
        }
        Change::SetPolicy { key, policy } => {
            policy::validate(policy).map_err(AuthError::Malformed)?;
            may_manage(node, caller, key)
        }
        Change::RetireKey(key) => may_manage(node, caller, key),
    }
}

/// Whether `caller` may manage `key` by this node's policy of it.
fn may_manage(node: &Node, caller: &Caller, key: &str) -> Result<(), AuthError> {
    match node.policy(key) {
        Some(current) => policy::check(&current, key, caller, Permission::Manage),
        // A node outside the key's participants holds nothing to protect; it records the
        // change only to keep its sequence in step.
        None if caller.has_role(Role::Admin) => Ok(()),
        None => Err(AuthError::Forbidden(format!(
            "client {} may not manage key {key}",
            caller.name()
        ))),
    }
}

/// The node's place in the admin log and the change it holds prepared.
pub struct AdminState {
    seq: AtomicU64,
    pub(crate) staged: Mutex<Option<Staged>>,
    /// Serialises applying, so catch-up and commits never interleave.
    pub(crate) applying: tokio::sync::Mutex<()>,
}

pub(crate) struct Staged {
    pub coordinator: u16,
    pub entry: AdminEntry,
    pub change: Change,
    pub caller: String,
    pub at: Instant,
}

impl AdminState {
    pub fn open(store: &Store) -> anyhow::Result<AdminState> {
        let seq = match store.admin_log().last()? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into()?),
            None => 0,
        };
        Ok(AdminState {
            seq: AtomicU64::new(seq),
            staged: Mutex::new(None),
            applying: tokio::sync::Mutex::new(()),
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }
}

/// Applies a verified change as entry `entry.seq`, durably, and audits it.
pub(crate) fn apply(
    node: &Node,
    entry: &AdminEntry,
    change: &Change,
    caller: &str,
    role: &'static str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        entry.seq == node.admin_seq() + 1,
        "change {} does not follow {}",
        entry.seq,
        node.admin_seq()
    );
    let store = &node.store;
    let mut key = None;
    match change {
        Change::PutClient(client) => {
            registry::put(store, client)?;
            node.clients
                .write()
                .insert(client.name.clone(), client.clone());
        }
        Change::RemoveClient(name) => {
            registry::remove(store, name)?;
            node.clients.write().remove(name);
        }
        Change::SetPolicy { key: name, policy } => {
            if node.policies.read().contains_key(name) {
                store
                    .policies()
                    .insert(name.as_bytes(), serde_json::to_vec(policy)?)?;
                node.policies.write().insert(name.clone(), policy.clone());
            }
            key = Some(name.clone());
        }
        Change::RetireKey(name) => {
            retire(node, name, entry.request.authorization.timestamp_ms)?;
            key = Some(name.clone());
        }
    }
    store
        .admin_log()
        .insert(entry.seq.to_be_bytes(), serde_json::to_vec(entry)?)?;
    store.admin_log().flush()?;
    node.admin.seq.store(entry.seq, Ordering::SeqCst);
    // A change prepared here and then learnt through catch-up is no longer pending.
    node.admin
        .staged
        .lock()
        .take_if(|s| s.entry.seq <= entry.seq);
    node.audit.append(Record {
        client: Some(caller.to_string()),
        action: change.action(),
        key,
        role,
        details: serde_json::json!({
            "admin_seq": entry.seq,
            "request_sha256": hex_sha256(&entry.request.body),
            "path": entry.request.path,
        }),
        outcome: "ok",
        culprits: vec![],
    })?;
    tracing::info!(
        seq = entry.seq,
        action = change.action(),
        client = caller,
        "admin change applied"
    );
    Ok(())
}

/// Erases this node's share of `name` and marks its record retired at `at_ms` (the signed
/// request's time, so every node records the same).
fn retire(node: &Node, name: &str, at_ms: u64) -> anyhow::Result<()> {
    let Some(mut record) = node.store.record(name)? else {
        // Not a key this node knows: nothing to erase.
        return Ok(());
    };
    if record.state == api::KeyState::Retired {
        return Ok(());
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms);
    record.state = api::KeyState::Retired;
    record.retired_at = Some(humantime::format_rfc3339_seconds(at).to_string());
    let policy = node.policy(name).unwrap_or_default();
    let mut keys = node.keys.write();
    node.store.put_public(&record, &policy)?;
    // Dropping the last reference zeroizes the share (frost's KeyPackage does on drop).
    keys.remove(name);
    Ok(())
}

/// Fetches and applies the changes this node lacks from `peer`, checking every admin
/// signature and authority again. Returns the sequence number reached.
pub async fn catch_up(node: &std::sync::Arc<Node>, peer: u16) -> anyhow::Result<u64> {
    use crate::peer::{transport, PeerRequest, PeerResponse};
    let _applying = node.admin.applying.lock().await;
    let since = node.admin_seq();
    let answer = transport::call(
        node,
        peer,
        &crate::random_id(),
        &PeerRequest::AdminLog { since },
        None,
    )
    .await?;
    let PeerResponse::AdminEntries { entries } = answer else {
        anyhow::bail!("node {peer} did not send its admin log");
    };
    for entry in entries {
        if entry.seq <= node.admin_seq() {
            continue;
        }
        let caller = verify_logged(node, &entry)
            .map_err(|e| anyhow::anyhow!("admin log entry {} from node {peer}: {e}", entry.seq))?;
        let change = Change::of(&entry.request).map_err(anyhow::Error::msg)?;
        apply(node, &entry, &change, caller.name(), "catch-up")?;
    }
    Ok(node.admin_seq())
}

/// When a participant refused because its client and policy state differs from this node's,
/// fetches what it has that this node lacks (if anything), in the background.
pub fn catch_up_if_stale(
    node: &std::sync::Arc<Node>,
    peer: u16,
    answer: &crate::peer::PeerResponse,
) {
    use crate::peer::{PeerErrorCode, PeerResponse};
    if let PeerResponse::Error {
        code: PeerErrorCode::StalePolicy,
        ..
    } = answer
    {
        spawn_catch_up(node, peer);
    }
}

/// [`catch_up`] from `peer` in the background.
pub fn spawn_catch_up(node: &std::sync::Arc<Node>, peer: u16) {
    let node = node.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = catch_up(&node, peer).await {
            tracing::warn!(peer, error = %e, "catching up on admin changes failed");
        }
    });
}

/// A logged change is checked like a live one, except for freshness: it may be old.
fn verify_logged(node: &Node, entry: &AdminEntry) -> Result<Caller, String> {
    let sig = &entry.request.authorization;
    if entry.request.admin_seq + 1 != entry.seq {
        return Err("sequence numbers do not follow".into());
    }
    let client = node
        .clients
        .read()
        .get(&sig.client)
        .cloned()
        .ok_or_else(|| format!("unknown client {}", sig.client))?;
    let key: [u8; 32] = hex::decode(&client.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("client key is invalid")?;
    sig.verify(
        &key,
        &entry.request.method,
        &entry.request.path,
        &entry.request.body,
    )?;
    let caller = Caller {
        client,
        approvers: vec![],
    };
    let change = Change::of(&entry.request)?;
    authorize(node, &caller, &change).map_err(|e| e.to_string())?;
    Ok(caller)
}
