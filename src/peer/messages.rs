//! The peer protocol: what a coordinator asks a participant, and what it answers. Each travels
//! as the payload of a signed [`Envelope`]; the envelope's session field names the ceremony or
//! operation the message belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::envelope::Envelope;
pub use crate::request::ClientRequest;
use crate::state::generation::{GenerationCertificate, GenerationStatement, Refusal};
use crate::store::KeyRecord;

pub use crate::request::b64;

/// Everything a participant needs to know to join a key ceremony.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonySpec {
    pub name: String,
    pub algorithm: api::Algorithm,
    pub threshold: u16,
    pub participants: Vec<u16>,
    pub created_at: String,
    pub coordinator: u16,
    /// Who may use the key; each participant derives it from the signed request too.
    pub policy: api::KeyPolicy,
    /// A new key, or new shares of an existing one.
    #[serde(default)]
    pub purpose: CeremonyPurpose,
}

/// What a ceremony makes. Every variant runs the same rounds (DESIGN.md §4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CeremonyPurpose {
    /// A new key (`participants` and `threshold` of the spec).
    #[default]
    Create,
    /// New shares of the key `previous` describes, for all of its participants (frost
    /// `keys::refresh`).
    Refresh { previous: KeyRecord },
    /// `dealers`, holders of `previous`, deal shares of their shares to `participants` with
    /// the spec's threshold; the spec's participants are both together.
    Reshare {
        previous: KeyRecord,
        dealers: Vec<u16>,
        participants: Vec<u16>,
    },
}

impl CeremonyPurpose {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            CeremonyPurpose::Create => "key.create",
            CeremonyPurpose::Refresh { .. } => "key.refresh",
            CeremonyPurpose::Reshare { .. } => "key.reshare",
        }
    }

    /// The key as it was before the ceremony, if it existed.
    pub fn previous(&self) -> Option<&KeyRecord> {
        match self {
            CeremonyPurpose::Create => None,
            CeremonyPurpose::Refresh { previous } | CeremonyPurpose::Reshare { previous, .. } => {
                Some(previous)
            }
        }
    }
}

/// Everything a participant needs to know to take part in the repair of a lost share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairSpec {
    /// The key as the helpers hold it.
    pub record: KeyRecord,
    pub policy: api::KeyPolicy,
    /// The participant whose share is rebuilt.
    pub target: u16,
    pub helpers: Vec<u16>,
    pub coordinator: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerRequest {
    Ping,
    /// The sender's signed audit head; answer with the receiver's own (DESIGN.md §11).
    AuditHead {
        head: api::AuditHead,
    },
    /// The receiver's signed head at entry `seq` of its trail (DESIGN.md §11).
    AuditHeadAt {
        seq: u64,
    },
    /// Join a ceremony; answer with round-1 packages, one envelope per other participant.
    DkgStart {
        spec: CeremonySpec,
        request: ClientRequest,
    },
    /// The others' round-1 packages; answer with echoes.
    DkgRound1 {
        incoming: Vec<Envelope>,
    },
    /// The others' echoes; answer with sealed round-2 packages.
    DkgEcho {
        incoming: Vec<Envelope>,
    },
    /// The sealed round-2 packages addressed to this node; answer with confirmations.
    DkgRound2 {
        incoming: Vec<Envelope>,
    },
    /// The ceremony committed: every member's signed confirmation. Activate the pending
    /// result and acknowledge (DESIGN.md §11).
    DkgCommit {
        certificate: GenerationCertificate,
    },
    /// The ceremony failed: forget it. `refusal`, the coordinator's promise never to commit
    /// it, lets a member that already sealed its result discard it.
    DkgAbort {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<Refusal>,
    },
    /// Every member acknowledged the ceremony's result (`acks`, by node): the share it
    /// replaced may go.
    DkgClose {
        key: String,
        #[serde(with = "crate::state::generation::by_node")]
        acks: BTreeMap<u16, String>,
    },
    /// What this node knows of ceremony `session` of `key`: its certificate, a refusal, or
    /// that it is still in doubt; asked by members that hold its result pending.
    GenerationStatus {
        key: String,
        session: String,
    },
    /// The keys this node holds between two generations, for `GET /v1/status`.
    Unsettled,
    /// Join the repair of a share: a helper answers with a summand for every other helper,
    /// sealed; the participant being repaired acknowledges.
    RepairStart {
        spec: RepairSpec,
        request: ClientRequest,
    },
    /// The summands addressed to this helper; answer with its value for the participant being
    /// repaired, sealed to it.
    RepairDeltas {
        incoming: Vec<Envelope>,
    },
    /// Every helper's value, to the participant being repaired: rebuild, check and store.
    RepairValues {
        incoming: Vec<Envelope>,
    },
    /// Signing round 1: commit to nonces for each message of the client's signed request.
    SignCommit {
        key: String,
        /// The ceremony that made the coordinator's shares of the key: a participant holding
        /// another generation (a refresh or reshare in progress, or missed) refuses instead of
        /// answering with a share that would not combine.
        #[serde(default)]
        key_session: String,
        request: ClientRequest,
    },
    /// Preprocessing (RFC 9591 §5.1): commit to `count` nonces of `key`'s generation
    /// `key_session` ahead of any message, for the sender to use once each.
    SignPresign {
        key: String,
        key_session: String,
        count: u32,
    },
    /// One-round signing with commitments this node made ahead of time: the client's signed
    /// request (each signer reads the messages from it), per message the id of this node's
    /// commitment, and every chosen signer's commitments. Each signer builds the signing
    /// packages itself from the client's messages and these commitments.
    SignPresigned {
        key: String,
        key_session: String,
        request: ClientRequest,
        commitment_ids: Vec<String>,
        signers: Vec<SignerCommitments>,
    },
    /// Signing round 2: every chosen signer's commitments, from which each signer builds the
    /// signing packages of the messages it committed to.
    SignShare {
        signers: Vec<SignerCommitments>,
    },
    /// Threshold decryption: a partial for each ephemeral point of the client's signed
    /// request, sealed to the coordinator.
    DecryptPartial {
        key: String,
        /// As in [`PeerRequest::SignCommit`].
        #[serde(default)]
        key_session: String,
        request: ClientRequest,
    },
    /// A client or policy change at its position: check it and answer with a signed vote.
    AdminPrepare {
        entry: crate::state::admin_log::AdminEntry,
    },
    /// The entry is certified: apply it (it travels with its certificate, so a node that
    /// missed the prepare can apply it too).
    AdminCommit {
        entry: crate::state::admin_log::AdminEntry,
        certificate: crate::state::admin_log::Certificate,
    },
    /// The coordinator's signed abort of the entry with `entry_hash` at `seq`: release a vote
    /// for it.
    AdminAbort {
        seq: u64,
        entry_hash: String,
        signature: String,
    },
    /// How the sender's proposal of this entry ended, asked by a node holding a vote for it.
    AdminDecision {
        seq: u64,
        entry_hash: String,
    },
    /// The certified entries after `since`, for a node catching up.
    AdminLog {
        since: u64,
    },
}

/// One chosen signer's round-1 commitments: one per message of the request, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerCommitments {
    pub signer: u16,
    #[serde(with = "b64::vec")]
    pub commitments: Vec<Vec<u8>>,
}

impl PeerRequest {
    /// The envelope kind, so a receiver can reject a message of the wrong kind before parsing.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerRequest::Ping => "ping",
            PeerRequest::AuditHead { .. } => "audit.head",
            PeerRequest::AuditHeadAt { .. } => "audit.head_at",
            PeerRequest::DkgStart { .. } => "dkg.start",
            PeerRequest::DkgRound1 { .. } => "dkg.round1",
            PeerRequest::DkgEcho { .. } => "dkg.echo",
            PeerRequest::DkgRound2 { .. } => "dkg.round2",
            PeerRequest::DkgCommit { .. } => "dkg.commit",
            PeerRequest::DkgAbort { .. } => "dkg.abort",
            PeerRequest::DkgClose { .. } => "dkg.close",
            PeerRequest::GenerationStatus { .. } => "generation.status",
            PeerRequest::Unsettled => "generation.unsettled",
            PeerRequest::RepairStart { .. } => "repair.start",
            PeerRequest::RepairDeltas { .. } => "repair.deltas",
            PeerRequest::RepairValues { .. } => "repair.values",
            PeerRequest::SignCommit { .. } => "sign.commit",
            PeerRequest::SignShare { .. } => "sign.share",
            PeerRequest::SignPresign { .. } => "sign.presign",
            PeerRequest::SignPresigned { .. } => "sign.presigned",
            PeerRequest::DecryptPartial { .. } => "decrypt.partial",
            PeerRequest::AdminPrepare { .. } => "admin.prepare",
            PeerRequest::AdminCommit { .. } => "admin.commit",
            PeerRequest::AdminAbort { .. } => "admin.abort",
            PeerRequest::AdminDecision { .. } => "admin.decision",
            PeerRequest::AdminLog { .. } => "admin.log",
        }
    }

    /// The client request this message acts on, if any.
    pub fn client_request(&self) -> Option<&ClientRequest> {
        match self {
            PeerRequest::DkgStart { request, .. }
            | PeerRequest::RepairStart { request, .. }
            | PeerRequest::SignCommit { request, .. }
            | PeerRequest::SignPresigned { request, .. }
            | PeerRequest::DecryptPartial { request, .. } => Some(request),
            PeerRequest::AdminPrepare { entry } => Some(&entry.request),
            _ => None,
        }
    }

    /// The admin log position the sender claims to have reached, if the message says: only a
    /// hint of where certified entries may be fetched, never evidence.
    pub fn admin_hint(&self) -> Option<u64> {
        match self {
            PeerRequest::AdminCommit { entry, .. } => Some(entry.seq),
            other => other.client_request().map(|r| r.admin_seq),
        }
    }

    /// Whether this message asks for a key operation, which a node that has not caught up on
    /// the admin log refuses (DESIGN.md §11).
    pub fn is_key_operation(&self) -> bool {
        matches!(
            self,
            PeerRequest::DkgStart { .. }
                | PeerRequest::RepairStart { .. }
                | PeerRequest::SignCommit { .. }
                | PeerRequest::SignPresign { .. }
                | PeerRequest::SignPresigned { .. }
                | PeerRequest::DecryptPartial { .. }
        )
    }
}

/// Why a participant refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerErrorCode {
    /// The request is not acceptable (bad parameters, unknown key, wrong purpose).
    Invalid,
    /// A key or ceremony of that name exists already.
    Conflict,
    /// A protocol check failed; `culprit` names who is to blame when known.
    Protocol,
    /// The session is unknown, expired, or already used.
    UnknownSession,
    /// The node is sealed.
    Sealed,
    /// The client request is not authentic, or its client may not do this.
    Unauthorized,
    /// This node's client and policy state is not the coordinator's.
    StalePolicy,
    /// This node has not caught up on the admin log since it started.
    CatchingUp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerResponse {
    /// Alive, and whether the answering node is sealed (it answers pings either way).
    Pong {
        #[serde(default)]
        sealed: bool,
    },
    /// The answering node's signed audit head.
    AuditHead {
        head: api::AuditHead,
    },
    /// The answering node's signed head at the entry asked for; `None` when its trail does
    /// not hold that entry.
    AuditHeadAt {
        head: Option<api::AuditHead>,
    },
    Ack,
    /// Inner envelopes for the coordinator to route to their recipients.
    Outgoing {
        envelopes: Vec<Envelope>,
    },
    Commitments {
        #[serde(with = "b64::vec")]
        commitments: Vec<Vec<u8>>,
    },
    /// Commitments made ahead of time, each with the id to use it by.
    Presigned {
        ids: Vec<String>,
        #[serde(with = "b64::vec")]
        commitments: Vec<Vec<u8>>,
    },
    Shares {
        #[serde(with = "b64::vec")]
        shares: Vec<Vec<u8>>,
    },
    /// A JSON `Vec<PartialOutcome>`, sealed to the coordinator.
    Partials {
        #[serde(with = "b64")]
        sealed: Vec<u8>,
    },
    /// End-to-end decryption (DESIGN.md §6): one item per ciphertext of the client's request,
    /// each partial and proof sealed to the request's `reply_to`, which the coordinator relays.
    ReplyPartials {
        items: Vec<api::SealedItem>,
    },
    /// Certified admin log entries, and the sender's head seq.
    AdminEntries {
        entries: Vec<crate::state::admin_log::CertifiedEntry>,
        head: u64,
    },
    /// This node's vote for a prepared admin entry.
    AdminVote {
        signature: String,
    },
    /// How this node's proposal of an admin entry ended.
    AdminDecided {
        decision: crate::state::admin_log::Decision,
    },
    /// A member's result of a ceremony, sealed on its disk: the new public key package (hex)
    /// and its signature over the statement all members must sign alike.
    Confirmed {
        public_keys: String,
        statement: Box<GenerationStatement>,
        signature: String,
    },
    /// The member activated the ceremony's result: its signed acknowledgement.
    Acknowledged {
        signature: String,
    },
    /// The answer to [`PeerRequest::GenerationStatus`].
    Generation(Box<GenerationAnswer>),
    Unsettled {
        keys: Vec<api::UnsettledKey>,
    },
    Error {
        code: PeerErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        culprit: Option<u16>,
    },
    /// A protocol check failed because of `accused`'s message, and this is what can be
    /// checked about it (DESIGN.md §11; `crate::blame`).
    Complaint {
        accused: u16,
        message: String,
        complaint: Complaint,
    },
}

impl PeerResponse {
    /// A refusal or failure; `culprit` names the node to blame, when one is known.
    pub fn error(code: PeerErrorCode, message: impl Into<String>, culprit: Option<u16>) -> Self {
        PeerResponse::Error {
            code,
            message: message.into(),
            culprit,
        }
    }
}

/// What a node knows of one ceremony. All empty: it is in doubt or the ceremony still runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GenerationAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<GenerationCertificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// Its acknowledgement, when it has activated the ceremony's result (or a later one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
}

/// What a participant holds against a peer, beyond its word; `crate::blame` settles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Complaint {
    /// The accused's round-1 message to the accuser fails the public checks.
    Round1,
    /// The accused's echo to the accuser is malformed, or quotes a round-1 message its origin
    /// did not sign.
    Echo,
    /// The accused signed two different round-1 messages: `echoer`'s echo to the accuser
    /// quotes one of them, with the accused's signature.
    Equivocation { echoer: u16 },
    /// The accused's sealed message to the accuser (a round-2 share, a repair summand or
    /// value) is wrong; `message_key` (hex, `keyshares::seal::MessageKey`) opens it, and that
    /// message alone.
    Sealed { message_key: String },
}

/// One item of a sealed partial-decryption answer. The partial zeroizes on drop, and `Debug`
/// never shows it (DESIGN.md §8): t of them reveal the plaintext's key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialOutcome {
    Partial(keyshares::decrypt::PartialDecryption),
    Error(String),
}

impl std::fmt::Debug for PartialOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartialOutcome::Partial(_) => f.write_str("Partial(<redacted>)"),
            PartialOutcome::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::PartialOutcome;

    #[test]
    fn a_partial_outcome_prints_no_partial() {
        let outcome = PartialOutcome::Partial(keyshares::decrypt::PartialDecryption {
            point: vec![0xAB; 32],
            proof: vec![0xCD; 64],
        });
        let shown = format!("{outcome:?} {outcome:#?}");
        for needle in ["171", "205", "abab", "cdcd"] {
            assert!(!shown.contains(needle), "{shown}");
        }
        assert_eq!(
            format!("{:?}", PartialOutcome::Error("no share".into())),
            "Error(\"no share\")"
        );
    }
}
