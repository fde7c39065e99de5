//! Signing packages this node built as a coordinator, by signing session, kept parsed until
//! the signature is aggregated: its own signer uses them instead of building them again (which
//! parses and validates every other signer's commitment once more, the costliest step of a
//! signature after the signing itself). Only this node's own signer reads them: a session id
//! is looked up here only for a request that never left this process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use keyshares::sign::Package;
use parking_lot::Mutex;

use crate::node::Node;

/// Most sessions kept; beyond that this node's signer simply builds its packages itself.
const CAPACITY: usize = 4096;

/// The parsed packages, one per message, and when they were built.
type Built = (Arc<Vec<Package>>, Instant);

/// Signing session → the packages this node built for it as the coordinator.
#[derive(Default)]
pub struct BuiltPackages(Mutex<HashMap<String, Built>>);

impl crate::sessions::RoleState for BuiltPackages {
    fn expire(&self, timeouts: &crate::config::Timeouts) {
        let deadline = timeouts.operation();
        self.0
            .lock()
            .retain(|_, (_, built)| built.elapsed() < deadline);
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

fn table(node: &Node) -> Arc<BuiltPackages> {
    node.sessions.of::<BuiltPackages>()
}

/// Keeps the `packages` of signing `session`, which this node just built, until [`forget`].
pub fn remember(node: &Node, session: &str, packages: &Arc<Vec<Package>>) {
    let table = table(node);
    let mut held = table.0.lock();
    if held.len() < CAPACITY {
        held.insert(session.to_string(), (packages.clone(), Instant::now()));
    }
}

/// Drops the packages of `session`: its signature is aggregated or abandoned.
pub fn forget(node: &Node, session: &str) {
    table(node).0.lock().remove(session);
}

/// The packages this node built for `session` as its coordinator, if it still holds them.
pub fn built(node: &Node, session: &str) -> Option<Arc<Vec<Package>>> {
    table(node).0.lock().get(session).map(|(p, _)| p.clone())
}
