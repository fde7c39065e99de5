//! Key helpers shared by the lifecycle and generation tests: create, sign, verify with an
//! independent verifier, encrypt and threshold-decrypt, read a node's view of a key.

use api::client::{b64, unb64};
use api::{Algorithm, DecryptRequest, EncryptRequest, KeyInfo, PlaintextItem, ReshareRequest};
use ed25519_dalek::{Signature, VerifyingKey};
use keyshares::KeyShare;

use super::Harness;

/// Verifies with ed25519-dalek's strict verifier, an implementation we did not write.
pub fn verifies(key: &KeyInfo, message: &[u8], signature_hex: &str) -> bool {
    let key = VerifyingKey::from_bytes(&hex::decode(&key.public_key).unwrap().try_into().unwrap())
        .unwrap();
    let sig = Signature::from_slice(&hex::decode(signature_hex).unwrap()).unwrap();
    key.verify_strict(message, &sig).is_ok()
}

pub fn sign(h: &Harness, via: u16, key: &str, message: &[u8]) -> api::SignResponse {
    h.rt.block_on(h.client(via).sign(key, message)).unwrap()
}

/// Encrypts a record to `key` and has node `via` threshold-decrypt it.
pub fn round_trip(h: &Harness, via: u16, key: &str, record: &[u8]) -> api::DecryptResponse {
    let client = h.client(via);
    let sealed =
        h.rt.block_on(client.encrypt(
            key,
            &EncryptRequest {
                plaintexts: vec![PlaintextItem {
                    plaintext: b64(record),
                    ..Default::default()
                }],
            },
        ))
        .unwrap();
    let opened =
        h.rt.block_on(client.decrypt(
            key,
            &DecryptRequest {
                ciphertexts: sealed.ciphertexts,
                ..Default::default()
            },
        ))
        .unwrap();
    let plain = opened.results[0]
        .plaintext
        .as_ref()
        .unwrap_or_else(|| panic!("decryption failed: {:?}", opened.results[0].error));
    assert_eq!(unb64(plain).unwrap(), record);
    opened
}

pub fn reshare(
    h: &Harness,
    via: u16,
    key: &str,
    participants: Vec<u16>,
    threshold: u16,
    dealers: Option<Vec<u16>>,
) -> Result<KeyInfo, api::ClientError> {
    let request = ReshareRequest {
        participants,
        threshold,
        dealers,
    };
    h.rt.block_on(h.client(via).reshare_key(key, &request))
}

/// A 2-of-3 frost-ed25519 key named `name` on nodes 1, 2 and 3.
pub fn two_of_three(h: &Harness, name: &str) -> KeyInfo {
    h.create(1, name, Algorithm::FrostEd25519, 2, Some(vec![1, 2, 3]))
        .unwrap()
}

pub fn share_of(h: &Harness, node: u16, key: &str) -> Option<KeyShare> {
    h.cluster.node(node)?.key(key).map(|k| k.share.clone())
}

pub fn info(h: &Harness, via: u16, key: &str) -> KeyInfo {
    h.rt.block_on(h.client(via).get_key(key)).unwrap()
}

/// Every node in `nodes` shows the same public data for `key`.
/// Node `node` loses its data dir (a replaced disk) and restarts with its identity and config.
pub fn wipe_store(h: &mut Harness, node: u16) {
    let data_dir = h.cluster.config(node).unwrap().data_dir;
    h.cluster.stop(node);
    std::fs::remove_dir_all(&data_dir).unwrap();
    h.cluster.start(node).unwrap();
}

pub fn set_faults(h: &Harness, node: u16, f: &dyn Fn(&mut keyquorum::node::Faults)) {
    f(&mut h.cluster.node(node).unwrap().faults.write());
}

pub fn same_everywhere(h: &Harness, nodes: &[u16], key: &str) -> KeyInfo {
    let first = info(h, nodes[0], key);
    for n in &nodes[1..] {
        assert_eq!(
            info(h, *n, key),
            first,
            "node {n} differs from node {}",
            nodes[0]
        );
    }
    first
}
