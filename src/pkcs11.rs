//! Keys that never leave a PKCS#11 token (DESIGN.md §8): the AES-256 key that wraps a store's
//! data key here, the node's Ed25519 identity key in `identity::token_key`. One session per
//! operation, logged in with the token's user PIN.
//!
//! The store's data key is wrapped by an AES-256 key on the token.
//!
//! The key is generated on the token (`CKA_SENSITIVE`, not `CKA_EXTRACTABLE`) the first time
//! a store is wrapped with it; only the token can then unwrap the store. Wrapping is
//! `CKM_AES_GCM` through `C_Encrypt`/`C_Decrypt`: the data key is a 32-byte value in the node's
//! memory, not a token object, and GCM authenticates it, so a token key that is not the one
//! that wrapped this store is told apart from a corrupt header. (`CKM_AES_KEY_WRAP_PAD` works
//! through `C_WrapKey`/`C_UnwrapKey` on token objects: unwrapping would have to create an
//! extractable key object just to read the data key back.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Why the token did not do what was asked. The messages are the operator's contract (README,
/// "Running with an HSM").
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("wrong PIN for token {token}")]
    WrongPin { token: String },
    /// Module, token or key missing, or a key that does not fit; the message names it.
    #[error("{0}")]
    Failed(String),
    /// The token's data is not what this node wrote.
    #[error("corrupt seal header")]
    CorruptHeader,
}

/// Binds a wrapped data key to its purpose (GCM associated data).
const AAD: &[u8] = b"keyquorum/seal/pkcs11/v1";
const MECHANISM: &str = "CKM_AES_GCM";
const NOTHING_CHANGED: &str = "nothing was changed";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenHeader {
    kind: String,
    token_label: String,
    key_label: String,
    mechanism: String,
    iv: String,
    wrapped_dek: String,
}

/// Where the wrapping key lives, and the PIN that opens the token.
#[derive(Clone)]
pub struct TokenSeal {
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for TokenSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenSeal({}, token {}, key {}, <PIN redacted>)",
            self.module.display(),
            self.token_label,
            self.key_label
        )
    }
}

/// Initialised modules, one per library path for the whole process, never finalised. PKCS#11
/// allows one `C_Initialize` per process, and a login belongs to the application rather than
/// the session (PKCS#11 2.40, `C_Login`: all of an application's sessions with a token share
/// its login state). Two nodes in one process (tests, the demo) must neither finalise each
/// other's module nor ride on each other's login, so that a wrong PIN is always refused:
/// holding this lock for a whole operation, sessions closed before it is released, gives each
/// operation a fresh login.
static MODULES: parking_lot::Mutex<BTreeMap<PathBuf, Pkcs11>> =
    parking_lot::const_mutex(BTreeMap::new());

fn failure(message: String) -> TokenError {
    TokenError::Failed(format!("{message} ({NOTHING_CHANGED})"))
}

impl TokenSeal {
    /// Runs `op` in a logged-in read-write session on the token. A failure is tried again a
    /// few times, a moment apart, before it is reported (a wrong PIN at once): a token whose
    /// files another process is rewriting (SoftHSM2 shared by several nodes) answers
    /// `CKR_GENERAL_ERROR` or hides itself for that moment. Every operation here either changes
    /// nothing or can be repeated (a key created by a failed attempt is found by the next).
    pub(crate) fn with_session<T>(
        &self,
        mut op: impl FnMut(&Session) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        const ATTEMPTS: u64 = 4;
        let mut attempt = 1;
        loop {
            match self.try_session(&mut op) {
                Err(e) if attempt < ATTEMPTS && !matches!(e, TokenError::WrongPin { .. }) => {
                    tracing::debug!(error = %e, attempt, "token operation failed; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn try_session<T>(
        &self,
        op: &mut impl FnMut(&Session) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let mut modules = MODULES.lock();
        if !modules.contains_key(&self.module) {
            if !self.module.exists() {
                return Err(failure(format!(
                    "PKCS#11 module {} not found",
                    self.module.display()
                )));
            }
            let context = Pkcs11::new(&self.module).map_err(|e| {
                failure(format!(
                    "PKCS#11 module {} cannot be loaded: {e}",
                    self.module.display()
                ))
            })?;
            match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
                Err(e) => {
                    return Err(failure(format!(
                        "PKCS#11 module {} does not initialise: {e}",
                        self.module.display()
                    )))
                }
            }
            modules.insert(self.module.clone(), context);
        }
        let context = &modules[&self.module];
        let token_error = |e: CkError| failure(format!("token {}: {e}", self.token_label));
        let mut labels = Vec::new();
        let mut found = None;
        for slot in context.get_slots_with_token().map_err(token_error)? {
            let info = context.get_token_info(slot).map_err(token_error)?;
            let label = info.label().trim_end().to_string();
            if info.token_initialized() && label == self.token_label {
                found = Some(slot);
                break;
            }
            if info.token_initialized() {
                labels.push(label);
            }
        }
        let slot = found.ok_or_else(|| {
            failure(format!(
                "token {} not found in PKCS#11 module {} (tokens present: {})",
                self.token_label,
                self.module.display(),
                if labels.is_empty() {
                    "none".to_string()
                } else {
                    labels.join(", ")
                }
            ))
        })?;
        let session = context.open_rw_session(slot).map_err(token_error)?;
        let pin = AuthPin::from(self.pin.as_str());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinLenRange | RvError::PinInvalid,
                _,
            )) => {
                return Err(TokenError::WrongPin {
                    token: self.token_label.clone(),
                })
            }
            Err(e) => return Err(token_error(e)),
        }
        let result = op(&session);
        drop(session);
        result
    }

    /// The wrapping key on the token, if it is there; refuses one that could leave the token.
    fn find_key(&self, session: &Session) -> Result<Option<ObjectHandle>, TokenError> {
        let token_error = |e: CkError| failure(format!("token {}: {e}", self.token_label));
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
            ])
            .map_err(token_error)?;
        let key = match found.as_slice() {
            [] => return Ok(None),
            [key] => *key,
            _ => {
                return Err(failure(format!(
                    "token {} holds {} secret keys labelled {}; keyquorum needs exactly one",
                    self.token_label,
                    found.len(),
                    self.key_label
                )))
            }
        };
        let attributes = session
            .get_attributes(key, &[AttributeType::KeyType, AttributeType::Extractable])
            .map_err(token_error)?;
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) if t != KeyType::AES => {
                    return Err(failure(format!(
                        "key {} on token {} is not an AES key",
                        self.key_label, self.token_label
                    )))
                }
                Attribute::Extractable(true) => {
                    return Err(failure(format!(
                        "key {} on token {} is extractable; keyquorum seals only with keys \
                         that cannot leave the token",
                        self.key_label, self.token_label
                    )))
                }
                _ => {}
            }
        }
        Ok(Some(key))
    }

    fn create_key(&self, session: &Session) -> Result<ObjectHandle, TokenError> {
        let key = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::ValueLen(Ulong::from(32)),
                    Attribute::Label(self.key_label.as_bytes().to_vec()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .map_err(|e| {
                failure(format!(
                    "cannot create key {} on token {}: {e}",
                    self.key_label, self.token_label
                ))
            })?;
        tracing::info!(
            token = %self.token_label,
            key = %self.key_label,
            "created the seal key on the token"
        );
        Ok(key)
    }

    /// A header holding `dek` wrapped by the token's key, created there if absent.
    pub fn wrap(&self, dek: &[u8; 32]) -> Result<Vec<u8>, TokenError> {
        let mut iv = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let wrapped = self.with_session(|session| {
            let key = match self.find_key(session)? {
                Some(key) => key,
                None => self.create_key(session)?,
            };
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, AAD, Ulong::from(128))
                .map_err(|e| failure(format!("GCM parameters: {e}")))?;
            session
                .encrypt(&Mechanism::AesGcm(params), key, dek)
                .map_err(|e| {
                    failure(format!(
                        "key {} on token {} cannot wrap the data key: {e}",
                        self.key_label, self.token_label
                    ))
                })
        })?;
        let header = TokenHeader {
            kind: "pkcs11".into(),
            token_label: self.token_label.clone(),
            key_label: self.key_label.clone(),
            mechanism: MECHANISM.into(),
            iv: hex::encode(iv),
            wrapped_dek: hex::encode(wrapped),
        };
        serde_json::to_vec(&header).map_err(|e| TokenError::Failed(e.to_string()))
    }

    /// The data key in `header`, unwrapped by the token's key; never creates a key.
    pub fn unwrap(&self, header: &[u8]) -> Result<Zeroizing<[u8; 32]>, TokenError> {
        let corrupt = || TokenError::CorruptHeader;
        let header: TokenHeader = serde_json::from_slice(header).map_err(|_| corrupt())?;
        let mut iv = hex::decode(&header.iv).map_err(|_| corrupt())?;
        let wrapped = hex::decode(&header.wrapped_dek).map_err(|_| corrupt())?;
        if header.mechanism != MECHANISM || iv.len() != 12 {
            return Err(corrupt());
        }
        let plain = self.with_session(|session| {
            let key = self.find_key(session)?.ok_or_else(|| {
                failure(format!(
                    "key {} is missing on token {}: the store's data key was wrapped by key {} \
                     on token {}",
                    self.key_label, self.token_label, header.key_label, header.token_label
                ))
            })?;
            let params = GcmParams::new(&mut iv, AAD, Ulong::from(128))
                .map_err(|e| failure(format!("GCM parameters: {e}")))?;
            session
                .decrypt(&Mechanism::AesGcm(params), key, &wrapped)
                .map(Zeroizing::new)
                .map_err(|_| {
                    failure(format!(
                        "key {} on token {} cannot unwrap this store's data key (it was wrapped \
                         by key {} on token {})",
                        self.key_label, self.token_label, header.key_label, header.token_label
                    ))
                })
        })?;
        if plain.len() != 32 {
            return Err(corrupt());
        }
        let mut dek = Zeroizing::new([0u8; 32]);
        dek.copy_from_slice(&plain);
        Ok(dek)
    }

    /// Whether the wrapping key is on the token (for `store rewrap` and the tests).
    pub fn key_present(&self) -> Result<bool, TokenError> {
        self.with_session(|session| Ok(self.find_key(session)?.is_some()))
    }
}
