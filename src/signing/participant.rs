//! A signer's side of FROST: commit to single-use nonces for the messages it is told about,
//! then sign exactly those messages, once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use api::Purpose;
use keyshares::sign::{self, Commitment, Nonces, Package, PackageSummary};
use keyshares::ProtocolError;

use crate::audit::hex_sha256;
use crate::auth::policy::Permission;
use crate::auth::{admit_key_operation, AuditedOperation, ClientRequest};
use crate::node::{ActiveKey, Node};
use crate::peer::{PeerErrorCode, PeerResponse, SignerCommitments};
use crate::store::curve_of;

/// Nonces bound to one signing session and its messages. Held in memory only; removed on use
/// or expiry, and frost zeroizes them on drop.
pub struct SignSession {
    /// The generation round 1 committed with: round 2 signs with the same share, whatever
    /// activation happened in between.
    key: Arc<ActiveKey>,
    coordinator: u16,
    messages: Vec<Vec<u8>>,
    nonces: Vec<Nonces>,
    pub started: Instant,
}

/// Nonces committed and not yet used, by signing session id.
#[derive(Default)]
pub struct SignSessions(pub parking_lot::Mutex<std::collections::HashMap<String, SignSession>>);

impl crate::sessions::RoleState for SignSessions {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.operation();
        self.0.lock().retain(|_, s| s.started.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// Nonces committed to ahead of time (RFC 9591 §5.1), by commitment id: each for one
/// coordinator and one generation of one key, usable once, kept in memory only (a restart
/// empties it), zeroized when dropped.
#[derive(Default)]
pub struct Presigned(pub parking_lot::Mutex<std::collections::HashMap<String, Prepared>>);

pub struct Prepared {
    coordinator: u16,
    /// The generation of the key the nonces were made for: the share is looked up when they
    /// sign, so a retired or replaced share is never kept alive here.
    key_session: String,
    nonces: Nonces,
    created: Instant,
}

/// How a signer refuses a preprocessed commitment it does not hold: the coordinator then
/// drops its pool of that signer instead of blaming it (a restart empties the signer's).
pub const UNKNOWN_COMMITMENT: &str = "unknown preprocessed commitment";

/// How long a preprocessed commitment waits to be used.
const PRESIGN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Most commitments a signer keeps for one coordinator and generation of a key.
const MAX_PRESIGNED: usize = 4096;
/// Most commitments one request may ask for.
const MAX_PRESIGN_BATCH: u32 = 256;

impl crate::sessions::RoleState for Presigned {
    fn expire(&self, _: &crate::config::Timeouts) {
        self.0
            .lock()
            .retain(|_, p| p.created.elapsed() < PRESIGN_TTL);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// Drops preprocessed nonces of generations this node can no longer sign with (retired or
/// replaced keys): they would otherwise wait out their hour.
pub fn prune_presigned(node: &Node) {
    let live = super::pool::live_generations(node);
    let live: std::collections::HashSet<&str> = live.iter().map(|(_, s)| s.as_str()).collect();
    presigned(node)
        .0
        .lock()
        .retain(|_, p| live.contains(p.key_session.as_str()));
}

/// This node's preprocessed nonces.
pub fn presigned(node: &Node) -> Arc<Presigned> {
    node.sessions.of::<Presigned>()
}

/// This node's SignSessions table.
pub fn sessions(node: &Node) -> std::sync::Arc<SignSessions> {
    node.sessions.of::<SignSessions>()
}

fn error(code: PeerErrorCode, message: impl Into<String>) -> PeerResponse {
    PeerResponse::Error {
        code,
        message: message.into(),
        culprit: None,
    }
}

/// A signer's admission of a sign request: unsealed, holding the generation the coordinator
/// uses, the client's own signature, freshness, nonce and the key's policy checked here (not
/// taken from the coordinator), and the messages read from the client's signed body. Audited.
fn admit(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    key_session: &str,
    request: &ClientRequest,
    preprocessed: bool,
) -> Result<(Arc<ActiveKey>, Vec<Vec<u8>>), PeerResponse> {
    if node.is_sealed() {
        return Err(error(
            PeerErrorCode::Sealed,
            format!("node {} is sealed", node.id()),
        ));
    }
    let active = match node.key_at(key, key_session) {
        Ok(k) => k,
        Err(e) if node.key(key).is_some() => return Err(error(PeerErrorCode::Conflict, e)),
        Err(e) => return Err(error(PeerErrorCode::Invalid, e)),
    };
    if active.record.algorithm.purpose() != Purpose::Sign {
        return Err(error(
            PeerErrorCode::Invalid,
            format!("key {key} is a decryption key; it cannot sign"),
        ));
    }
    let caller = admit_key_operation(node, from, request, key, "sign", Permission::Sign)?;
    let messages = super::messages_of(&request.body)
        .map(|(m, _)| m)
        .map_err(|e| error(PeerErrorCode::Invalid, e))?;
    let audit = AuditedOperation {
        caller: &caller,
        request,
        action: "sign",
        key,
        role: "participant",
    };
    let details = serde_json::json!({
        "session": session,
        "coordinator": from,
        "preprocessed": preprocessed,
        "messages_sha256": messages.iter().map(|m| hex_sha256(m)).collect::<Vec<_>>(),
    });
    audit
        .record(node, "ok", vec![], details)
        .map_err(|e| error(PeerErrorCode::Invalid, format!("audit trail: {e}")))?;
    Ok((active, messages))
}

pub fn commit(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    key_session: &str,
    request: &ClientRequest,
) -> PeerResponse {
    let (active, messages) = match admit(node, from, session, key, key_session, request, false) {
        Ok(x) => x,
        Err(refusal) => return refusal,
    };
    let mut rng = rand::rngs::OsRng;
    let mut nonces = Vec::with_capacity(messages.len());
    let mut commitments = Vec::with_capacity(messages.len());
    for _ in &messages {
        match sign::commit(&active.share, &mut rng) {
            Ok((n, c)) => {
                nonces.push(n);
                commitments.push(c);
            }
            Err(e) => return error(PeerErrorCode::Invalid, e.to_string()),
        }
    }
    let table = sessions(node);
    let mut sessions = table.0.lock();
    if sessions.contains_key(session) {
        return error(
            PeerErrorCode::Invalid,
            format!("signing session {session} exists already"),
        );
    }
    sessions.insert(
        session.to_string(),
        SignSession {
            key: active.clone(),
            coordinator: from,
            messages,
            nonces,
            started: Instant::now(),
        },
    );
    PeerResponse::Commitments { commitments }
}

pub fn share(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    signers: &[SignerCommitments],
) -> PeerResponse {
    // Removed before anything else: whatever happens next, these nonces never sign again.
    let Some(s) = sessions(node).0.lock().remove(session) else {
        return error(
            PeerErrorCode::UnknownSession,
            format!("unknown, expired or already used signing session {session}"),
        );
    };
    if s.coordinator != from {
        return error(
            PeerErrorCode::Invalid,
            format!("node {from} did not open signing session {session}"),
        );
    }
    let active = s.key.clone();
    // Retired, or its generation erased, since round 1: it signs nothing more.
    if node
        .key_at(&active.record.name, &active.record.session)
        .is_err()
    {
        return error(
            PeerErrorCode::Invalid,
            format!("key {} is gone", active.record.name),
        );
    }
    let signing = Signing {
        from,
        session,
        active: &active,
        messages: &s.messages,
    };
    sign_messages(node, signing, s.nonces, signers)
}

/// One signing session as a signer sees it: who coordinates it, with which generation of the
/// key, and the messages the client's signed request names.
struct Signing<'a> {
    from: u16,
    session: &'a str,
    active: &'a ActiveKey,
    messages: &'a [Vec<u8>],
}

/// The chosen signers' commitments to message `i`, by signer; `None` when a signer appears
/// twice or does not have one commitment per message.
fn commitments_to(
    signers: &[SignerCommitments],
    i: usize,
    messages: usize,
) -> Option<BTreeMap<u16, Vec<u8>>> {
    let mut chosen = BTreeMap::new();
    for s in signers {
        if s.commitments.len() != messages
            || chosen.insert(s.signer, s.commitments[i].clone()).is_some()
        {
            return None;
        }
    }
    Some(chosen)
}

/// The signing package of each message: the ones this node built as the coordinator of the
/// session, or else built here from the client's messages and the signers' commitments, this
/// node's own taken from its nonces.
fn packages_for(
    node: &Node,
    signing: &Signing<'_>,
    nonces: &[Nonces],
    signers: &[SignerCommitments],
) -> Result<Arc<Vec<Package>>, Refusal> {
    let count = signing.messages.len();
    if signing.from == node.id() {
        if let Some(built) = super::packages::built(node, signing.session) {
            if built.len() == count {
                return Ok(built);
            }
        }
    }
    let curve = curve_of(signing.active.record.algorithm);
    let mut packages = Vec::with_capacity(count);
    for (i, (message, nonces)) in signing.messages.iter().zip(nonces).enumerate() {
        let Some(commitments) = commitments_to(signers, i, count) else {
            return Err(Refusal(error(
                PeerErrorCode::Invalid,
                "one commitment per message from each signer, each signer once, is required",
            )));
        };
        let own = nonces.commitment();
        if commitments
            .get(&node.id())
            .is_some_and(|given| given.as_slice() != own.bytes())
        {
            return Err(Refusal(PeerResponse::Error {
                code: PeerErrorCode::Protocol,
                message: "the commitments given for this signer are not the ones it made".into(),
                culprit: Some(signing.from),
            }));
        }
        let own = Some((node.id(), own));
        packages.push(sign::build_package(curve, &commitments, message, own)?);
    }
    Ok(Arc::new(packages))
}

/// Signs each message with its nonces, refusing packages whose signers are not the key's
/// participants or do not include this node.
fn sign_messages(
    node: &Node,
    signing: Signing<'_>,
    nonces: Vec<Nonces>,
    signers: &[SignerCommitments],
) -> PeerResponse {
    if nonces.len() != signing.messages.len() {
        return error(
            PeerErrorCode::Invalid,
            "one set of nonces per message is required",
        );
    }
    let packages = match packages_for(node, &signing, &nonces, signers) {
        Ok(p) => p,
        Err(Refusal(answer)) => return answer,
    };
    let active = signing.active;
    let curve = curve_of(active.record.algorithm);
    let corrupt = node.faults().corrupt_signature_shares;
    let mut shares = Vec::with_capacity(packages.len());
    for ((package, nonces), message) in packages.iter().zip(nonces).zip(signing.messages) {
        let approve = |summary: &PackageSummary| {
            // Built from the client's own messages; checked all the same for this node's
            // signer, which may use the package its coordinator role built.
            if &summary.message != message {
                return Err(Refusal(PeerResponse::Error {
                    code: PeerErrorCode::Protocol,
                    message:
                        "the signing package's message is not the one this session committed to"
                            .into(),
                    culprit: Some(signing.from),
                }));
            }
            let outsider = summary
                .signers
                .iter()
                .any(|p| !active.record.participants.contains(p));
            if !summary.signers.contains(&node.id()) || outsider {
                return Err(Refusal(error(
                    PeerErrorCode::Invalid,
                    "the signing package names signers outside the key's participants",
                )));
            }
            Ok(())
        };
        match sign::sign_package(&active.share, nonces, package, approve) {
            Ok(share) if corrupt => {
                drop(share);
                shares.push(sign::faults::random_share(curve, &mut rand::rngs::OsRng));
            }
            Ok(share) => shares.push(share),
            Err(Refusal(answer)) => return answer,
        }
    }
    PeerResponse::Shares { shares }
}

/// Why this signer will not sign a package; it becomes the signer's answer.
struct Refusal(PeerResponse);

impl From<ProtocolError> for Refusal {
    fn from(e: ProtocolError) -> Self {
        Refusal(error(PeerErrorCode::Invalid, format!("cannot sign: {e}")))
    }
}

/// Commits to `count` nonces of `key`'s generation `key_session` for coordinator `from`,
/// before any message is known (RFC 9591 §5.1).
pub fn presign(
    node: &Arc<Node>,
    from: u16,
    key: &str,
    key_session: &str,
    count: u32,
) -> PeerResponse {
    if node.is_sealed() {
        let message = format!("node {} is sealed", node.id());
        return error(PeerErrorCode::Sealed, message);
    }
    let active = match node.key_at(key, key_session) {
        Ok(k) if k.record.algorithm.purpose() == Purpose::Sign => k,
        Ok(_) => return error(PeerErrorCode::Invalid, format!("key {key} cannot sign")),
        Err(e) => return error(PeerErrorCode::Conflict, e),
    };
    if !(1..=MAX_PRESIGN_BATCH).contains(&count) {
        let message = format!("ask for 1 to {MAX_PRESIGN_BATCH} commitments, not {count}");
        return error(PeerErrorCode::Invalid, message);
    }
    let table = presigned(node);
    let mut held = table.0.lock();
    let mine = |p: &Prepared| p.coordinator == from && p.key_session == key_session;
    let already = held.values().filter(|p| mine(p)).count();
    if already + count as usize > MAX_PRESIGNED {
        let message = format!(
            "node {} holds {already} commitments for node {from}",
            node.id()
        );
        return error(PeerErrorCode::Conflict, message);
    }
    let mut rng = rand::rngs::OsRng;
    let (mut ids, mut commitments) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let (nonces, commitment) = match sign::commit(&active.share, &mut rng) {
            Ok(x) => x,
            Err(e) => return error(PeerErrorCode::Invalid, e.to_string()),
        };
        let id = crate::random_id();
        held.insert(
            id.clone(),
            Prepared {
                coordinator: from,
                key_session: active.record.session.clone(),
                nonces,
                created: Instant::now(),
            },
        );
        ids.push(id);
        commitments.push(commitment);
    }
    PeerResponse::Presigned { ids, commitments }
}

/// Signs in one round with commitments made ahead of time: each is taken (and so can never
/// sign again) before anything else is checked, then the request is admitted as in two-round
/// signing and every package checked against the client's signed messages.
#[allow(clippy::too_many_arguments)]
pub fn sign_presigned(
    node: &Arc<Node>,
    from: u16,
    session: &str,
    key: &str,
    key_session: &str,
    request: &ClientRequest,
    ids: &[String],
    signers: &[SignerCommitments],
) -> PeerResponse {
    let taken: Vec<(&String, Option<Prepared>)> = {
        let table = presigned(node);
        let mut held = table.0.lock();
        ids.iter().map(|id| (id, held.remove(id))).collect()
    };
    let (active, messages) = match admit(node, from, session, key, key_session, request, true) {
        Ok(x) => x,
        Err(refusal) => return refusal,
    };
    if ids.len() != messages.len() {
        return error(
            PeerErrorCode::Invalid,
            "one preprocessed commitment per message of the request is required",
        );
    }
    let mut nonces = Vec::with_capacity(taken.len());
    for (id, prepared) in taken {
        match prepared {
            Some(p) if p.coordinator == from && p.key_session == active.record.session => {
                nonces.push(p.nonces)
            }
            _ => {
                let message = format!(
                    "{UNKNOWN_COMMITMENT} {id}: used, expired, lost in a restart, or not made \
                     for node {from} and this generation of key {key}"
                );
                return error(PeerErrorCode::UnknownSession, message);
            }
        }
    }
    let signing = Signing {
        from,
        session,
        active: &active,
        messages: &messages,
    };
    sign_messages(node, signing, nonces, signers)
}

/// This node's own commitments of preprocessed `ids`, as made, for its coordinator role:
/// `None` when one is gone.
pub fn presigned_commitments(node: &Node, ids: &[String]) -> Option<Vec<Commitment>> {
    let table = presigned(node);
    let held = table.0.lock();
    ids.iter()
        .map(|id| held.get(id).map(|p| p.nonces.commitment().clone()))
        .collect()
}

/// This node's own commitments in signing `session`, as made, for its coordinator role.
pub fn session_commitments(node: &Node, session: &str) -> Option<Vec<Commitment>> {
    let table = sessions(node);
    let held = table.0.lock();
    let s = held.get(session)?;
    Some(s.nonces.iter().map(|n| n.commitment().clone()).collect())
}
