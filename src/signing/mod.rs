//! Threshold signing (DESIGN.md §5): the coordinator that runs the two FROST rounds with a
//! quorum and retries around failed signers, and the participant side.

pub mod coordinator;
pub mod packages;
pub mod participant;
pub mod pool;

/// Most messages one sign request may carry; each is its own FROST session.
pub const MAX_BATCH: usize = 256;

/// The messages of a sign request's body and whether it was a batch. The coordinator and
/// every signer read them from the client's signed bytes, so none can be substituted.
pub fn messages_of(body: &[u8]) -> Result<(Vec<Vec<u8>>, bool), String> {
    use api::client::unb64;
    let request: api::SignRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid sign request: {e}"))?;
    match (request.message, request.batch) {
        (Some(m), None) => Ok((vec![unb64(&m).map_err(|e| format!("message: {e}"))?], false)),
        (None, Some(items)) => {
            if items.is_empty() {
                return Err("batch is empty".into());
            }
            if items.len() > MAX_BATCH {
                return Err(format!(
                    "batch has {} items; the limit is {MAX_BATCH}",
                    items.len()
                ));
            }
            let messages = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    unb64(&item.message).map_err(|e| format!("batch[{i}].message: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((messages, true))
        }
        _ => Err("give exactly one of \"message\" or \"batch\"".into()),
    }
}
