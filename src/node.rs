//! The node's shared state: configuration, identity, store, active keys in memory, the
//! in-flight protocol sessions, and the test-only fault hooks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use keyshares::{KeyShare, PublicKeys};
use parking_lot::{Mutex, RwLock};

use crate::audit::Audit;
use crate::config::{Member, NodeConfig};
use crate::identity::Identity;
use crate::peer::EnvelopeVerifier;
use crate::state::nonces::NonceCache;
use crate::state::ratelimit::RateLimiter;
use crate::store::{curve_of, KeyRecord, Store, StoreError};

/// A key this node holds a share of, ready to use.
pub struct ActiveKey {
    pub record: KeyRecord,
    pub share: KeyShare,
    pub public: PublicKeys,
}

impl ActiveKey {
    pub fn new(record: KeyRecord, share: KeyShare) -> anyhow::Result<ActiveKey> {
        let bytes = hex::decode(&record.public_keys).context("corrupt public key package")?;
        let public = PublicKeys::from_bytes(curve_of(record.algorithm), &bytes)?;
        Ok(ActiveKey {
            record,
            share,
            public,
        })
    }
}

/// Misbehaviour a test can switch on in an in-process node, to check that the others detect
/// it and name this node. Nothing in the binary sets these.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Send a round-1 package whose proof of knowledge does not match its commitment.
    pub tamper_dkg_round1: bool,
    /// Send a different (valid) round-1 package to every other participant but the first.
    pub equivocate_dkg_round1: bool,
    /// Send a random share in round 2 to the first other participant.
    pub tamper_dkg_round2: bool,
    /// In the echo round, misquote node X's round-1 message (a wrong digest under X's
    /// signature) to every participant but X: an attempt to frame X as an equivocator.
    pub frame_in_echo: Option<u16>,
    /// Answer round 2 with a bare complaint naming node X, whatever X sent.
    pub false_complaint_against: Option<u16>,
    /// Answer round 2 with a complaint about node X's share that reveals the share's key,
    /// though the share is sound: a checkable complaint that is false.
    pub false_share_complaint_against: Option<u16>,
    /// Answer peer requests of this kind with a refusal of this code naming nobody.
    pub refuse: Option<(&'static str, crate::peer::PeerErrorCode)>,
    /// Answer signing round 2 with random signature shares.
    pub corrupt_signature_shares: bool,
    /// Confirm a key other than the one the ceremony made (the same other key on every node
    /// with this fault, so that liars can agree with each other).
    pub confirm_other_key: bool,
    /// As a ceremony's coordinator, stop dead at this point, as a process killed there would:
    /// `"confirmations"` (every confirmation collected, nothing committed) or `"commit"`
    /// (the certificate stored, not yet sent to anyone).
    pub halt_coordinator_at: Option<&'static str>,
    /// As a ceremony's coordinator, mint session ids this many milliseconds in the past: a
    /// coordinator that kept a session (one a member refused long ago, say) to run it now.
    pub mint_sessions_ago_ms: u64,
    /// Hold every peer request this long before handling it: the benchmark's simulated
    /// network distance (`keyquorum bench --rtt-ms`).
    pub added_rtt_ms: u64,
    /// Hold answers to peer requests of these kinds (e.g. `sign.share`) for this many
    /// milliseconds before sending them: a slow or overloaded peer.
    pub slow_answers_ms: BTreeMap<&'static str, u64>,
    /// Answer peer requests of these kinds with a 503 without acting on them: a node that
    /// crashed between two steps of a protocol.
    pub unresponsive_kinds: std::collections::BTreeSet<&'static str>,
    /// Act on peer requests of these kinds, then answer with a 503 as if the answer was lost
    /// on the way back: the sender cannot tell what happened.
    pub lost_answers: std::collections::BTreeSet<&'static str>,
    /// Answer decryption requests with partials computed with a wrong share.
    pub corrupt_partials: bool,
    /// Answer every decryption item with an error, valid ones included: silent censorship.
    pub refuse_decrypt_items: bool,
    /// As a decryption coordinator in end-to-end mode, mangle the relayed answer:
    /// `"duplicate"` (one holder's partials twice) or `"drop"` (keep t − 1 holders' partials).
    pub tamper_relay: Option<&'static str>,
    /// Record every peer request and answer body this node sends or receives, its own
    /// answers to itself included: an observer of the wire, for tests.
    pub tap: Option<std::sync::Arc<Mutex<Vec<Vec<u8>>>>>,
    /// As a repair helper, send a random summand to the first other helper.
    pub corrupt_repair_summand: bool,
    /// As a repair helper, send the repaired node a random value.
    pub corrupt_repair_value: bool,
    /// As a repair helper, show the first other helper the summand and commitments of a
    /// second dealing: consistent with each other, not with what the others see.
    pub equivocate_repair_commitments: bool,
}

/// Per-operation communication counters, kept by the coordinator of each operation.
#[derive(Debug, Default)]
pub struct Counters {
    pub peer_requests: AtomicU64,
    pub peer_bytes: AtomicU64,
    /// Body bytes (sent to, received from) each peer, by peer id.
    per_peer: Mutex<BTreeMap<u16, (u64, u64)>>,
}

impl Counters {
    /// One answered exchange with `peer`: `sent` request bytes, `received` answer bytes.
    pub fn add(&self, peer: u16, sent: usize, received: usize) {
        let (sent, received) = (sent as u64, received as u64);
        self.peer_requests.fetch_add(1, Ordering::Relaxed);
        self.peer_bytes
            .fetch_add(sent + received, Ordering::Relaxed);
        let mut per_peer = self.per_peer.lock();
        let entry = per_peer.entry(peer).or_default();
        entry.0 += sent;
        entry.1 += received;
    }

    /// The counted bytes by node, seen from each node's side: `coordinator` sent every request
    /// and received every answer; each peer received its requests and sent its answers.
    pub fn by_node(&self, coordinator: u16) -> Vec<api::NodeTraffic> {
        let per_peer = self.per_peer.lock();
        let own = api::NodeTraffic {
            node: coordinator,
            sent_bytes: per_peer.values().map(|(s, _)| s).sum(),
            received_bytes: per_peer.values().map(|(_, r)| r).sum(),
        };
        std::iter::once(own)
            .chain(
                per_peer
                    .iter()
                    .map(|(&node, &(to, from))| api::NodeTraffic {
                        node,
                        sent_bytes: from,
                        received_bytes: to,
                    }),
            )
            .collect()
    }
}

/// Peer-protocol body bytes this node itself put on and took off the wire, in both of its roles:
/// requests it sent and answers it read as a coordinator, requests it read and answers it sent
/// as a participant. Unlike the coordinator's per-operation counts, these include requests a
/// coordinator stopped waiting for and the answers to them.
#[derive(Debug, Default)]
pub struct Wire {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

impl Wire {
    pub fn sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// (sent, received) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Runs the participant logic for a request this node sends itself (the router's entry
/// point, registered when the node starts serving, so that this layer need not know the
/// protocol roles above it).
pub type LocalRouter =
    fn(&Arc<Node>, u16, &str, crate::peer::PeerRequest) -> crate::peer::PeerResponse;

pub struct Node {
    pub config: NodeConfig,
    pub identity: Identity,
    pub members: BTreeMap<u16, Member>,
    pub verifier: EnvelopeVerifier,
    /// Verifies members' signed statements: certificates and their parts (DESIGN.md §11).
    pub signers: crate::state::statement::Signers,
    pub http: reqwest::Client,
    pub store: Store,
    pub keys: RwLock<BTreeMap<String, Arc<ActiveKey>>>,
    /// The generation each certified one replaced, until every member has acknowledged the
    /// new one: a coordinator still on it can sign and decrypt meanwhile (DESIGN.md §11).
    pub previous_keys: RwLock<BTreeMap<String, Arc<ActiveKey>>>,
    /// Ceremonies this node coordinates right now: it neither refuses nor aborts those on a
    /// peer's question (DESIGN.md §11).
    pub coordinating: Mutex<std::collections::HashSet<String>>,
    /// Wakes the generation reconciler before its next tick.
    pub reconcile: tokio::sync::Notify,
    /// The protocol roles' in-memory sessions (nonces, ceremony and repair state).
    pub sessions: crate::sessions::Sessions,
    pub faults: RwLock<Faults>,
    /// The client registry, identical on every node once changes are applied.
    pub clients: RwLock<BTreeMap<String, api::ClientInfo>>,
    /// Each key's policy; public, kept while sealed.
    pub policies: RwLock<BTreeMap<String, api::KeyPolicy>>,
    pub nonces: NonceCache,
    /// Client signatures verified here already: the coordinator's own participant check of a
    /// request it admitted is not a second Ed25519 verification.
    pub verified: crate::state::verified::VerifiedSignatures,
    pub rate: RateLimiter,
    /// Unauthenticated and badly signed requests, per source address.
    pub rejections: crate::state::rejections::Rejections,
    pub admin: crate::state::admin_log::AdminState,
    pub audit: Audit,
    /// Wall-clock start, milliseconds: requests signed earlier are refused (see auth).
    pub started_at_ms: u64,
    /// Every peer byte this node sent or received as a coordinator, for `/v1/status`.
    pub traffic: Counters,
    pub wire: Wire,
    pub started: Instant,
    pub metrics: crate::metrics::Metrics,
    local_router: std::sync::OnceLock<LocalRouter>,
    /// The PKCS#11 seal (with its PIN) when `[seal] kind = "pkcs11"`: unsealing goes through
    /// the token, with no passphrase.
    token: Option<crate::store::TokenSeal>,
}

fn load_active_keys(
    store: &Store,
    me: u16,
) -> Result<BTreeMap<String, Arc<ActiveKey>>, StoreError> {
    let mut keys = BTreeMap::new();
    for (record, share) in store.load_keys(me)? {
        keys.insert(
            record.name.clone(),
            Arc::new(ActiveKey::new(record, share)?),
        );
    }
    Ok(keys)
}

fn load_previous_keys(store: &Store) -> Result<BTreeMap<String, Arc<ActiveKey>>, StoreError> {
    let mut keys = BTreeMap::new();
    for (record, share) in store.load_previous()? {
        keys.insert(
            record.name.clone(),
            Arc::new(ActiveKey::new(record, share)?),
        );
    }
    Ok(keys)
}

fn load_policies(store: &Store) -> anyhow::Result<BTreeMap<String, api::KeyPolicy>> {
    store
        .policies()
        .iter()
        .map(|item| {
            let (name, json) = item?;
            Ok((
                String::from_utf8_lossy(&name).into_owned(),
                store.read_tagged(crate::store::Tagged::Policies, &name, &json)?,
            ))
        })
        .collect()
}

impl Node {
    /// Loads the identity, unseals the store and loads every key into memory.
    pub fn open(config: NodeConfig) -> Result<Node, StoreError> {
        let identity_token = crate::sealing::identity_token(&config)?;
        // A token's own refusal (wrong PIN, token absent) keeps its exact message.
        let load_identity = || {
            Identity::load_with(&config.identity_file, identity_token.as_ref()).map_err(|e| {
                match e.downcast::<crate::pkcs11::TokenError>() {
                    Ok(e) => StoreError::from(e),
                    Err(e) => StoreError::Other(e),
                }
            })
        };
        let identity = load_identity()?;
        if identity.id != config.id {
            return Err(anyhow::anyhow!(
                "identity file belongs to node {}, config says node {}",
                identity.id,
                config.id
            )
            .into());
        }
        let members = config.members_by_id();
        let me = &members[&config.id];
        if me.sign_public_key != identity.sign_public_hex()
            || me.seal_public_key != identity.seal_public_hex()
        {
            return Err(anyhow::anyhow!(
                "identity file does not match this node's public keys in the config"
            )
            .into());
        }
        let unsealer = crate::sealing::unsealer(&config, config.seal.kind)?;
        let store = Store::open_with(&config.data_dir, &unsealer, &config.limits)?;
        // The token seal is kept to unseal again after a seal; a passphrase never is.
        let token = match unsealer {
            crate::store::Unsealer::Token(token) => Some(token),
            crate::store::Unsealer::Passphrase(_) => None,
        };
        let keys = load_active_keys(&store, config.id)?;
        let previous_keys = load_previous_keys(&store)?;
        let clients = crate::store::clients::load(&store, &config.bootstrap_clients)?;
        let policies = load_policies(&store)?;
        // The trail signs its entries with the node's identity key (DESIGN.md §11); it holds
        // its own copy, loaded from the same file.
        let audit = Audit::open(store.audit_trees(), load_identity()?, &config.audit)?;
        let admin = crate::state::admin_log::AdminState::new(store.admin_head()?);
        let verifier = EnvelopeVerifier::new(
            config.id,
            &config.members,
            std::time::Duration::from_millis(config.timeouts.max_clock_skew_ms),
        )?;
        let signers = crate::state::statement::Signers::new(&config.members)?;
        let mut http = reqwest::Client::builder()
            .timeout(config.timeouts.peer())
            .pool_max_idle_per_host(64)
            // Below actix's 5 s keep-alive, so a pooled connection is never one the peer is
            // closing at that moment (a POST on it would fail and exclude a healthy peer).
            .pool_idle_timeout(std::time::Duration::from_secs(4));
        if let Some(tls) = &config.tls {
            http = crate::tls::peer_client(http, tls)?;
        }
        let http = http
            .build()
            .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        let metrics = crate::metrics::Metrics::new(&config.members, config.id);
        // Opening the store unsealed it.
        metrics.set_sealed(false);
        metrics.set_seal_kind(config.seal.kind.as_str());
        let node = Node {
            metrics,
            identity,
            members,
            verifier,
            signers,
            http,
            store,
            keys: RwLock::new(keys),
            previous_keys: RwLock::new(previous_keys),
            coordinating: Mutex::new(Default::default()),
            reconcile: tokio::sync::Notify::new(),
            sessions: Default::default(),
            faults: RwLock::new(Faults::default()),
            clients: RwLock::new(clients),
            policies: RwLock::new(policies),
            nonces: NonceCache::new(config.limits.replay_cache_entries),
            verified: Default::default(),
            rate: RateLimiter::new(
                f64::from(config.auth.client_requests_per_second),
                config.auth.client_burst,
            ),
            rejections: crate::state::rejections::Rejections::new(
                config.auth.rejected_per_second,
                config.auth.rejected_burst,
                std::time::Duration::from_secs(config.auth.rejected_summary_secs),
            ),
            admin,
            audit,
            started_at_ms: crate::clock::now_ms(),
            traffic: Counters::default(),
            wire: Wire::default(),
            started: Instant::now(),
            local_router: std::sync::OnceLock::new(),
            token,
            config,
        };
        Ok(node)
    }

    pub fn id(&self) -> u16 {
        self.config.id
    }

    /// Registers the router that handles requests this node sends itself.
    pub fn set_local_router(&self, router: LocalRouter) {
        let _ = self.local_router.set(router);
    }

    pub fn local_router(&self) -> Option<LocalRouter> {
        self.local_router.get().copied()
    }

    pub fn key(&self, name: &str) -> Option<Arc<ActiveKey>> {
        self.keys.read().get(name).cloned()
    }

    /// This node's share of `name` from ceremony `session`: the live generation, or the one it
    /// replaced while members are still moving over (`session` empty: the live one).
    pub fn key_at(&self, name: &str, session: &str) -> Result<Arc<ActiveKey>, String> {
        let live = self.key(name);
        if let Some(k) = &live {
            if session.is_empty() || k.record.session == session {
                return Ok(k.clone());
            }
        }
        if let Some(k) = self.previous_keys.read().get(name) {
            if k.record.session == session {
                return Ok(k.clone());
            }
        }
        Err(match live {
            Some(k) => format!(
                "node {} holds generation {} of key {} from another ceremony than the \
                 coordinator's: a refresh or reshare is in progress or one of the two missed it",
                self.id(),
                k.record.generation,
                name
            ),
            None => format!("node {} holds no key {name}", self.id()),
        })
    }

    pub fn is_sealed(&self) -> bool {
        self.store.is_sealed()
    }

    pub fn admin_seq(&self) -> u64 {
        self.admin.seq()
    }

    pub fn policy(&self, key: &str) -> Option<api::KeyPolicy> {
        self.policies.read().get(key).cloned()
    }

    /// Drops every share, nonce and ceremony secret from memory and forgets the data key.
    pub fn seal(&self) {
        self.store.seal();
        self.keys.write().clear();
        self.previous_keys.write().clear();
        self.sessions.clear();
    }

    /// `passphrase` or `pkcs11`: what wraps this node's data key.
    pub fn seal_kind(&self) -> &'static str {
        self.config.seal.kind.as_str()
    }

    /// Unwraps the data key (with `passphrase`, or through the token of a PKCS#11 seal, which
    /// needs none) and loads the shares again.
    pub fn unseal(&self, passphrase: &str) -> Result<(), StoreError> {
        match &self.token {
            Some(token) => self
                .store
                .unseal_with(&crate::store::Unsealer::Token(token.clone()))?,
            None => self.store.unseal(passphrase)?,
        }
        match load_active_keys(&self.store, self.id())
            .and_then(|keys| Ok((keys, load_previous_keys(&self.store)?)))
        {
            Ok((keys, previous)) => {
                *self.keys.write() = keys;
                *self.previous_keys.write() = previous;
                Ok(())
            }
            Err(e) => {
                self.store.seal();
                Err(e)
            }
        }
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().clone()
    }

    /// Drops protocol state older than its deadline; dropping zeroizes nonces and DKG secrets.
    pub fn expire_sessions(&self) {
        self.sessions.expire(&self.config.timeouts);
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn bytes_by_node_are_each_side_of_the_coordinators_exchanges() {
        let c = Counters::default();
        c.add(2, 100, 40);
        c.add(3, 10, 4);
        c.add(2, 1, 2);
        let by_node = c.by_node(1);
        let t = |node, sent_bytes, received_bytes| api::NodeTraffic {
            node,
            sent_bytes,
            received_bytes,
        };
        assert_eq!(by_node, [t(1, 111, 46), t(2, 42, 101), t(3, 4, 10)]);
        let sent: u64 = by_node.iter().map(|n| n.sent_bytes).sum();
        assert_eq!(
            sent,
            c.peer_bytes.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}
