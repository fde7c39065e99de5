//! End-to-end mode, holder side (DESIGN.md §6): each partial and its proof sealed to the
//! requester's `reply_to` key, bound to the request (client, nonce) and the item's index, so the
//! coordinator relays what it cannot read. Errors travel in the clear: they hold no secret, and
//! the coordinator needs them to spot a holder that refuses valid items.

use keyshares::decrypt::reply::{reply_context, seal_partial};

use crate::peer::messages::PartialOutcome;
use crate::peer::PeerResponse;

/// What the sealed partials of one holder are bound to.
pub struct Binding<'a> {
    pub key: &'a str,
    pub client: &'a str,
    pub nonce: &'a str,
    pub holder: u16,
}

/// One sealed item per ciphertext of the request; `positions` maps each request item to its
/// outcome (`None` for an item without a readable ephemeral point).
pub fn seal_items(
    reply_to: &[u8; 32],
    binding: Binding<'_>,
    positions: &[Option<usize>],
    outcomes: Vec<PartialOutcome>,
    rng: &mut rand::rngs::OsRng,
) -> PeerResponse {
    let items = positions
        .iter()
        .enumerate()
        .map(|(i, position)| {
            let error = |e: String| api::SealedItem {
                sealed: None,
                error: Some(e),
            };
            match position.map(|p| &outcomes[p]) {
                None => error("the ciphertext has no readable ephemeral point".into()),
                Some(PartialOutcome::Error(e)) => error(e.clone()),
                Some(PartialOutcome::Partial(p)) => {
                    let context = reply_context(
                        binding.key,
                        binding.client,
                        binding.nonce,
                        binding.holder,
                        i,
                    );
                    match seal_partial(reply_to, &context, p, rng) {
                        Ok(sealed) => api::SealedItem {
                            sealed: Some(api::client::b64(&sealed)),
                            error: None,
                        },
                        Err(e) => error(e.to_string()),
                    }
                }
            }
        })
        .collect();
    PeerResponse::ReplyPartials { items }
}
