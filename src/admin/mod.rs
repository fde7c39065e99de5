//! Client and policy changes: admin-signed requests that every node checks itself and applies
//! in the same order, as entries of a replicated admin log (DESIGN.md §11).
//!
//! Each entry is bound to its position (seq and the previous entry's hash, [`entry`]). The
//! coordinator proposes an entry; each node checks the signed request against its own state
//! and votes for at most one entry per seq, persisting the vote before it signs ([`vote`]).
//! With `q` votes (`[admin] quorum`, default n) the coordinator has a certificate and every
//! node applies the entry on seeing it, whichever peer hands it over; without, the coordinator
//! signs an abort ([`proposal`]) that lets the voters release their votes. A node that missed
//! entries fetches certified ones from any peer ([`sync`]) and serves no key operation before
//! it has heard enough peers' heads. The (client, nonce) of every applied request is kept, so
//! nothing applies twice whatever position it is offered at.

pub mod coordinator;
pub mod participant;
pub mod proposal;
pub mod requests;
pub mod sync;
pub mod vote;

use std::sync::atomic::Ordering;

use api::{ClientInfo, KeyPolicy, Role};

use crate::audit::{hex_sha256, Record};
use crate::auth::policy::{self, Permission};
use crate::auth::{AuthError, Caller, ClientRequest};
use crate::node::Node;
pub use crate::state::admin_log::{AdminEntry, AdminState, Certificate, CertifiedEntry, Head};
use crate::store::clients as registry;
use crate::store::Store;
pub use sync::{catch_up, catch_up_if_stale, spawn_catch_up};

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
    /// A decryption request for approvers to review; `id` and `content_sha256` are derived
    /// from the signed request ([`api::request_id`], [`api::content_sha256`]).
    CreateDecryptRequest {
        key: String,
        id: String,
        create: api::CreateDecryptRequest,
        content_sha256: String,
        at_ms: u64,
    },
    ReviewDecryptRequest {
        id: String,
        approve: bool,
        review: api::ReviewDecryptRequest,
        at_ms: u64,
    },
    /// The requester's execution, named by its signed request's nonce.
    ExecuteDecryptRequest {
        id: String,
        nonce: String,
        at_ms: u64,
    },
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
            ("POST", ["v1", "keys", key, "decrypt-requests"]) => {
                let create = crate::state::decrypt_requests::parse_create(
                    &request.body,
                    crate::state::decrypt_requests::MAX_RECORDS,
                )?;
                let sig = &request.authorization;
                Ok(Change::CreateDecryptRequest {
                    key: key.to_string(),
                    id: api::request_id(&sig.client, &sig.nonce),
                    create,
                    content_sha256: api::content_sha256(key, &request.body),
                    at_ms: sig.timestamp_ms,
                })
            }
            ("POST", ["v1", "decrypt-requests", id, verb @ ("approve" | "deny")]) => {
                Ok(Change::ReviewDecryptRequest {
                    id: id.to_string(),
                    approve: *verb == "approve",
                    review: crate::state::decrypt_requests::parse_review(&request.body)?,
                    at_ms: request.authorization.timestamp_ms,
                })
            }
            ("POST", ["v1", "decrypt-requests", id, "execute"]) => {
                let _: api::ExecuteDecryptRequest = serde_json::from_slice(&request.body)
                    .map_err(|e| format!("invalid execute request: {e}"))?;
                Ok(Change::ExecuteDecryptRequest {
                    id: id.to_string(),
                    nonce: request.authorization.nonce.clone(),
                    at_ms: request.authorization.timestamp_ms,
                })
            }
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
            Change::CreateDecryptRequest { .. } => "decrypt_request.create",
            Change::ReviewDecryptRequest { approve: true, .. } => "decrypt_request.approve",
            Change::ReviewDecryptRequest { approve: false, .. } => "decrypt_request.deny",
            Change::ExecuteDecryptRequest { .. } => "decrypt_request.execute",
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
            registry::key_is_unclaimed(&node.clients.read(), client)
                .map_err(AuthError::Malformed)?;
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
        Change::CreateDecryptRequest { .. }
        | Change::ReviewDecryptRequest { .. }
        | Change::ExecuteDecryptRequest { .. } => requests::authorize(node, caller, change),
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

/// Peers a starting node must hear before it serves: n − q + 1, so that every quorum of q
/// that certified an entry includes at least one of them.
pub fn peers_to_hear(node: &Node) -> usize {
    let n = node.members.len();
    (n + 1)
        .saturating_sub(node.config.admin_quorum())
        .min(n - 1)
}

/// Whether the (client, nonce) of a signed request was applied already, and at which seq.
pub fn applied_at(store: &Store, client: &str, nonce: &str) -> anyhow::Result<Option<u64>> {
    Ok(store
        .admin_applied()
        .get(applied_key(client, nonce))?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
}

fn applied_key(client: &str, nonce: &str) -> Vec<u8> {
    let mut k = client.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(nonce.as_bytes());
    k
}

/// The entry this node applied at `seq`, with its certificate.
pub fn logged(store: &Store, seq: u64) -> anyhow::Result<Option<CertifiedEntry>> {
    match store.admin_log().get(seq.to_be_bytes())? {
        Some(json) => Ok(Some(store.read_tagged(
            crate::store::Tagged::AdminLog,
            &seq.to_be_bytes(),
            &json,
        )?)),
        None => Ok(None),
    }
}

/// Why a certified entry was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It is beyond the next position: this node lacks entries before it (no one to blame).
    Behind(String),
    /// It is not believable: the node that handed it over is named.
    Evidence(String),
    /// This node failed to store it.
    Internal(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Behind(m) | Refusal::Evidence(m) | Refusal::Internal(m) => f.write_str(m),
        }
    }
}

/// Whether an entry was new here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    Already,
}

/// Applies `entry` if `certificate` proves it committed and it chains onto this node's head,
/// after checking the admin's signature and authority again (not freshness: it may be old)
/// and that its (client, nonce) never applied (DESIGN.md §11). The only way an entry enters
/// the log, live or in catch-up.
pub fn apply_certified(
    node: &Node,
    entry: &AdminEntry,
    certificate: &Certificate,
    role: &'static str,
) -> Result<Applied, Refusal> {
    let internal = |e: anyhow::Error| Refusal::Internal(e.to_string());
    let mut head = node.admin.head.lock();
    if entry.seq <= head.seq {
        // Already decided here: the same entry again is harmless, another one is a fork.
        let own = logged(&node.store, entry.seq).map_err(internal)?;
        return match own {
            Some(own) if own.entry.hash() == entry.hash() => Ok(Applied::Already),
            _ => Err(Refusal::Evidence(format!(
                "entry {} conflicts with the entry this node applied at that seq",
                entry.seq
            ))),
        };
    }
    if entry.seq > head.seq + 1 {
        return Err(Refusal::Behind(format!(
            "entry {} is beyond node {}'s head {}",
            entry.seq,
            node.id(),
            head.seq
        )));
    }
    head.chains(entry).map_err(Refusal::Evidence)?;
    certificate
        .verify_for(entry, &node.signers, node.config.admin_quorum())
        .map_err(Refusal::Evidence)?;
    // A certificate of an entry its coordinator had aborted (this node released its vote on
    // that signed abort): the coordinator signed both, proven by its own two signatures.
    if let Some(a) = vote::aborted(&node.store, entry.seq, &entry.hash()).map_err(internal)? {
        if a.coordinator == certificate.coordinator {
            let reason = format!(
                "node {} signed an abort of entry {} and now a certificate of it: it equivocated",
                a.coordinator, entry.seq
            );
            node.metrics.observe_culprits(
                "admin",
                &[api::Excluded {
                    node: a.coordinator,
                    reason: reason.clone(),
                }],
            );
            return Err(Refusal::Evidence(reason));
        }
    }
    let (client, nonce) = entry.client_nonce();
    if let Some(at) = applied_at(&node.store, &client, &nonce).map_err(internal)? {
        return Err(Refusal::Evidence(format!(
            "the request of entry {} (client {client}, nonce {nonce}) was applied as entry {at}",
            entry.seq
        )));
    }
    let caller = verify_logged(node, entry)
        .map_err(|e| Refusal::Evidence(format!("entry {}: {e}", entry.seq)))?;
    let change = Change::of(&entry.request).map_err(Refusal::Evidence)?;
    apply(node, entry, certificate, &change, caller.name(), role).map_err(internal)?;
    *head = Head {
        seq: entry.seq,
        hash: entry.hash(),
    };
    node.admin.seq.store(entry.seq, Ordering::SeqCst);
    Ok(Applied::Now)
}

/// Checks a prepared entry against the head under the head lock and, if this node may vote
/// for it (no vote for another entry or coordinator at that seq), persists the vote before
/// signing it. Returns the vote's signature.
pub(crate) fn vote_for(
    node: &Node,
    entry: &AdminEntry,
    coordinator: u16,
) -> Result<String, VoteRefusal> {
    let head = node.admin.head.lock();
    if entry.seq <= head.seq || entry.seq > head.seq + 1 {
        return Err(VoteRefusal::Stale(format!(
            "node {} is at entry {}, the coordinator proposes entry {}",
            node.id(),
            head.seq,
            entry.seq
        )));
    }
    head.chains(entry).map_err(VoteRefusal::Fork)?;
    let hash = entry.hash();
    match vote::held(&node.store, entry.seq) {
        Ok(Some(v)) if !v.is_for(&hash, coordinator) => {
            return Err(VoteRefusal::Conflict(format!(
                "node {} voted for another entry {} (coordinator node {}) and holds that vote until it is decided; try again",
                node.id(),
                entry.seq,
                v.coordinator
            )))
        }
        Ok(Some(_)) => {}
        Ok(None) => vote::hold(
            &node.store,
            &vote::Vote {
                entry: entry.clone(),
                coordinator,
                at_ms: crate::auth::now_ms(),
            },
        )
        .map_err(|e| VoteRefusal::Internal(e.to_string()))?,
        Err(e) => return Err(VoteRefusal::Internal(e.to_string())),
    }
    Ok(crate::state::admin_log::sign_vote(
        &node.identity,
        entry,
        coordinator,
    ))
}

/// Why a node does not vote for a prepared entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VoteRefusal {
    /// Not the next position here: one of the two is behind.
    Stale(String),
    /// The next position but another previous hash: the coordinator's log is not this node's.
    Fork(String),
    /// Already voted for another entry or coordinator at that seq.
    Conflict(String),
    Internal(String),
}

/// Releases the vote at `seq` on its coordinator's abort of exactly that (seq, entry), after
/// checking the abort's signature; returns whether a vote was released.
pub fn release_on_abort(
    node: &Node,
    seq: u64,
    entry_hash: &str,
    signature: &str,
) -> Result<bool, String> {
    let _head = node.admin.head.lock();
    let Some(v) = vote::held(&node.store, seq).map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    if v.entry.hash() != entry_hash {
        return Ok(false);
    }
    crate::state::admin_log::verify_abort(
        &node.signers,
        seq,
        entry_hash,
        v.coordinator,
        signature,
    )?;
    vote::release_aborted(&node.store, &v, signature).map_err(|e| e.to_string())?;
    tracing::info!(
        seq,
        coordinator = v.coordinator,
        "admin vote released on abort"
    );
    Ok(true)
}

/// Audits a refused admin message and names `culprit` in the metrics; the peer's answer.
pub(crate) fn blame(
    node: &Node,
    culprit: u16,
    action: &'static str,
    entry: Option<&AdminEntry>,
    reason: &str,
) -> crate::peer::PeerResponse {
    let message = format!("node {} refuses: {reason}", node.id());
    node.metrics.observe_culprits(
        "admin",
        &[api::Excluded {
            node: culprit,
            reason: message.clone(),
        }],
    );
    let record = Record {
        client: entry.map(|e| e.request.authorization.client.clone()),
        action,
        key: None,
        role: "participant",
        details: serde_json::json!({
            "admin_seq": entry.map(|e| e.seq),
            "entry_sha256": entry.map(AdminEntry::hash),
            "from": culprit,
            "reason": reason,
        }),
        outcome: "refused",
        culprits: vec![culprit],
    };
    if let Err(e) = node.audit.append(record) {
        tracing::error!(error = %e, "appending to the audit trail failed");
    }
    tracing::warn!(culprit, action, reason, "admin message refused");
    crate::peer::PeerResponse::error(crate::peer::PeerErrorCode::Protocol, message, Some(culprit))
}

/// Applies a verified change as entry `entry.seq`, durably, and audits it. The caller holds
/// the head lock and has checked the chain and the certificate.
fn apply(
    node: &Node,
    entry: &AdminEntry,
    certificate: &Certificate,
    change: &Change,
    caller: &str,
    role: &'static str,
) -> anyhow::Result<()> {
    let store = &node.store;
    let mut key = None;
    let mut more = serde_json::Value::Null;
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
                let stored =
                    store.write_tagged(crate::store::Tagged::Policies, name.as_bytes(), policy)?;
                store.policies().insert(name.as_bytes(), stored)?;
                node.policies.write().insert(name.clone(), policy.clone());
            }
            key = Some(name.clone());
        }
        Change::RetireKey(name) => {
            retire(node, name, entry.request.authorization.timestamp_ms)?;
            key = Some(name.clone());
        }
        Change::CreateDecryptRequest { .. }
        | Change::ReviewDecryptRequest { .. }
        | Change::ExecuteDecryptRequest { .. } => {
            (key, more) = requests::apply(node, entry.seq, caller, change)?;
        }
    }
    let logged = CertifiedEntry {
        entry: entry.clone(),
        certificate: certificate.clone(),
    };
    let seq = entry.seq.to_be_bytes();
    let stored = store.write_tagged(crate::store::Tagged::AdminLog, &seq, &logged)?;
    store.admin_log().insert(seq, stored)?;
    let (client, nonce) = entry.client_nonce();
    store
        .admin_applied()
        .insert(applied_key(&client, &nonce), &entry.seq.to_be_bytes())?;
    // The position is decided: any vote held at or below it is moot.
    vote::release_through(store, entry.seq)?;
    store.flush()?;
    let mut details = serde_json::json!({
        "admin_seq": entry.seq,
        "request_sha256": hex_sha256(&entry.request.body),
        "entry_sha256": entry.hash(),
        "coordinator": certificate.coordinator,
        "voters": certificate.votes.keys().collect::<Vec<_>>(),
        "path": entry.request.path,
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (details.as_object_mut(), more) {
        all.extend(extra);
    }
    node.audit.append(Record {
        client: Some(caller.to_string()),
        action: change.action(),
        key,
        role,
        details,
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
    // Dropping the last reference zeroizes the share (frost's KeyPackage does on drop); the
    // previous generation's share, if still kept, goes with it.
    keys.remove(name);
    node.previous_keys.write().remove(name);
    Ok(())
}

/// A logged change is checked like a live one, except for freshness: it may be old.
/// The certificate, not the request's unsigned `admin_seq`, vouches for the position.
pub fn verify_logged(node: &Node, entry: &AdminEntry) -> Result<Caller, String> {
    let sig = &entry.request.authorization;
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
