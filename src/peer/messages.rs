//! The peer protocol: what a coordinator asks a participant, and what it answers. Each travels
//! as the payload of a signed [`Envelope`]; the envelope's session field names the ceremony or
//! operation the message belongs to.

use serde::{Deserialize, Serialize};

use super::envelope::Envelope;
use crate::auth::ClientRequest;

/// Byte fields as base64 in JSON.
pub mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }

    pub mod vec {
        use super::*;
        use serde::ser::SerializeSeq;

        pub fn serialize<S: Serializer>(items: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(items.len()))?;
            for item in items {
                seq.serialize_element(&base64::engine::general_purpose::STANDARD.encode(item))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
            Vec::<String>::deserialize(d)?
                .into_iter()
                .map(|t| {
                    base64::engine::general_purpose::STANDARD
                        .decode(t)
                        .map_err(serde::de::Error::custom)
                })
                .collect()
        }
    }
}

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerRequest {
    Ping,
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
    /// Every other participant's confirmation; on agreement the key becomes active.
    DkgConfirm {
        incoming: Vec<Envelope>,
    },
    /// The ceremony failed: forget it (and a key it activated).
    DkgAbort {
        reason: String,
    },
    /// Signing round 1: commit to nonces for each message of the client's signed request.
    SignCommit {
        key: String,
        request: ClientRequest,
    },
    /// Signing round 2: one signing package per message, in order.
    SignShare {
        #[serde(with = "b64::vec")]
        packages: Vec<Vec<u8>>,
    },
    /// Threshold decryption: a partial for each ephemeral point of the client's signed
    /// request, sealed to the coordinator.
    DecryptPartial {
        key: String,
        request: ClientRequest,
    },
    /// A client or policy change: check it and hold it as change number `seq`.
    AdminPrepare {
        seq: u64,
        request: ClientRequest,
    },
    /// Every node holds change `seq`: apply it.
    AdminCommit {
        seq: u64,
    },
    /// Change `seq` will not be applied: forget it.
    AdminAbort {
        seq: u64,
    },
    /// The changes after `since`, for a node catching up.
    AdminLog {
        since: u64,
    },
}

impl PeerRequest {
    /// The envelope kind, so a receiver can reject a message of the wrong kind before parsing.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerRequest::Ping => "ping",
            PeerRequest::DkgStart { .. } => "dkg.start",
            PeerRequest::DkgRound1 { .. } => "dkg.round1",
            PeerRequest::DkgEcho { .. } => "dkg.echo",
            PeerRequest::DkgRound2 { .. } => "dkg.round2",
            PeerRequest::DkgConfirm { .. } => "dkg.confirm",
            PeerRequest::DkgAbort { .. } => "dkg.abort",
            PeerRequest::SignCommit { .. } => "sign.commit",
            PeerRequest::SignShare { .. } => "sign.share",
            PeerRequest::DecryptPartial { .. } => "decrypt.partial",
            PeerRequest::AdminPrepare { .. } => "admin.prepare",
            PeerRequest::AdminCommit { .. } => "admin.commit",
            PeerRequest::AdminAbort { .. } => "admin.abort",
            PeerRequest::AdminLog { .. } => "admin.log",
        }
    }

    /// The client request this message acts on, if any.
    pub fn client_request(&self) -> Option<&ClientRequest> {
        match self {
            PeerRequest::DkgStart { request, .. }
            | PeerRequest::SignCommit { request, .. }
            | PeerRequest::DecryptPartial { request, .. }
            | PeerRequest::AdminPrepare { request, .. } => Some(request),
            _ => None,
        }
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerResponse {
    Pong,
    Ack,
    /// Inner envelopes for the coordinator to route to their recipients.
    Outgoing {
        envelopes: Vec<Envelope>,
    },
    Commitments {
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
    AdminEntries {
        entries: Vec<crate::admin::AdminEntry>,
    },
    Error {
        code: PeerErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        culprit: Option<u16>,
    },
}

/// One item of a sealed partial-decryption answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialOutcome {
    Partial(keyshares::decrypt::PartialDecryption),
    Error(String),
}
