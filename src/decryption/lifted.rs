//! Ephemeral points validated by this node's own holder for a batch this node coordinates.
//! The coordinator checks every other holder's partials against the same points; validating
//! them a second time in the same node (a square root and a subgroup check per item) would
//! prove nothing new. Only the coordinator's own session ids are ever looked up here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use keyshares::decrypt::prepared::Ephemeral;
use parking_lot::Mutex;

use crate::node::Node;

/// Each item's point, or why every honest holder refuses it.
pub type Points = Arc<Vec<Result<Ephemeral, String>>>;

/// Most batches remembered; beyond that the coordinator validates the points itself.
const CAPACITY: usize = 1024;

/// Decryption session id → the points of its batch.
#[derive(Default)]
pub struct OwnPoints(Mutex<HashMap<String, Kept>>);

/// A batch's points and when they were kept.
type Kept = (Points, Instant);

impl crate::sessions::RoleState for OwnPoints {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.operation();
        self.0.lock().retain(|_, (_, at)| at.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// Keeps the points this node's holder validated for `session`.
pub fn remember(node: &Node, session: &str, points: Points) {
    let table = node.sessions.of::<OwnPoints>();
    let mut held = table.0.lock();
    if held.len() < CAPACITY {
        held.insert(session.to_string(), (points, Instant::now()));
    }
}

/// Takes the points this node's holder validated for `session`, if it did.
pub fn take(node: &Node, session: &str) -> Option<Points> {
    let table = node.sessions.of::<OwnPoints>();
    let taken = table.0.lock().remove(session);
    taken.map(|(points, _)| points)
}
