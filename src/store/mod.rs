//! The node's store: one sled database, shares sealed at rest (DESIGN.md §8).
//!
//! A random 32-byte data key (DEK) seals every share with XChaCha20-Poly1305; the DEK itself is
//! wrapped by a key-encryption key derived from the operator's passphrase with Argon2id, or by a
//! non-extractable key on a PKCS#11 token (`seal`). A wrong passphrase or PIN fails to unwrap
//! the DEK before anything is written, so the store is left as it was.
//! Each sealed share is bound (AEAD associated data) to the SHA-256 of its key's full record —
//! name, algorithm, threshold, participants, public keys, generation and ceremony — so a sealed
//! blob cannot be moved to another key or generation, nor its record edited beside it. Public
//! state (records, policies, clients, the admin log, pending and previous generations) carries a
//! MAC under a key derived from the data key (`integrity`).

use std::path::Path;

use anyhow::Context;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use keyshares::{Curve, KeyShare};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use zeroize::Zeroizing;

pub mod clients;
mod generations;
mod integrity;
mod refusals;
pub mod seal;

pub use generations::{Activated, PendingGeneration};

use integrity::MacKeys;
pub use integrity::Tagged;
pub use refusals::Refused;
use seal::SEAL_HEADER;
pub use seal::{header_kind, TokenSeal, Unsealer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "wrong passphrase: the store's data key does not unwrap with it (nothing was changed)"
    )]
    WrongPassphrase,
    /// The token refused the PIN; the message is the operator's contract (README, "Running
    /// with an HSM").
    #[error("wrong PIN for token {token}")]
    WrongPin { token: String },
    /// The seal cannot unwrap or wrap the data key: module, token or key missing, or a key
    /// that is not the one that wrapped this store. The message names what is wrong.
    #[error("{0}")]
    Seal(String),
    #[error("store error: {0}")]
    Other(#[from] anyhow::Error),
}

impl From<crate::pkcs11::TokenError> for StoreError {
    fn from(e: crate::pkcs11::TokenError) -> Self {
        use crate::pkcs11::TokenError;
        match e {
            TokenError::WrongPin { token } => StoreError::WrongPin { token },
            TokenError::Failed(message) => StoreError::Seal(message),
            TokenError::CorruptHeader => StoreError::Other(anyhow::anyhow!("corrupt seal header")),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Other(e.into())
    }
}

/// The public record of a key, identical on every participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    pub algorithm: api::Algorithm,
    pub threshold: u16,
    pub participants: Vec<u16>,
    pub created_at: String,
    /// Hex of the frost public key package.
    pub public_keys: String,
    /// The ceremony that made the current shares.
    pub session: String,
    /// Refreshes and reshares since the key was created.
    #[serde(default)]
    pub generation: u32,
    #[serde(default)]
    pub state: api::KeyState,
    /// RFC 3339, when the key was retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

impl KeyRecord {
    /// Whether node `id` holds a share of the key.
    pub fn held_by(&self, id: u16) -> bool {
        self.state == api::KeyState::Active && self.participants.contains(&id)
    }
}

pub struct Store {
    db: sled::Db,
    keys: sled::Tree,
    shares: sled::Tree,
    /// Key name → JSON [`api::KeyPolicy`]; public, readable while sealed.
    policies: sled::Tree,
    /// Client name → JSON [`api::ClientInfo`].
    clients: sled::Tree,
    /// Big-endian sequence → JSON certified admin log entry (client and policy changes, in order).
    admin_log: sled::Tree,
    /// Big-endian seq → JSON vote this node signed and has not yet seen decided.
    admin_votes: sled::Tree,
    /// Big-endian seq ++ entry hash → JSON proposal this node coordinated, with its decision.
    admin_proposals: sled::Tree,
    /// Client name ++ 0 ++ nonce → big-endian seq of the entry that applied the request.
    admin_applied: sled::Tree,
    /// (seq, entry hash) → the coordinator's signed abort this node released its vote on:
    /// evidence against a certificate of that entry from the same coordinator.
    admin_aborts: sled::Tree,
    /// Big-endian sequence → JSON [`api::AuditEntry`].
    audit: sled::Tree,
    /// Member id (big-endian) → JSON [`api::RecordedHead`]: the peers' latest signed audit
    /// heads.
    audit_heads: sled::Tree,
    /// The audit trail's retention checkpoint and export position.
    audit_meta: sled::Tree,
    /// Key name → [`PendingGeneration`]: a ceremony's result, sealed, awaiting its certificate.
    pending: sled::Tree,
    /// Key name → the generation a certified one replaced, kept until every member moved on.
    previous: sled::Tree,
    /// Ceremony session → its [`crate::state::generation::GenerationCertificate`].
    certificates: sled::Tree,
    /// Ceremony session → key name: sessions this node promised never to confirm or commit,
    /// kept until their ceremony could no longer be confirmed (`refusals`).
    refusals: sled::Tree,
    /// (until, session) → asker: the refusals in the order they may be forgotten.
    refusal_expiry: sled::Tree,
    /// Live refusals per asker, and how many one asker may hold.
    refusals_by_asker: parking_lot::Mutex<std::collections::HashMap<u16, usize>>,
    refusals_per_asker: usize,
    decrypt_requests: sled::Tree,
    /// The page cache the database was opened with, bytes.
    cache_bytes: u64,
    /// Ceremony session → key name, for ceremonies this node committed as coordinator and
    /// whose members have not all acknowledged yet.
    coordinated: sled::Tree,
    /// The data key; `None` while the node is sealed.
    dek: parking_lot::RwLock<Option<Zeroizing<[u8; 32]>>>,
    /// The MAC keys of the public state, derived from the data key when the store opened.
    macs: MacKeys,
}

/// The error of anything that needs the data key while the node is sealed.
fn sealed_error() -> anyhow::Error {
    anyhow::anyhow!("the node is sealed")
}

/// What a sealed share is bound to: the hash of everything in its record that says which
/// share it is. State and retirement time are left out: a retired key has no share.
fn share_aad(record: &KeyRecord) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let bound = serde_json::json!({
        "name": record.name,
        "algorithm": record.algorithm,
        "threshold": record.threshold,
        "participants": record.participants,
        "public_keys": record.public_keys,
        "generation": record.generation,
        "session": record.session,
    });
    let mut aad = b"keyquorum/share/v2|".to_vec();
    aad.extend_from_slice(hex::encode(Sha256::digest(bound.to_string().as_bytes())).as_bytes());
    aad
}

pub fn curve_of(algorithm: api::Algorithm) -> Curve {
    match algorithm {
        api::Algorithm::FrostEd25519 | api::Algorithm::HpkeX25519 => Curve::Ed25519,
        api::Algorithm::FrostSecp256k1 | api::Algorithm::EciesSecp256k1 => Curve::Secp256k1,
    }
}

/// The store's page cache when no setting says otherwise: small, for a sidecar (sled's own
/// default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How the database in `dir` is opened: its page cache holds at most `cache_bytes`.
pub fn sled_config(dir: &Path, cache_bytes: u64) -> sled::Config {
    sled::Config::new().path(dir).cache_capacity(cache_bytes)
}

/// How long a node's store waits for the database's file lock.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the database in `dir`, waiting up to 30 s while its file lock is held: a store
/// dropped a moment ago in this process (a restarted node, a rewrap, a test) keeps the lock
/// until sled's background threads let go of it, which on a loaded machine can take seconds.
/// Another process that keeps it longer gets a plain "in use" error.
pub fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    open_db_within(dir, cache_bytes, LOCK_PATIENCE)
}

/// [`open_db`], waiting at most `patience` for the lock.
pub fn open_db_within(
    dir: &Path,
    cache_bytes: u64,
    patience: std::time::Duration,
) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match sled_config(dir, cache_bytes).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(anyhow::anyhow!(
                        "the store {} is in use by another process (its lock was held for {} s)",
                        dir.display(),
                        patience.as_secs()
                    )
                    .into());
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot open store {}", dir.display()))
                    .into())
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` and unseals it with `passphrase`.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Store, StoreError> {
        Self::open_with(
            dir,
            &Unsealer::Passphrase(Zeroizing::new(passphrase.into())),
            &crate::config::Limits::default(),
        )
    }

    /// Opens (or creates) the store in `dir` within `limits` (the page cache, the refusals
    /// kept) and unseals it with `unsealer`. A new store's data key is wrapped by it; an
    /// existing one must have been, or nothing is opened.
    pub fn open_with(
        dir: &Path,
        unsealer: &Unsealer,
        limits: &crate::config::Limits,
    ) -> Result<Store, StoreError> {
        let cache_bytes = limits.store_cache_bytes;
        if let Unsealer::Passphrase(p) = unsealer {
            if p.is_empty() {
                return Err(anyhow::anyhow!("the passphrase is empty").into());
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let db = open_db(dir, cache_bytes)?;
        let dek = match db.get(SEAL_HEADER)? {
            Some(header) => unsealer.unwrap(&header)?,
            None => {
                let mut dek = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(dek.as_mut());
                db.insert(SEAL_HEADER, unsealer.wrap(&dek)?)?;
                db.flush()?;
                dek
            }
        };
        Self::with_key(db, dek, limits)
    }

    /// Opens the existing store in `dir`, unsealed by what `unsealer_for` gives for the kind
    /// that wraps its data key (`passphrase`, `pkcs11`): `store rewrap` reads the old
    /// wrapping whatever the config now says. Creates nothing.
    pub fn open_existing(
        dir: &Path,
        unsealer_for: impl FnOnce(&'static str) -> Result<Unsealer, StoreError>,
    ) -> Result<Store, StoreError> {
        if !dir.exists() {
            return Err(anyhow::anyhow!("no store at {}", dir.display()).into());
        }
        let limits = crate::config::Limits::default();
        let db = open_db(dir, limits.store_cache_bytes)?;
        let header = db
            .get(SEAL_HEADER)?
            .ok_or_else(|| anyhow::anyhow!("the store at {} has no seal header", dir.display()))?;
        let dek = unsealer_for(header_kind(&header)?)?.unwrap(&header)?;
        Self::with_key(db, dek, &limits)
    }

    fn with_key(
        db: sled::Db,
        dek: Zeroizing<[u8; 32]>,
        limits: &crate::config::Limits,
    ) -> Result<Store, StoreError> {
        let cache_bytes = limits.store_cache_bytes;
        // Refusals of sessions minted before they carried their time: such a ceremony can
        // no longer start (`crate::ceremony::window`), so the promise holds without them.
        for legacy in ["refused", "refused_order"] {
            db.drop_tree(legacy)?;
        }
        Ok(Store {
            keys: db.open_tree("keys")?,
            shares: db.open_tree("shares")?,
            policies: db.open_tree("policies")?,
            clients: db.open_tree("clients")?,
            admin_log: db.open_tree("admin_log")?,
            admin_votes: db.open_tree("admin_votes")?,
            admin_proposals: db.open_tree("admin_proposals")?,
            admin_applied: db.open_tree("admin_applied")?,
            admin_aborts: db.open_tree("admin_aborts")?,
            audit: db.open_tree("audit")?,
            audit_heads: db.open_tree("audit_heads")?,
            audit_meta: db.open_tree("audit_meta")?,
            pending: db.open_tree("pending")?,
            previous: db.open_tree("previous")?,
            certificates: db.open_tree("certificates")?,
            refusals: db.open_tree("refusals")?,
            refusal_expiry: db.open_tree("refusal_expiry")?,
            refusals_by_asker: parking_lot::Mutex::new(refusals::count_by_asker(
                &db.open_tree("refusal_expiry")?,
            )?),
            refusals_per_asker: limits.refusals_per_peer.max(1),
            decrypt_requests: db.open_tree("decrypt_requests")?,
            cache_bytes,
            coordinated: db.open_tree("coordinated")?,
            db,
            macs: MacKeys::derive(&dek),
            dek: parking_lot::RwLock::new(Some(dek)),
        })
    }

    /// Re-wraps the data key under a new passphrase; the shares stay as they are.
    pub fn change_passphrase(&self, new_passphrase: &str) -> Result<(), StoreError> {
        if new_passphrase.is_empty() {
            return Err(anyhow::anyhow!("the new passphrase is empty").into());
        }
        self.rewrap(&Unsealer::Passphrase(Zeroizing::new(new_passphrase.into())))
    }

    /// Wraps the data key by `to` instead (a passphrase, a token). The new header is staged
    /// beside the old one and unwrapped again before it replaces it in one write, so any
    /// failure leaves the old wrapping in force.
    pub fn rewrap(&self, to: &Unsealer) -> Result<(), StoreError> {
        const STAGED: &[u8] = b"seal/staged";
        let dek = self.dek.read().as_ref().ok_or_else(sealed_error)?.clone();
        let wrapped = to.wrap(&dek)?;
        self.db.insert(STAGED, wrapped.as_slice())?;
        self.db.flush()?;
        let staged = self
            .db
            .get(STAGED)?
            .ok_or_else(|| anyhow::anyhow!("the staged seal header vanished"))?;
        let checked = to.unwrap(&staged);
        if !matches!(&checked, Ok(k) if **k == *dek) {
            self.db.remove(STAGED)?;
            self.db.flush()?;
            return Err(match checked {
                Err(e) => e,
                Ok(_) => anyhow::anyhow!("the new wrapping does not give the data key back").into(),
            });
        }
        self.db.insert(SEAL_HEADER, staged)?;
        self.db.remove(STAGED)?;
        self.db.flush()?;
        Ok(())
    }

    /// What wraps the data key now: `passphrase` or `pkcs11`.
    pub fn seal_kind(&self) -> Result<&'static str, StoreError> {
        let header = self
            .db
            .get(SEAL_HEADER)?
            .ok_or_else(|| anyhow::anyhow!("the store has no seal header"))?;
        header_kind(&header)
    }

    /// Forgets the data key: nothing sealed can be read or written until [`Store::unseal`].
    pub fn seal(&self) {
        self.dek.write().take();
    }

    /// Unwraps the data key again; a wrong passphrase changes nothing.
    pub fn unseal(&self, passphrase: &str) -> Result<(), StoreError> {
        self.unseal_with(&Unsealer::Passphrase(Zeroizing::new(passphrase.into())))
    }

    /// Unwraps the data key again with `unsealer`; a failure changes nothing.
    pub fn unseal_with(&self, unsealer: &Unsealer) -> Result<(), StoreError> {
        let header = self
            .db
            .get(SEAL_HEADER)?
            .ok_or_else(|| anyhow::anyhow!("the store has no seal header"))?;
        let dek = unsealer.unwrap(&header)?;
        *self.dek.write() = Some(dek);
        Ok(())
    }

    pub fn is_sealed(&self) -> bool {
        self.dek.read().is_none()
    }

    /// The stored form of `json` under `key` in a tagged tree.
    pub fn tag(&self, tree: Tagged, key: &[u8], json: &[u8]) -> Vec<u8> {
        self.macs.seal(tree, key, json)
    }

    /// The JSON of a tagged entry, if its tag verifies; the error names the entry.
    pub fn untag<'a>(
        &self,
        tree: Tagged,
        key: &[u8],
        stored: &'a [u8],
    ) -> anyhow::Result<&'a [u8]> {
        self.macs.open(tree, key, stored)
    }

    /// Decodes a tagged entry.
    pub fn read_tagged<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tagged,
        key: &[u8],
        stored: &[u8],
    ) -> anyhow::Result<T> {
        let json = self.untag(tree, key, stored)?;
        serde_json::from_slice(json)
            .with_context(|| format!("corrupt {tree:?} entry {}", String::from_utf8_lossy(key)))
    }

    /// Encodes `value` as a tagged entry.
    pub fn write_tagged<T: Serialize>(
        &self,
        tree: Tagged,
        key: &[u8],
        value: &T,
    ) -> anyhow::Result<Vec<u8>> {
        Ok(self.tag(tree, key, &serde_json::to_vec(value)?))
    }

    pub fn policies(&self) -> &sled::Tree {
        &self.policies
    }

    pub fn clients(&self) -> &sled::Tree {
        &self.clients
    }

    /// The last entry of the admin log: where this node stands in it.
    pub fn admin_head(&self) -> anyhow::Result<crate::state::admin_log::Head> {
        use crate::state::admin_log::{CertifiedEntry, Head};
        Ok(match self.admin_log.last()? {
            Some((k, json)) => {
                let seq = u64::from_be_bytes(k.as_ref().try_into()?);
                let logged: CertifiedEntry = self.read_tagged(Tagged::AdminLog, &k, &json)?;
                Head {
                    seq,
                    hash: logged.entry.hash(),
                }
            }
            None => Head::genesis(),
        })
    }

    pub fn admin_log(&self) -> &sled::Tree {
        &self.admin_log
    }

    pub fn admin_votes(&self) -> &sled::Tree {
        &self.admin_votes
    }

    pub fn admin_aborts(&self) -> &sled::Tree {
        &self.admin_aborts
    }

    pub fn admin_proposals(&self) -> &sled::Tree {
        &self.admin_proposals
    }

    /// Decryption requests by id, as applied from the admin log (tagged).
    pub fn decrypt_requests(&self) -> &sled::Tree {
        &self.decrypt_requests
    }

    pub fn admin_applied(&self) -> &sled::Tree {
        &self.admin_applied
    }

    pub fn audit(&self) -> &sled::Tree {
        &self.audit
    }

    pub fn audit_heads(&self) -> &sled::Tree {
        &self.audit_heads
    }

    /// The trees of the audit trail.
    pub fn audit_trees(&self) -> crate::audit::Trees {
        crate::audit::Trees {
            entries: self.audit.clone(),
            peer_heads: self.audit_heads.clone(),
            meta: self.audit_meta.clone(),
        }
    }

    /// The page cache the database was opened with, bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Key records in name order after `after` (from the first without), at most `limit` of
    /// those `keep` accepts: one page, read without loading the others.
    pub fn records_page(
        &self,
        after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&KeyRecord) -> bool,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut page = Vec::new();
        for item in self.keys.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (name, json) = item?;
            let record: KeyRecord = self.read_tagged(Tagged::Keys, &name, &json)?;
            if keep(&record) {
                page.push(record);
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    fn seal_share(&self, record: &KeyRecord, share: &KeyShare) -> anyhow::Result<Vec<u8>> {
        let plain = share.to_secret_bytes()?;
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let dek = self.dek.read();
        let ct = XChaCha20Poly1305::new(dek.as_ref().ok_or_else(sealed_error)?.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &share_aad(record),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing a share failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unseal_share(&self, record: &KeyRecord, sealed: &[u8]) -> anyhow::Result<KeyShare> {
        anyhow::ensure!(
            sealed.len() > 24,
            "sealed share of {} is truncated",
            record.name
        );
        let dek = self.dek.read();
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(dek.as_ref().ok_or_else(sealed_error)?.as_ref().into())
                .decrypt(
                    XNonce::from_slice(&sealed[..24]),
                    Payload {
                        msg: &sealed[24..],
                        aad: &share_aad(record),
                    },
                )
                .map_err(|_| {
                    anyhow::anyhow!(
                        "sealed share of {} does not open: corrupted or moved",
                        record.name
                    )
                })?,
        );
        Ok(KeyShare::from_secret_bytes(
            curve_of(record.algorithm),
            &plain,
        )?)
    }

    pub fn contains_key(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.keys.contains_key(name)?)
    }

    /// Stores a key's record, policy and sealed share together, durably.
    pub fn put_key(
        &self,
        record: &KeyRecord,
        policy: &api::KeyPolicy,
        share: &KeyShare,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_share(record, share)?;
        let name = record.name.as_bytes();
        let json = self.write_tagged(Tagged::Keys, name, record)?;
        let policy = self.write_tagged(Tagged::Policies, name, policy)?;
        (&self.keys, &self.shares, &self.policies)
            .transaction(|(keys, shares, policies)| {
                keys.insert(record.name.as_bytes(), json.as_slice())?;
                shares.insert(record.name.as_bytes(), sealed.as_slice())?;
                policies.insert(record.name.as_bytes(), policy.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| anyhow::anyhow!("storing key {}: {e:?}", record.name))?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores a key's record and policy with no share: this node left the key's committee, or
    /// the key was retired. The sealed share is overwritten and removed in the same
    /// transaction.
    pub fn put_public(
        &self,
        record: &KeyRecord,
        policy: &api::KeyPolicy,
    ) -> Result<(), StoreError> {
        let name = record.name.as_bytes();
        let json = self.write_tagged(Tagged::Keys, name, record)?;
        let policy = self.write_tagged(Tagged::Policies, name, policy)?;
        let trees = (&self.keys, &self.shares, &self.policies, &self.previous);
        trees
            .transaction(|(keys, shares, policies, previous)| {
                keys.insert(record.name.as_bytes(), json.as_slice())?;
                shares.remove(record.name.as_bytes())?;
                previous.remove(record.name.as_bytes())?;
                policies.insert(record.name.as_bytes(), policy.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| anyhow::anyhow!("storing key {}: {e:?}", record.name))?;
        self.db.flush()?;
        Ok(())
    }

    /// The public record of one key, if this node knows it.
    pub fn record(&self, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        match self.keys.get(name)? {
            Some(json) => Ok(Some(self.read_tagged(
                Tagged::Keys,
                name.as_bytes(),
                &json,
            )?)),
            None => Ok(None),
        }
    }

    /// Every key node `me` holds a share of, with the share unsealed.
    pub fn load_keys(&self, me: u16) -> Result<Vec<(KeyRecord, KeyShare)>, StoreError> {
        let mut out = Vec::new();
        for item in self.keys.iter() {
            let (name, json) = item?;
            let record: KeyRecord = self.read_tagged(Tagged::Keys, &name, &json)?;
            if !record.held_by(me) {
                continue;
            }
            let sealed = self
                .shares
                .get(&name)?
                .ok_or_else(|| anyhow::anyhow!("key {} has no share in the store", record.name))?;
            let share = self.unseal_share(&record, &sealed)?;
            out.push((record, share));
        }
        Ok(out)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_a_lock_that_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = open_db(dir.path(), 1 << 20).unwrap();
        assert!(sled_config(dir.path(), 1 << 20).open().is_err());
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            drop(held);
        });
        assert!(open_db(dir.path(), 1 << 20).is_ok());
        releaser.join().unwrap();
    }

    #[test]
    fn wrong_passphrase_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), "right").unwrap();
            store.flush().unwrap();
        }
        let r = Store::open(dir.path(), "wrong");
        assert!(
            matches!(r, Err(StoreError::WrongPassphrase)),
            "{:?}",
            r.err()
        );
        let store = Store::open(dir.path(), "right").unwrap();
        store.change_passphrase("new").unwrap();
        drop(store);
        assert!(matches!(
            Store::open(dir.path(), "right"),
            Err(StoreError::WrongPassphrase)
        ));
        assert!(Store::open(dir.path(), "new").is_ok());
    }

    fn one_key(store: &Store) -> KeyRecord {
        let mut shares =
            keyshares::dkg::run_in_memory(Curve::Ed25519, 2, &[1, 2], &mut rand::rngs::OsRng)
                .unwrap();
        let (share, public) = shares.remove(0);
        let record = KeyRecord {
            name: "k".into(),
            algorithm: api::Algorithm::FrostEd25519,
            threshold: 2,
            participants: vec![1, 2],
            created_at: "2026-01-01T00:00:00Z".into(),
            public_keys: hex::encode(public.to_bytes().unwrap()),
            session: "s1".into(),
            generation: 0,
            state: api::KeyState::Active,
            retired_at: None,
        };
        store
            .put_key(&record, &api::KeyPolicy::default(), &share)
            .unwrap();
        assert_eq!(store.load_keys(1).unwrap().len(), 1);
        record
    }

    #[test]
    fn a_share_opens_only_beside_the_record_it_was_sealed_with() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "pass").unwrap();
        let record = one_key(&store);
        // Same name and ceremony, another threshold, participants, generation or public keys:
        // even with a valid MAC (as a bug that rewrote the record would leave it), the share
        // does not open.
        for edit in [
            |r: &mut KeyRecord| r.threshold = 1,
            |r: &mut KeyRecord| r.participants = vec![1, 3],
            |r: &mut KeyRecord| r.generation = 1,
            |r: &mut KeyRecord| r.public_keys = "00".into(),
        ] {
            let mut edited = record.clone();
            edit(&mut edited);
            let stored = store.write_tagged(Tagged::Keys, b"k", &edited).unwrap();
            store.keys.insert("k", stored).unwrap();
            let e = store.load_keys(1).unwrap_err().to_string();
            assert!(e.contains("does not open"), "{e}");
        }
    }

    #[test]
    fn an_edited_record_policy_or_client_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "pass").unwrap();
        let record = one_key(&store);
        // The record as a hand edit leaves it: plain JSON, or the old tag kept.
        let mut edited = record.clone();
        edited.threshold = 1;
        store
            .keys
            .insert("k", serde_json::to_vec(&edited).unwrap())
            .unwrap();
        for e in [
            store.load_keys(1).unwrap_err().to_string(),
            store.record("k").unwrap_err().to_string(),
            store
                .records_page(None, 10, |_| true)
                .unwrap_err()
                .to_string(),
        ] {
            assert!(e.contains("key k fails its integrity check"), "{e}");
        }
        let stored = store.policies.get("k").unwrap().unwrap().to_vec();
        let mut widened = stored.clone();
        let json_end = widened.len() - 32;
        widened.splice(..json_end, br#"{"decrypt":["*"]}"#.iter().copied());
        store.policies.insert("k", widened).unwrap();
        let bytes = store.policies.get("k").unwrap().unwrap();
        let e = store
            .read_tagged::<api::KeyPolicy>(Tagged::Policies, b"k", &bytes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the policy of key k"), "{e}");
        // Checked while sealed too: the MAC keys stay, the data key goes.
        store.seal();
        let e = store.record("k").unwrap_err().to_string();
        assert!(e.contains("key k"), "{e}");
    }

    #[test]
    fn an_edited_client_is_refused_at_load_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "pass").unwrap();
        let key = api::ClientKey::generate("alice");
        let alice = api::ClientInfo {
            name: "alice".into(),
            public_key: key.public_hex(),
            roles: vec![],
        };
        clients::put(&store, &alice).unwrap();
        assert_eq!(clients::load(&store, &[]).unwrap().len(), 1);
        let mut admin = alice.clone();
        admin.roles = vec![api::Role::Admin];
        store
            .clients
            .insert("alice", serde_json::to_vec(&admin).unwrap())
            .unwrap();
        let e = clients::load(&store, &[]).unwrap_err().to_string();
        assert!(e.contains("client alice"), "{e}");
    }

    fn open_limited(dir: &Path) -> Store {
        let limits = crate::config::Limits {
            store_cache_bytes: 1 << 20,
            refusals_per_peer: 8,
            ..Default::default()
        };
        Store::open_with(
            dir,
            &Unsealer::Passphrase(Zeroizing::new("pass".into())),
            &limits,
        )
        .unwrap()
    }

    #[test]
    fn the_page_cache_and_each_peers_refusals_are_bounded_by_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(sled_config(dir.path(), 1 << 20).cache_capacity, 1 << 20);
        let store = open_limited(dir.path());
        assert_eq!(store.cache_bytes(), 1 << 20);
        let until = crate::clock::now_ms() + 600_000;
        for i in 0..8 {
            assert_eq!(
                store.refuse("k", &format!("s{i}"), 3, Some(until)).unwrap(),
                Refused::Kept
            );
            // Asked again: kept once, and counted once.
            assert_eq!(
                store.refuse("k", &format!("s{i}"), 3, Some(until)).unwrap(),
                Refused::Kept
            );
        }
        // Peer 3 is at its limit: its next request is not granted, and nothing it asked for
        // before is pushed out to make room.
        assert_eq!(
            store.refuse("k", "s8", 3, Some(until)).unwrap(),
            Refused::AskerAtLimit
        );
        assert!(!store.is_refused("s8").unwrap());
        assert!((0..8).all(|i| store.is_refused(&format!("s{i}")).unwrap()));
        // Another peer has a share of its own.
        assert_eq!(
            store.refuse("k", "t0", 2, Some(until)).unwrap(),
            Refused::Kept
        );
        // A ceremony that can no longer be confirmed is refused without being remembered.
        assert_eq!(store.refuse("k", "old", 3, None).unwrap(), Refused::Closed);
        assert_eq!(store.refusals(), 9);
        drop(store);
        // The counts survive a restart.
        let store = open_limited(dir.path());
        assert_eq!(
            store.refuse("k", "s8", 3, Some(until)).unwrap(),
            Refused::AskerAtLimit
        );
        // Expired refusals go, and free their asker's share.
        store.forget_expired_refusals(until + 1).unwrap();
        assert_eq!(store.refusals(), 0);
        assert_eq!(
            store.refuse("k", "s8", 3, Some(until + 600_000)).unwrap(),
            Refused::Kept
        );
    }

    #[test]
    fn a_refused_or_closed_ceremony_is_never_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_limited(dir.path());
        let record = one_key(&store);
        let statement = |session: &str| crate::state::generation::GenerationStatement {
            key: "k".into(),
            generation: 1,
            session: session.into(),
            coordinator: 1,
            members: vec![1, 2],
            record_sha256: String::new(),
            spec_sha256: String::new(),
        };
        let later = crate::clock::now_ms() + 600_000;
        let policy = api::KeyPolicy::default();
        store.refuse("k", "refused", 2, Some(later)).unwrap();
        let err = store
            .put_pending(
                &record,
                &policy,
                &statement("refused"),
                "key.refresh",
                None,
                later,
            )
            .unwrap_err();
        assert!(err.to_string().contains("refused here"), "{err}");
        let err = store
            .put_pending(&record, &policy, &statement("late"), "key.refresh", None, 1)
            .unwrap_err();
        assert!(err.to_string().contains("past its window"), "{err}");
        assert!(store.pending("k").unwrap().is_none());
        store
            .put_pending(
                &record,
                &policy,
                &statement("fine"),
                "key.refresh",
                None,
                later,
            )
            .unwrap();
        // Confirmed here: too late to refuse it.
        assert!(store.refuse("k", "fine", 2, Some(later)).is_err());
        assert!(store.refuse("k", "fine", 2, None).is_err());
    }
}
