//! Integrity of the store's public state (DESIGN.md §8): key records, policies, clients, admin
//! log entries and pending or previous generations are stored as `JSON ‖ tag`, the tag an
//! HMAC-SHA256 (RFC 2104) over the tree's label, the entry's key and its JSON, under a key
//! derived from the data key with HKDF-SHA256 (RFC 5869), one per tree. An entry edited on
//! disk, moved to another name or another tree, or left without its tag is refused when read.
//!
//! The MAC keys are derived when the store is opened (which needs the passphrase) and stay in
//! memory while the node is sealed: they open no share (HKDF is one-way), so a sealed node
//! still checks what it reads (`keys list` works) and tags what it applies (admin log
//! catch-up). Sealing forgets the data key, which is what opens shares.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const TAG_LEN: usize = 32;

/// A tree whose entries carry a tag, and how an error names its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Keys,
    Policies,
    Clients,
    AdminLog,
    Pending,
    Previous,
    DecryptRequests,
}

impl Tagged {
    const ALL: [Tagged; 7] = [
        Tagged::Keys,
        Tagged::Policies,
        Tagged::Clients,
        Tagged::AdminLog,
        Tagged::Pending,
        Tagged::Previous,
        Tagged::DecryptRequests,
    ];

    fn label(self) -> &'static str {
        match self {
            Tagged::Keys => "keys",
            Tagged::Policies => "policies",
            Tagged::Clients => "clients",
            Tagged::AdminLog => "admin_log",
            Tagged::Pending => "pending",
            Tagged::Previous => "previous",
            Tagged::DecryptRequests => "decrypt_requests",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Tagged::Keys => "the record of key",
            Tagged::Policies => "the policy of key",
            Tagged::Clients => "the record of client",
            Tagged::AdminLog => "admin log entry",
            Tagged::Pending => "the pending generation of key",
            Tagged::Previous => "the previous generation of key",
            Tagged::DecryptRequests => "decryption request",
        }
    }

    /// How an entry's key reads in an error: names as text, admin log seqs as numbers.
    fn name_of(self, key: &[u8]) -> String {
        match (self, <[u8; 8]>::try_from(key)) {
            (Tagged::AdminLog, Ok(seq)) => u64::from_be_bytes(seq).to_string(),
            _ => String::from_utf8_lossy(key).into_owned(),
        }
    }
}

/// One MAC key per tagged tree, as long as SHA-256's block (RFC 2104 §3), in
/// [`Tagged::ALL`]'s order.
pub struct MacKeys {
    keys: [Zeroizing<[u8; 64]>; 7],
}

impl MacKeys {
    pub fn derive(dek: &[u8; 32]) -> MacKeys {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"keyquorum/store-mac/v1"), dek);
        let keys = Tagged::ALL.map(|tree| {
            let mut key = Zeroizing::new([0u8; 64]);
            // 64 bytes is far below HKDF-SHA256's limit of 255 × 32: expand cannot fail.
            let _ = hkdf.expand(tree.label().as_bytes(), key.as_mut());
            key
        });
        MacKeys { keys }
    }

    fn tag(&self, tree: Tagged, key: &[u8], json: &[u8]) -> [u8; TAG_LEN] {
        self.mac(tree, key, json).finalize().into_bytes().into()
    }

    fn mac(&self, tree: Tagged, key: &[u8], json: &[u8]) -> Hmac<Sha256> {
        let index = Tagged::ALL.iter().position(|t| *t == tree).unwrap_or(0);
        let mut mac = <Hmac<Sha256> as Mac>::new((&*self.keys[index]).into());
        mac.update(&(key.len() as u64).to_be_bytes());
        mac.update(key);
        mac.update(json);
        mac
    }

    /// The stored form of `json` under `key` in `tree`: `json ‖ tag`.
    pub fn seal(&self, tree: Tagged, key: &[u8], json: &[u8]) -> Vec<u8> {
        let mut out = json.to_vec();
        out.extend_from_slice(&self.tag(tree, key, json));
        out
    }

    /// The JSON of a stored entry, if its tag verifies; the error names the entry.
    pub fn open<'a>(&self, tree: Tagged, key: &[u8], stored: &'a [u8]) -> anyhow::Result<&'a [u8]> {
        let refused = || {
            anyhow::anyhow!(
                "{} {} fails its integrity check (edited on disk, moved, or written by an \
                 older version): refused",
                tree.what(),
                tree.name_of(key)
            )
        };
        if stored.len() < TAG_LEN {
            return Err(refused());
        }
        let (json, tag) = stored.split_at(stored.len() - TAG_LEN);
        self.mac(tree, key, json)
            .verify_slice(tag)
            .map_err(|_| refused())?;
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_moved_or_untagged_entry_is_refused_by_name() {
        let macs = MacKeys::derive(&[9u8; 32]);
        let stored = macs.seal(Tagged::Clients, b"alice", br#"{"roles":[]}"#);
        assert_eq!(
            macs.open(Tagged::Clients, b"alice", &stored).unwrap(),
            br#"{"roles":[]}"#
        );
        let mut edited = stored.clone();
        edited[10] ^= 1;
        let e = macs
            .open(Tagged::Clients, b"alice", &edited)
            .unwrap_err()
            .to_string();
        assert!(e.contains("client alice"), "{e}");
        assert!(macs.open(Tagged::Clients, b"bob", &stored).is_err());
        assert!(macs.open(Tagged::Policies, b"alice", &stored).is_err());
        assert!(macs.open(Tagged::Clients, b"alice", b"{}").is_err());
        let other = MacKeys::derive(&[8u8; 32]);
        assert!(other.open(Tagged::Clients, b"alice", &stored).is_err());
        let e = macs
            .open(Tagged::AdminLog, &7u64.to_be_bytes(), b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin log entry 7"), "{e}");
    }
}
