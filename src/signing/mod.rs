//! Threshold signing (DESIGN.md §5): the coordinator that runs the two FROST rounds with a
//! quorum and retries around failed signers, and the participant side.

pub mod coordinator;
pub mod participant;

/// Most messages one sign request may carry; each is its own FROST session.
pub const MAX_BATCH: usize = 256;
