//! A key's generations on disk (DESIGN.md §11): the pending result of a ceremony sealed beside
//! the live share, the certificate that makes it live, and the share it replaced, kept until
//! every member has moved on. Each step is one sled transaction, flushed before the node says
//! anything about it, so a process killed at any moment leaves one of the states a peer may
//! already have been told of.

use anyhow::Context;
use keyshares::KeyShare;
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::{KeyRecord, Store, StoreError, Tagged};
use crate::state::generation::{GenerationCertificate, GenerationStatement};

/// A ceremony's result on one member, sealed, before its certificate is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingGeneration {
    pub record: KeyRecord,
    pub policy: api::KeyPolicy,
    /// What this node signed.
    pub statement: GenerationStatement,
    /// The audit action of the ceremony: `key.create`, `key.refresh` or `key.reshare`.
    pub action: String,
    /// Hex of the sealed share; absent for a member that holds no share of the result (a
    /// dealer leaving the committee).
    pub sealed_share: Option<String>,
}

/// The generation a certified one replaced.
#[derive(Serialize, Deserialize)]
struct PreviousGeneration {
    record: KeyRecord,
    /// Hex of the sealed share, bound to `record` as it was sealed.
    sealed_share: String,
}

/// What an activation changed: the new record and share, and the share it replaced.
pub struct Activated {
    pub action: String,
    pub record: KeyRecord,
    pub policy: api::KeyPolicy,
    pub share: Option<KeyShare>,
    pub previous: Option<(KeyRecord, KeyShare)>,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value).context("encoding stored state")?)
}

pub(super) fn tx_error(what: &str, e: impl std::fmt::Debug) -> StoreError {
    StoreError::Other(anyhow::anyhow!("{what}: {e:?}"))
}

/// A transaction that aborted for a stated reason, or failed underneath.
fn tx_refusal(what: &str, e: sled::transaction::TransactionError<&'static str>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(reason) => {
            StoreError::Other(anyhow::anyhow!("{what}: {reason}"))
        }
        sled::transaction::TransactionError::Storage(e) => e.into(),
    }
}

impl Store {
    /// Seals `share` beside the live one as the pending result of the ceremony `statement`
    /// describes. Refused when this node promised never to confirm that ceremony, or when it
    /// is past `confirm_by_ms`, the end of the ceremony's window (the instant from which a
    /// refusal of it is no longer kept).
    pub fn put_pending(
        &self,
        record: &KeyRecord,
        policy: &api::KeyPolicy,
        statement: &GenerationStatement,
        action: &str,
        share: Option<&KeyShare>,
        confirm_by_ms: u64,
    ) -> Result<(), StoreError> {
        let sealed_share = share
            .map(|s| self.seal_share(record, s).map(hex::encode))
            .transpose()?;
        let pending = self.write_tagged(
            Tagged::Pending,
            record.name.as_bytes(),
            &PendingGeneration {
                record: record.clone(),
                policy: policy.clone(),
                statement: statement.clone(),
                action: action.to_string(),
                sealed_share,
            },
        )?;
        (&self.pending, &self.refusals)
            .transaction(|(pending_tree, refusals)| {
                if refusals.get(statement.session.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort("refused here"));
                }
                // Read after the refusals: a refusal forgotten before that read expired
                // before this clock reading too.
                if crate::clock::now_ms() > confirm_by_ms {
                    return Err(ConflictableTransactionError::Abort("past its window"));
                }
                pending_tree.insert(record.name.as_bytes(), pending.as_slice())?;
                Ok(())
            })
            .map_err(|e| tx_refusal("ceremony not confirmed", e))?;
        self.db.flush()?;
        Ok(())
    }

    pub fn pending(&self, name: &str) -> Result<Option<PendingGeneration>, StoreError> {
        self.pending
            .get(name)?
            .map(|v| self.read_tagged(Tagged::Pending, name.as_bytes(), &v))
            .transpose()
            .map_err(Into::into)
    }

    pub fn all_pending(&self) -> Result<Vec<PendingGeneration>, StoreError> {
        self.pending
            .iter()
            .map(|item| {
                let (name, v) = item?;
                Ok(self.read_tagged(Tagged::Pending, &name, &v)?)
            })
            .collect()
    }

    /// Drops the pending result of ceremony `session`, if that is the one pending.
    pub fn discard_pending(&self, name: &str, session: &str) -> Result<bool, StoreError> {
        let discarded = self
            .pending
            .transaction(|tree| {
                let Some(v) = tree.get(name.as_bytes())? else {
                    return Ok(false);
                };
                let p: PendingGeneration = self
                    .read_tagged(Tagged::Pending, name.as_bytes(), &v)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                if p.statement.session != session {
                    return Ok(false);
                }
                tree.remove(name.as_bytes())?;
                Ok(true)
            })
            .map_err(|e| tx_error("discarding a pending generation", e))?;
        self.db.flush()?;
        Ok(discarded)
    }

    /// Makes the pending generation `certificate` certifies the key's live one, in one
    /// transaction: record, share, policy and certificate in; the share it replaces kept as
    /// the previous generation; the pending entry out.
    pub fn activate(&self, certificate: &GenerationCertificate) -> Result<Activated, StoreError> {
        let name = certificate.statement.key.as_str();
        let pending = self
            .pending(name)?
            .filter(|p| p.statement == certificate.statement)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no pending generation of key {name} from ceremony {}",
                    certificate.statement.session
                )
            })?;
        let old_record = self.record(name)?;
        let old_share = self.shares.get(name)?;
        let previous = match (&old_record, &old_share) {
            (Some(record), Some(sealed)) => Some(self.write_tagged(
                Tagged::Previous,
                name.as_bytes(),
                &PreviousGeneration {
                    record: record.clone(),
                    sealed_share: hex::encode(sealed),
                },
            )?),
            _ => None,
        };
        let new_share = pending
            .sealed_share
            .as_ref()
            .map(|h| hex::decode(h).context("corrupt pending share"))
            .transpose()?;
        // The pending share was sealed with the pending record: they move in together.
        let record_json = self.write_tagged(Tagged::Keys, name.as_bytes(), &pending.record)?;
        let policy_json = self.write_tagged(Tagged::Policies, name.as_bytes(), &pending.policy)?;
        let cert_json = json(certificate)?;
        let trees = (
            &self.keys,
            &self.shares,
            &self.policies,
            &self.pending,
            &self.previous,
            &self.certificates,
        );
        trees
            .transaction(
                |(keys, shares, policies, pending_tree, previous_tree, certs)| {
                    // Discarded meanwhile (on a refusal): nothing to activate.
                    if pending_tree.get(name.as_bytes())?.is_none() {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                    keys.insert(name.as_bytes(), record_json.as_slice())?;
                    match &new_share {
                        Some(s) => shares.insert(name.as_bytes(), s.as_slice())?,
                        None => shares.remove(name.as_bytes())?,
                    };
                    policies.insert(name.as_bytes(), policy_json.as_slice())?;
                    pending_tree.remove(name.as_bytes())?;
                    // A later certified generation makes any older one useless (DESIGN.md §11).
                    match &previous {
                        Some(p) => previous_tree.insert(name.as_bytes(), p.as_slice())?,
                        None => previous_tree.remove(name.as_bytes())?,
                    };
                    certs.insert(
                        certificate.statement.session.as_bytes(),
                        cert_json.as_slice(),
                    )?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                },
            )
            .map_err(|e| tx_error(&format!("activating key {name}"), e))?;
        self.db.flush()?;
        let share = new_share
            .map(|s| self.unseal_share(&pending.record, &s))
            .transpose()?;
        let previous = match (old_record, old_share) {
            (Some(record), Some(sealed)) => {
                let share = self.unseal_share(&record, &sealed)?;
                Some((record, share))
            }
            _ => None,
        };
        Ok(Activated {
            action: pending.action,
            record: pending.record,
            policy: pending.policy,
            share,
            previous,
        })
    }

    /// Every previous generation this node still keeps, unsealed.
    pub fn load_previous(&self) -> Result<Vec<(KeyRecord, KeyShare)>, StoreError> {
        self.previous
            .iter()
            .map(|item| {
                let (name, v) = item?;
                let p: PreviousGeneration = self.read_tagged(Tagged::Previous, &name, &v)?;
                let sealed = hex::decode(&p.sealed_share).context("corrupt previous share")?;
                let share = self.unseal_share(&p.record, &sealed)?;
                Ok((p.record, share))
            })
            .collect()
    }

    /// Names of the keys with a previous generation kept.
    pub fn previous_names(&self) -> Result<Vec<String>, StoreError> {
        self.previous
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// Erases the previous generation of `name`, if the live one is still `live_session`'s
    /// (the generation every member acknowledged).
    pub fn drop_previous(&self, name: &str, live_session: &str) -> Result<bool, StoreError> {
        let dropped = (&self.keys, &self.previous)
            .transaction(|(keys, previous)| {
                let Some(v) = keys.get(name.as_bytes())? else {
                    return Ok(false);
                };
                let live: KeyRecord = self
                    .read_tagged(Tagged::Keys, name.as_bytes(), &v)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                if live.session != live_session || previous.get(name.as_bytes())?.is_none() {
                    return Ok(false);
                }
                previous.remove(name.as_bytes())?;
                Ok(true)
            })
            .map_err(|e| tx_error("dropping a previous generation", e))?;
        self.db.flush()?;
        Ok(dropped)
    }

    pub fn certificate(&self, session: &str) -> Result<Option<GenerationCertificate>, StoreError> {
        self.certificates
            .get(session)?
            .map(|v| serde_json::from_slice(&v).context("corrupt generation certificate"))
            .transpose()
            .map_err(Into::into)
    }

    /// Records a certificate this node assembled as a coordinator, with the ceremony as one
    /// still to close. Refused when this node promised never to commit it, or past
    /// `confirm_by_ms` (as [`Store::put_pending`]).
    pub fn commit_coordinated(
        &self,
        certificate: &GenerationCertificate,
        confirm_by_ms: u64,
    ) -> Result<(), StoreError> {
        let s = &certificate.statement;
        let cert_json = json(certificate)?;
        (&self.certificates, &self.coordinated, &self.refusals)
            .transaction(|(certs, coordinated, refusals)| {
                if refusals.get(s.session.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort("refused here"));
                }
                if crate::clock::now_ms() > confirm_by_ms {
                    return Err(ConflictableTransactionError::Abort("past its window"));
                }
                certs.insert(s.session.as_bytes(), cert_json.as_slice())?;
                coordinated.insert(s.session.as_bytes(), s.key.as_bytes())?;
                Ok(())
            })
            .map_err(|e| tx_refusal("ceremony not committed", e))?;
        self.db.flush()?;
        Ok(())
    }

    /// Ceremonies this node committed as coordinator that are not closed yet: (session, key).
    pub fn coordinated(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.coordinated
            .iter()
            .map(|item| {
                let (s, k) = item?;
                Ok((
                    String::from_utf8_lossy(&s).into_owned(),
                    String::from_utf8_lossy(&k).into_owned(),
                ))
            })
            .collect()
    }

    pub fn close_coordinated(&self, session: &str) -> Result<(), StoreError> {
        self.coordinated.remove(session)?;
        self.db.flush()?;
        Ok(())
    }
}
