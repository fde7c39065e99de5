//! What a coordinator relayed: the signed messages complaints are settled on.

use std::collections::BTreeMap;

use crate::node::Node;
use crate::peer::Envelope;

/// Every envelope the coordinator relayed, by (kind, sender, recipient).
#[derive(Debug, Default)]
pub struct Relayed(BTreeMap<(&'static str, u16, u16), Envelope>);

impl Relayed {
    pub fn record(&mut self, kind: &'static str, envelopes: &BTreeMap<u16, Vec<Envelope>>) {
        for env in envelopes.values().flatten() {
            self.0.insert((kind, env.from, env.to), env.clone());
        }
    }

    /// The payload of what `from` signed for `to`, checked.
    pub(crate) fn signed(
        &self,
        node: &Node,
        session: &str,
        kind: &'static str,
        from: u16,
        to: u16,
    ) -> Option<Vec<u8>> {
        let env = self.0.get(&(kind, from, to))?;
        node.verifier
            .check_forwarded(env, from, to, session, kind)
            .ok()
    }

    /// Every payload digest `from` signed for `kind`, by recipient.
    pub(crate) fn digests(
        &self,
        node: &Node,
        session: &str,
        kind: &'static str,
        from: u16,
    ) -> BTreeMap<u16, [u8; 32]> {
        self.0
            .iter()
            .filter(|((k, f, _), _)| *k == kind && *f == from)
            .filter_map(|((_, _, to), env)| {
                let payload = node.verifier.check_forwarded(env, from, *to, session, kind);
                Some((*to, keyshares::echo::round1_digest(&payload.ok()?)))
            })
            .collect()
    }
}
