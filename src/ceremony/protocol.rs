//! The cryptographic side of one node's ceremony: a key generation or refresh (frost DKG
//! rounds) or a reshare (Feldman VSS of each old share), driven through the same rounds.

use std::collections::BTreeMap;

use keyshares::dkg::{Dkg, Echo};
use keyshares::reshare::Reshare;
use keyshares::{KeyShare, ProtocolError, PublicKeys};
use zeroize::Zeroizing;

pub enum Protocol {
    Dkg(Box<Dkg>),
    Reshare(Box<Reshare>),
}

impl Protocol {
    /// Takes every other member's round-1 payload; returns the echo to send to all.
    pub fn receive_round1(
        &mut self,
        payloads: &BTreeMap<u16, Vec<u8>>,
    ) -> Result<Echo, ProtocolError> {
        match self {
            Protocol::Dkg(d) => d.receive_round1(payloads),
            Protocol::Reshare(r) => r.receive_round1(payloads),
        }
    }

    /// Checks the echoes; returns the private round-2 payload for each recipient (members
    /// missing from the map get nothing).
    pub fn check_echoes(
        &mut self,
        echoes: &BTreeMap<u16, Echo>,
    ) -> Result<BTreeMap<u16, Zeroizing<Vec<u8>>>, ProtocolError> {
        match self {
            Protocol::Dkg(d) => d.check_echoes(echoes),
            Protocol::Reshare(r) => r.check_echoes(echoes),
        }
    }

    /// Finishes with the unsealed round-2 payloads (empty from members that sent nothing):
    /// this node's new share, if it holds one of the result, and the result's public data.
    pub fn receive_round2(
        &mut self,
        payloads: &BTreeMap<u16, Zeroizing<Vec<u8>>>,
    ) -> Result<(Option<KeyShare>, PublicKeys), ProtocolError> {
        match self {
            Protocol::Dkg(d) => d
                .receive_round2(payloads)
                .map(|(share, public)| (Some(share), public)),
            Protocol::Reshare(r) => r.receive_round2(payloads),
        }
    }
}
