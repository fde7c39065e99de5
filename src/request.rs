//! A client's signed request as nodes pass it between them: the bytes the client signed and
//! its signature, forwarded unchanged so that every node checks them itself. At the bottom of
//! the crate: wire messages and the admin log both carry it.

use api::RequestSignature;
use serde::{Deserialize, Serialize};

/// A client's signed request as the coordinator received it, forwarded to participants with
/// the coordinator's operation id and its admin sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The coordinator's id for this client request; retries of it share it.
    pub operation: String,
    /// Client and policy changes the coordinator has applied; participants must agree.
    pub admin_seq: u64,
    pub method: String,
    pub path: String,
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    pub authorization: RequestSignature,
    #[serde(default)]
    pub approvals: Vec<RequestSignature>,
}

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
