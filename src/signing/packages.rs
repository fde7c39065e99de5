//! Signing packages this node built as a coordinator, kept parsed until the signature is
//! aggregated: its own signer and its aggregation use them instead of parsing the bytes again
//! (which validates every commitment point once more, the costliest step of a signature after
//! the signing itself). The coordinator built them from commitments it had parsed and checked.
//! A package from any other coordinator is not here and is parsed as received.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use keyshares::sign::Package;
use keyshares::{Curve, ProtocolError};
use parking_lot::Mutex;

use crate::node::Node;

/// Most packages kept; beyond that a package is simply parsed again by its users.
const CAPACITY: usize = 4096;

/// The parsed package and when it was built.
type Built = (Arc<Package>, Instant);

/// Package bytes → the package as built.
#[derive(Default)]
pub struct BuiltPackages(Mutex<HashMap<Vec<u8>, Built>>);

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

/// Keeps `packages`, which this node just built, until [`forget`].
pub fn remember(node: &Node, packages: &[Arc<Package>]) {
    let table = table(node);
    let mut held = table.0.lock();
    let now = Instant::now();
    for p in packages {
        if held.len() >= CAPACITY {
            return;
        }
        held.insert(p.bytes().to_vec(), (p.clone(), now));
    }
}

/// Drops `packages`: their signature is aggregated or abandoned.
pub fn forget(node: &Node, packages: &[Arc<Package>]) {
    let table = table(node);
    let mut held = table.0.lock();
    for p in packages {
        held.remove(p.bytes());
    }
}

/// The package of `bytes`: the one this node built, or else the bytes parsed and checked.
pub fn parsed(node: &Node, curve: Curve, bytes: &[u8]) -> Result<Arc<Package>, ProtocolError> {
    if let Some((package, _)) = table(node).0.lock().get(bytes) {
        return Ok(package.clone());
    }
    Package::parse(curve, bytes).map(Arc::new)
}
