//! The client API's ciphertext items, read into the crypto crate's types and back, and the
//! body of a decrypt request read the same way by its coordinator and every participant.

pub use api::ciphertexts::{aead_of, ciphertext_item, field, parse_ciphertext};
use api::DecryptRequest;
use keyshares::decrypt::{Ciphertext, Scheme};

pub struct ParsedRequest {
    pub items: Vec<Result<Ciphertext, String>>,
    /// Hex SHA-256 of each whole item as sent, for the audit trail ([`super::digest`]).
    pub digests: Vec<String>,
    /// End-to-end mode: the requester's X25519 key every partial is sealed to.
    pub reply_to: Option<[u8; 32]>,
    /// Holders the requester asked not to be asked.
    pub exclude: Vec<u16>,
}

impl ParsedRequest {
    pub fn mode(&self) -> api::DecryptMode {
        match self.reply_to {
            Some(_) => api::DecryptMode::EndToEnd,
            None => api::DecryptMode::Coordinator,
        }
    }
}

/// A decrypt request's body, read once: each ciphertext, or why it cannot be read, and each
/// item's digest. The request as a whole is refused when it is not a decrypt request or its
/// size is out of bounds.
pub fn parse_request(scheme: Scheme, body: &[u8]) -> Result<ParsedRequest, String> {
    let request: DecryptRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid decrypt request: {e}"))?;
    let items = &request.ciphertexts;
    if items.is_empty() || items.len() > super::MAX_BATCH {
        return Err(format!(
            "ciphertexts must hold 1 to {} items, got {}",
            super::MAX_BATCH,
            items.len()
        ));
    }
    let reply_to = request
        .reply_to
        .as_deref()
        .map(|hex_key| {
            hex::decode(hex_key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or("reply_to must be a hex X25519 public key (32 bytes)")
        })
        .transpose()?;
    Ok(ParsedRequest {
        reply_to,
        exclude: request.exclude.clone(),
        items: items
            .iter()
            .map(|item| parse_ciphertext(scheme, item))
            .collect(),
        digests: items.iter().map(super::digest::item_sha256).collect(),
    })
}

/// The ephemeral points to decrypt, and for each item its position among them (`None` for an
/// item that fails alone, without a partial).
pub fn ephemerals(
    scheme: Scheme,
    items: &[Result<Ciphertext, String>],
) -> (Vec<Option<usize>>, Vec<Vec<u8>>) {
    let mut positions = Vec::with_capacity(items.len());
    let mut ephemerals = Vec::new();
    for item in items {
        match item {
            Ok(ct) if ct.scheme() == scheme => match ct.ephemeral() {
                Ok(e) => {
                    positions.push(Some(ephemerals.len()));
                    ephemerals.push(e.to_vec());
                }
                Err(_) => positions.push(None),
            },
            _ => positions.push(None),
        }
    }
    (positions, ephemerals)
}
