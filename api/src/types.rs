//! Request and response bodies of the client API (`/v1/...`).

use serde::{Deserialize, Serialize};

/// The algorithms a key can be created for. The purpose follows from it and never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Algorithm {
    /// FROST (RFC 9591) over Ed25519; signatures are ordinary RFC 8032 Ed25519 signatures.
    #[serde(rename = "frost-ed25519")]
    FrostEd25519,
    /// FROST over secp256k1; signatures are `R (33-byte SEC1) ‖ z (32 bytes)`.
    #[serde(rename = "frost-secp256k1")]
    FrostSecp256k1,
    /// Threshold decryption of RFC 9180 HPKE, DHKEM(X25519, HKDF-SHA256), base mode.
    #[serde(rename = "hpke-x25519")]
    HpkeX25519,
    /// Threshold decryption of ECIES over secp256k1 in eciespy's default format.
    #[serde(rename = "ecies-secp256k1")]
    EciesSecp256k1,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::FrostEd25519,
        Algorithm::FrostSecp256k1,
        Algorithm::HpkeX25519,
        Algorithm::EciesSecp256k1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::FrostEd25519 => "frost-ed25519",
            Algorithm::FrostSecp256k1 => "frost-secp256k1",
            Algorithm::HpkeX25519 => "hpke-x25519",
            Algorithm::EciesSecp256k1 => "ecies-secp256k1",
        }
    }

    pub fn purpose(self) -> Purpose {
        match self {
            Algorithm::FrostEd25519 | Algorithm::FrostSecp256k1 => Purpose::Sign,
            Algorithm::HpkeX25519 | Algorithm::EciesSecp256k1 => Purpose::Decrypt,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown algorithm {s:?}; expected one of frost-ed25519, frost-secp256k1, hpke-x25519, ecies-secp256k1"
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Sign,
    Decrypt,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Every participant holds its share and all n confirmations.
    #[default]
    Active,
    /// Deleted: no node holds a share any more; the public data stays, to verify old
    /// signatures.
    Retired,
}

/// `POST /v1/keys/{name}/refresh`: new shares of the same key for every participant. The body
/// is empty or `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {}

/// `POST /v1/keys/{name}/repair`: rebuild the share of a participant that lost it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// The participant whose share is rebuilt.
    pub node: u16,
    /// Participants that help (at least the threshold, the node itself excluded); the first
    /// `threshold` other participants when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpers: Option<Vec<u16>>,
}

/// `POST /v1/keys/{name}/reshare`: the same key shared to a new committee and/or threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReshareRequest {
    /// The new committee: cluster members' node ids.
    pub participants: Vec<u16>,
    /// The new threshold: 2 ≤ threshold ≤ number of participants.
    pub threshold: u16,
    /// Current participants that deal (at least the current threshold); all of them when
    /// absent. Leave out only nodes that are gone for good: a node left out keeps its share of
    /// the same key, so fewer than the current threshold may be left out of both committees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealers: Option<Vec<u16>>,
}

/// `POST /v1/keys`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Unique, `[A-Za-z0-9._-]{1,64}`.
    pub name: String,
    pub algorithm: Algorithm,
    /// Shares needed to sign or decrypt: 2 ≤ t ≤ number of participants.
    pub threshold: u16,
    /// Node ids holding a share; all cluster members when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<u16>>,
    /// Who may use the key; when absent the creating client may do everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<KeyPolicy>,
}

/// One participant's public verifying share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyingShare {
    pub node: u16,
    /// Hex, the curve's compressed point encoding (32-byte Edwards / 33-byte SEC1).
    pub verifying_share: String,
}

/// `GET /v1/keys/{name}`: the public data of a key, identical on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub name: String,
    pub algorithm: Algorithm,
    pub purpose: Purpose,
    pub threshold: u16,
    pub participants: Vec<u16>,
    pub state: KeyState,
    /// RFC 3339, UTC, set by the coordinator of the ceremony.
    pub created_at: String,
    /// How many times the shares were renewed (refresh, reshare) since the key was created.
    #[serde(default)]
    pub generation: u32,
    /// While a refresh or reshare is in flight on the answering node: the generation it holds
    /// sealed, waiting for the ceremony's certificate (all members' confirmations). It becomes
    /// `generation` when the certificate arrives, or goes when the ceremony is proven aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_generation: Option<u32>,
    /// RFC 3339, UTC, when the key was retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// Hex: 32-byte Ed25519 point (frost-ed25519), 32-byte X25519 public key (hpke-x25519),
    /// 33-byte compressed SEC1 point (frost-secp256k1, ecies-secp256k1).
    pub public_key: String,
    /// Hex, the frost group verifying key (the Edwards point for hpke-x25519 keys).
    pub group_verifying_key: String,
    pub verifying_shares: Vec<VerifyingShare>,
    pub policy: KeyPolicy,
    /// Cost of the ceremony; only in the answer to the request that ran one (create, refresh,
    /// repair, reshare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceremony: Option<OperationStats>,
}

/// What an operation cost between nodes, as its coordinator counted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationStats {
    /// Peer round trips (all retries included).
    pub rounds: u32,
    /// Peer requests the coordinator sent.
    pub peer_requests: u64,
    /// Bytes on the wire between the coordinator and its peers (request and answer bodies).
    pub peer_bytes: u64,
    /// Wall time at the coordinator.
    pub elapsed_ms: f64,
    /// The same bytes by node: the coordinator first, then every peer it talked to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeTraffic>,
}

/// Peer-protocol body bytes one node sent and received during one operation. Every peer
/// exchange is a request from the coordinator and its answer, so the coordinator's counts of
/// both directions are also each peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeTraffic {
    pub node: u16,
    pub sent_bytes: u64,
    pub received_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /v1/health`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `catching_up` while a node that just started fetches the client and policy
    /// changes it missed (it refuses key operations with 503 `catching_up` meanwhile).
    pub status: String,
    /// The node's id: signed requests name the node they are addressed to.
    #[serde(default)]
    pub node: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerStatus {
    pub node: u16,
    pub name: String,
    pub reachable: bool,
    /// Whether the peer said it is sealed; absent when it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/status`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    pub node: u16,
    pub name: String,
    pub sealed: bool,
    pub keys: usize,
    pub peers: Vec<PeerStatus>,
    pub version: String,
    /// Keys whose holders are between two generations, as each reachable node (this one
    /// included) sees them; empty when every key is settled. A key listed here keeps signing
    /// and decrypting; it settles by itself once the nodes reach each other.
    #[serde(default)]
    pub unsettled_keys: Vec<UnsettledKey>,
    /// Whether the node has caught up on client and policy changes since it started; until
    /// then it refuses key operations with 503 `catching_up`.
    #[serde(default)]
    pub admin_caught_up: bool,
    /// What wraps the node's data key: `passphrase`, or `pkcs11` (a key on an HSM token that
    /// unseals the node with no passphrase).
    #[serde(default = "default_seal")]
    pub seal: String,
}

fn default_seal() -> String {
    "passphrase".into()
}

/// One node's view of a key between two generations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnsettledKey {
    pub key: String,
    pub node: u16,
    /// The generation the node uses.
    pub generation: u32,
    /// A newer generation it holds sealed, waiting for the ceremony's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_generation: Option<u32>,
    /// Whether it keeps the previous generation's share until every member has moved on.
    pub keeps_previous: bool,
}

/// A node left out of an operation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Excluded {
    pub node: u16,
    pub reason: String,
}

/// One message to sign; base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignItem {
    pub message: String,
}

/// `POST /v1/keys/{name}/sign`: either `message` or `batch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Vec<SignItem>>,
}

/// Answer to a single-message sign request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignResponse {
    /// Hex.
    pub signature: String,
    pub signers: Vec<u16>,
    pub excluded: Vec<Excluded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<OperationStats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Answer to a batch sign request: one result per item, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchSignResponse {
    pub results: Vec<SignResult>,
    pub signers: Vec<u16>,
    pub excluded: Vec<Excluded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<OperationStats>,
}

/// `POST /v1/keys/{name}/verify`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Base64.
    pub message: String,
    /// Hex.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
}

/// One ciphertext: HPKE (`enc`, `ciphertext`, `info`, `aad`, `aead`) or ECIES (`ciphertext`
/// alone, eciespy's default format). All byte fields base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiphertextItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc: Option<String>,
    pub ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad: Option<String>,
    /// `aes-128-gcm` (default), `aes-256-gcm` or `chacha20-poly1305`; HPKE only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aead: Option<String>,
}

/// `POST /v1/keys/{name}/decrypt`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    pub ciphertexts: Vec<CiphertextItem>,
    /// End-to-end mode (DESIGN.md §6): the requester's ephemeral X25519 public key, hex. Every
    /// holder seals its partials and proofs to it; no node combines. Inside the signed body, so
    /// no coordinator can substitute its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Holders the coordinator must not ask: the requester found their partials invalid in an
    /// earlier answer to the same ciphertexts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecryptResult {
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<P: AsRef<[u8]>> From<Result<P, String>> for DecryptResult {
    /// One record's outcome: its plaintext (base64), or why it did not open.
    fn from(outcome: Result<P, String>) -> Self {
        match outcome {
            Ok(plain) => DecryptResult {
                plaintext: Some(crate::client::b64(plain.as_ref())),
                error: None,
            },
            Err(e) => DecryptResult {
                plaintext: None,
                error: Some(e),
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecryptResponse {
    /// One result per ciphertext (coordinator-combine mode; in end-to-end mode the node sends
    /// none, and the typed client fills them in after combining).
    pub results: Vec<DecryptResult>,
    /// Nodes whose verified partials were combined (end-to-end mode: whose sealed partials
    /// were relayed).
    pub contributors: Vec<u16>,
    pub excluded: Vec<Excluded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<OperationStats>,
    /// `end_to_end` when the request named `reply_to`, else `coordinator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DecryptMode>,
    /// End-to-end mode: each holder's partials, sealed to `reply_to`, as relayed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_partials: Vec<HolderPartials>,
}

/// Who combines the partials of a decryption (DESIGN.md §6).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DecryptMode {
    /// Either: the requester chooses by naming `reply_to` or not.
    #[default]
    Any,
    /// The requester combines; no node ever holds a plaintext.
    EndToEnd,
    /// The coordinating node combines and answers plaintexts.
    Coordinator,
}

impl DecryptMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DecryptMode::Any => "any",
            DecryptMode::EndToEnd => "end_to_end",
            DecryptMode::Coordinator => "coordinator",
        }
    }

    pub fn is_any(&self) -> bool {
        *self == DecryptMode::Any
    }
}

/// One holder's answer for every ciphertext of an end-to-end decryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HolderPartials {
    pub node: u16,
    /// One per ciphertext, in order.
    pub items: Vec<SealedItem>,
}

/// A holder's partial decryption and DLEQ proof of one ciphertext, sealed to `reply_to`
/// (base64 of `enc ‖ ciphertext`), or why it gave none (errors carry no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/keys/{name}/decrypt/report`: a requester names the holders whose end-to-end
/// partials failed its checks, so the node audits them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptReport {
    /// The nonce of the decrypt request whose answer held the bad partials.
    pub request_nonce: String,
    pub culprits: Vec<Excluded>,
}

/// Answer to a decrypt report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportAccepted {
    pub recorded: bool,
}

/// One plaintext to encrypt to the key; byte fields base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaintextItem {
    pub plaintext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aead: Option<String>,
}

/// `POST /v1/keys/{name}/encrypt`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    pub plaintexts: Vec<PlaintextItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EncryptResponse {
    pub ciphertexts: Vec<CiphertextItem>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `invalid_request`, `not_found`, `conflict`,
    /// `unauthorized`, `ceremony_failed`, `quorum_unavailable`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Nodes to blame, when the failure can be pinned on some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<Excluded>,
}

/// Per-key policy, enforced by every participant before it contributes. Lists hold client
/// names; `"*"` stands for every registered client. Clients with the `admin` role may always
/// read a key and manage its policy, but sign or decrypt only when the policy names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    #[serde(default)]
    pub sign: Vec<String>,
    #[serde(default)]
    pub decrypt: Vec<String>,
    /// Read the key's data with a signed request (bearer tokens read every key).
    #[serde(default)]
    pub read: Vec<String>,
    /// Change this policy, retire the key.
    #[serde(default)]
    pub manage: Vec<String>,
    /// Decryption keys: distinct approvers (other than the requester) whose `X-KQ-Approval`
    /// signatures over the same request a decryption needs; 0 for none.
    #[serde(default)]
    pub decrypt_approvals: u16,
    /// Who may approve decryptions; empty means anyone allowed to decrypt.
    #[serde(default)]
    pub approve: Vec<String>,
    /// `end_to_end` forbids coordinator-combine: every holder refuses a decrypt request that
    /// names no `reply_to` (DESIGN.md §6). Default: either mode.
    #[serde(default, skip_serializing_if = "DecryptMode::is_any")]
    pub decrypt_mode: DecryptMode,
    /// Decryption requests (`/v1/keys/{name}/decrypt-requests`): whether one approver's
    /// refusal closes the request. Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub deny_closes: bool,
    /// Decryption requests: seconds from creation until a request expires unexecuted.
    /// Default 86400 (24 h); 1 to 31 536 000.
    #[serde(
        default = "default_request_ttl",
        skip_serializing_if = "is_default_request_ttl"
    )]
    pub request_ttl_seconds: u64,
}

/// A decryption request's lifetime unless the policy says otherwise: 24 h.
pub const DEFAULT_REQUEST_TTL_SECONDS: u64 = 86_400;

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_request_ttl() -> u64 {
    DEFAULT_REQUEST_TTL_SECONDS
}

fn is_default_request_ttl(s: &u64) -> bool {
    *s == DEFAULT_REQUEST_TTL_SECONDS
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            sign: vec![],
            decrypt: vec![],
            read: vec![],
            manage: vec![],
            decrypt_approvals: 0,
            approve: vec![],
            decrypt_mode: DecryptMode::default(),
            deny_closes: true,
            request_ttl_seconds: DEFAULT_REQUEST_TTL_SECONDS,
        }
    }
}

/// Cluster-wide roles of a client.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Add, change and remove clients; manage every key's policy; seal nodes; read the audit.
    Admin,
    /// Run key ceremonies (`POST /v1/keys`).
    KeyCreator,
    /// Read the audit trail.
    Auditor,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::KeyCreator => "key-creator",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "key-creator" => Ok(Role::KeyCreator),
            "auditor" => Ok(Role::Auditor),
            other => Err(format!(
                "unknown role {other:?}: expected admin, key-creator or auditor"
            )),
        }
    }
}

/// A registered client (`GET /v1/clients`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    /// `[A-Za-z0-9._-]{1,64}`
    pub name: String,
    /// Hex, 32-byte Ed25519 public key.
    pub public_key: String,
    pub roles: Vec<Role>,
}

/// `GET /v1/clients`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientInfo>,
    /// Sequence number of the last client or policy change this node applied.
    pub admin_seq: u64,
}

/// The answer to a client or policy change, applied on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeApplied {
    pub admin_seq: u64,
    pub nodes: Vec<u16>,
}

/// One entry of a node's hash-chained audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    /// RFC 3339 with milliseconds, UTC.
    pub time: String,
    /// Hex SHA-256 of the previous entry (zeros for the first).
    pub prev_hash: String,
    /// The client that asked, when a client did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// e.g. `key.create`, `sign`, `decrypt`, `client.put`, `policy.set`, `seal`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `coordinator` or `participant`.
    pub role: String,
    /// Hashes of messages or ciphertexts and other facts of the operation, never a secret.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    #[serde(default)]
    pub culprits: Vec<u16>,
    /// Hex SHA-256 over this entry without `hash` and `signature`.
    pub hash: String,
    /// Hex Ed25519 signature of the node's identity key over the statement
    /// `keyquorum/audit-head/v1(node, seq, hash)`: the node's signed head at this entry.
    /// Absent only on entries written before trails were signed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

/// A node's signed audit head: the seq and hash of its last entry (0 and zeros for an empty
/// trail), signed by its identity key like the entry itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditHead {
    pub node: u16,
    pub seq: u64,
    pub hash: String,
    pub signature: String,
}

/// Evidence that a node's audit trail is not append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditConflict {
    /// `fork` (`seen` has another hash at the seq of `recorded`, both signed by the node) or
    /// `rollback` (asked for the entry of `recorded`, which it signed, the node answered that
    /// it no longer holds it; `seen` is the head it showed meanwhile).
    pub kind: String,
    pub recorded: AuditHead,
    pub seen: AuditHead,
    /// When it was seen, RFC 3339 UTC.
    pub time: String,
}

/// The latest signed head of a peer this node recorded, and the first conflict it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedHead {
    pub head: AuditHead,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<AuditConflict>,
}

/// `GET /v1/audit/heads`: this node's own head and the heads of its peers it recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditHeads {
    pub own: AuditHead,
    pub peers: Vec<RecordedHead>,
}

/// `GET /v1/audit?after=SEQ&limit=N`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
    /// The same cursor as text, as `GET /v1/keys` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

// The passphrase zeroizes on drop and `Debug` never shows it (DESIGN.md §8).
/// `POST /v1/sys/unseal`
#[derive(
    Clone, Serialize, Deserialize, utoipa::ToSchema, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
#[serde(deny_unknown_fields)]
pub struct UnsealRequest {
    /// The store passphrase. Empty or absent for a node sealed by a PKCS#11 token, which
    /// unseals through the token and needs the request signed by an admin instead.
    #[serde(default)]
    pub passphrase: String,
}

impl std::fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsealRequest { passphrase: <redacted> }")
    }
}

/// `POST /v1/sys/seal` and `/v1/sys/unseal`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealState {
    pub sealed: bool,
}

#[cfg(test)]
mod redaction_tests {
    use super::UnsealRequest;

    #[test]
    fn an_unseal_request_prints_no_passphrase() {
        let request: UnsealRequest =
            serde_json::from_str(r#"{"passphrase":"correct horse battery"}"#).unwrap();
        let shown = format!("{request:?} {request:#?}");
        assert!(!shown.contains("horse"), "{shown}");
        assert_eq!(request.passphrase, "correct horse battery");
    }
}
