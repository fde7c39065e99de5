//! Threshold decryption of ciphertexts from unmodified standard encryptors (issue #4).

mod common;

use api::client::{b64, unb64};
use api::{Algorithm, CiphertextItem, DecryptRequest, EncryptRequest, PlaintextItem};
use common::Harness;
use hpke::{Deserializable, OpModeS, Serializable};
use keyquorum::decryption::partials_context;
use keyquorum::peer::messages::PartialOutcome;
use keyquorum::peer::{PeerRequest, PeerResponse};
use keyquorum::transport;

type Kem = hpke::kem::X25519HkdfSha256;

/// Seals with the Rust `hpke` crate, an implementation we did not write.
fn hpke_crate_seal(
    pk: &[u8],
    aead: &str,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> CiphertextItem {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(pk).unwrap();
    let mut rng = rand::rngs::OsRng;
    let (enc, ct) =
        match aead {
            "aes-128-gcm" => hpke::single_shot_seal::<
                hpke::aead::AesGcm128,
                hpke::kdf::HkdfSha256,
                Kem,
                _,
            >(&OpModeS::Base, &pk, info, plaintext, aad, &mut rng),
            "aes-256-gcm" => hpke::single_shot_seal::<
                hpke::aead::AesGcm256,
                hpke::kdf::HkdfSha256,
                Kem,
                _,
            >(&OpModeS::Base, &pk, info, plaintext, aad, &mut rng),
            _ => hpke::single_shot_seal::<
                hpke::aead::ChaCha20Poly1305,
                hpke::kdf::HkdfSha256,
                Kem,
                _,
            >(&OpModeS::Base, &pk, info, plaintext, aad, &mut rng),
        }
        .unwrap();
    CiphertextItem {
        enc: Some(b64(&enc.to_bytes())),
        ciphertext: b64(&ct),
        info: Some(b64(info)),
        aad: Some(b64(aad)),
        aead: Some(aead.into()),
    }
}

fn decrypt(h: &Harness, via: u16, key: &str, items: Vec<CiphertextItem>) -> api::DecryptResponse {
    h.rt.block_on(h.client(via).decrypt_combined_by_node(
        key,
        &DecryptRequest {
            ciphertexts: items,
            ..Default::default()
        },
    ))
    .unwrap()
}

fn plaintext(r: &api::DecryptResult) -> Vec<u8> {
    unb64(
        r.plaintext
            .as_ref()
            .unwrap_or_else(|| panic!("item failed: {:?}", r.error)),
    )
    .unwrap()
}

#[test]
fn ciphertexts_from_the_hpke_and_ecies_crates_decrypt_with_a_quorum() {
    let h = Harness::start(5);
    let hpke_key = h
        .create(1, "faces", Algorithm::HpkeX25519, 3, None)
        .unwrap();
    let ecies_key = h
        .create(2, "plates", Algorithm::EciesSecp256k1, 3, None)
        .unwrap();
    let pk = hex::decode(&hpke_key.public_key).unwrap();
    let mut items = Vec::new();
    for (i, aead) in ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"]
        .iter()
        .enumerate()
    {
        let record = format!(r#"{{"video":"cam-7","frame":{i},"boxes":[[10,20,64,64]]}}"#);
        items.push(hpke_crate_seal(
            &pk,
            aead,
            format!("cam-7/{i}").as_bytes(),
            b"face",
            record.as_bytes(),
        ));
    }
    let answer = decrypt(&h, 3, "faces", items);
    assert_eq!(answer.contributors.len(), 3);
    for (i, r) in answer.results.iter().enumerate() {
        assert_eq!(
            plaintext(r),
            format!(r#"{{"video":"cam-7","frame":{i},"boxes":[[10,20,64,64]]}}"#).into_bytes()
        );
    }
    assert_eq!(
        answer.stats.unwrap().rounds,
        1,
        "one peer round trip per batch"
    );

    let ecies_pk = hex::decode(&ecies_key.public_key).unwrap();
    let blob = ecies::encrypt(&ecies_pk, b"AB-123-CD").unwrap();
    let answer = decrypt(
        &h,
        4,
        "plates",
        vec![CiphertextItem {
            ciphertext: b64(&blob),
            ..Default::default()
        }],
    );
    assert_eq!(plaintext(&answer.results[0]), b"AB-123-CD");
}

#[test]
fn a_node_returning_bad_partials_is_named_and_replaced() {
    let h = Harness::start(5);
    let key = h.create(1, "k", Algorithm::HpkeX25519, 3, None).unwrap();
    h.cluster.node(2).unwrap().faults.write().corrupt_partials = true;
    let pk = hex::decode(&key.public_key).unwrap();
    // The holder order starts at a random offset per request, so node 2 is asked in some
    // requests and not others; every request succeeds, and node 2 is named whenever asked.
    let mut named = 0;
    for _ in 0..30 {
        let item = hpke_crate_seal(&pk, "aes-128-gcm", b"info", b"", b"secret box");
        let answer = decrypt(&h, 1, "k", vec![item]);
        assert_eq!(plaintext(&answer.results[0]), b"secret box");
        assert!(!answer.contributors.contains(&2));
        assert_eq!(answer.contributors.len(), 3);
        for e in &answer.excluded {
            assert_eq!(e.node, 2, "{answer:?}");
            assert!(e.reason.contains("invalid partial"), "{answer:?}");
            named += 1;
        }
    }
    assert!(named > 0, "node 2 was never asked in 30 requests");
}

/// The small-order points of Curve25519 (RFC 7748 §5, and the well-known list of X25519
/// low-order u-coordinates), non-canonical encodings of them, and a point on the twist.
fn hostile_encs() -> Vec<(&'static str, [u8; 32])> {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_minus_1 = p;
    p_minus_1[0] = 0xec;
    let mut p_plus_1 = p;
    p_plus_1[0] = 0xee;
    let hex32 = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut twist = [0u8; 32];
    twist[0] = 2; // u = 2 is not on Curve25519: 2^3 + 486662·2^2 + 2 is a non-square mod p.
    vec![
        ("u = 0", [0u8; 32]),
        ("u = 1", one),
        (
            "order 8 (a)",
            hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        ),
        (
            "order 8 (b)",
            hex32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        ),
        ("u = p - 1", p_minus_1),
        ("u = p", p),
        ("u = p + 1", p_plus_1),
        ("twist point u = 2", twist),
    ]
}

#[test]
fn small_order_and_twist_points_are_rejected_by_every_node() {
    let h = Harness::start(3);
    h.create(1, "k", Algorithm::HpkeX25519, 2, None).unwrap();
    let coordinator = h.cluster.node(1).unwrap();
    let hostile = DecryptRequest {
        ciphertexts: hostile_encs()
            .iter()
            .map(|(_, e)| CiphertextItem {
                enc: Some(b64(e)),
                ciphertext: b64(&[0u8; 32]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let body = serde_json::to_vec(&hostile).unwrap();
    for id in 1..=3u16 {
        let session = keyquorum::random_id();
        let request = PeerRequest::DecryptPartial {
            key: "k".into(),
            key_session: String::new(),
            request: common::forwarded(
                &h,
                h.cluster.admin_key(),
                "POST",
                "/v1/keys/k/decrypt",
                &body,
            ),
        };
        let PeerResponse::Partials { sealed } =
            h.rt.block_on(transport::call(&coordinator, id, &session, &request, None))
                .unwrap()
        else {
            panic!("node {id} did not answer with partials");
        };
        let plain = keyshares::seal::open(
            coordinator.identity.seal_secret(),
            &partials_context(&session, id, 1),
            &sealed,
        )
        .unwrap();
        let outcomes: Vec<PartialOutcome> = serde_json::from_slice(&plain).unwrap();
        for ((what, _), outcome) in hostile_encs().iter().zip(&outcomes) {
            assert!(
                matches!(outcome, PartialOutcome::Error(_)),
                "node {id} computed a partial for {what}"
            );
        }
    }
    // Through the client API: one error per item, never a failed batch.
    let items = hostile_encs()
        .iter()
        .map(|(_, e)| CiphertextItem {
            enc: Some(b64(e)),
            ciphertext: b64(&[0u8; 32]),
            ..Default::default()
        })
        .collect();
    let answer = decrypt(&h, 2, "k", items);
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.plaintext.is_none() && r.error.is_some()),
        "{answer:?}"
    );
}

#[test]
fn bad_items_fail_alone_and_a_thousand_records_decrypt_in_one_batch() {
    let h = Harness::start(3);
    let key = h.create(1, "k", Algorithm::HpkeX25519, 2, None).unwrap();
    let ecies_key = h
        .create(1, "e", Algorithm::EciesSecp256k1, 2, None)
        .unwrap();
    let pk = hex::decode(&key.public_key).unwrap();
    let good = hpke_crate_seal(&pk, "chacha20-poly1305", b"cam-1/7", b"aad", b"ok");
    let mut wrong_info = good.clone();
    wrong_info.info = Some(b64(b"cam-1/8"));
    let mut wrong_aad = good.clone();
    wrong_aad.aad = Some(b64(b"other"));
    let mut short_enc = good.clone();
    short_enc.enc = Some(b64(&[9u8; 31]));
    let mut truncated = good.clone();
    truncated.ciphertext = b64(&[1u8; 5]);
    let mut bad_b64 = good.clone();
    bad_b64.ciphertext = "***".into();
    let mut unknown_aead = good.clone();
    unknown_aead.aead = Some("rot13".into());
    let mut no_enc = good.clone();
    no_enc.enc = None;
    let items = vec![
        good.clone(),
        wrong_info,
        wrong_aad,
        short_enc,
        truncated,
        bad_b64,
        unknown_aead,
        no_enc,
        good,
    ];
    let answer = decrypt(&h, 1, "k", items);
    assert_eq!(plaintext(&answer.results[0]), b"ok");
    assert_eq!(plaintext(&answer.results[8]), b"ok");
    for (i, r) in answer.results.iter().enumerate().take(8).skip(1) {
        assert!(
            r.plaintext.is_none() && r.error.as_ref().is_some_and(|e| !e.is_empty()),
            "item {i}: {r:?}"
        );
    }

    // ECIES: off-curve, identity, truncated.
    let ecies_pk = hex::decode(&ecies_key.public_key).unwrap();
    let good = ecies::encrypt(&ecies_pk, b"plate").unwrap();
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let mut identity = vec![0u8; good.len()];
    identity[0] = 0x00;
    let items = [good.clone(), off_curve, identity, good[..60].to_vec()]
        .iter()
        .map(|b| CiphertextItem {
            ciphertext: b64(b),
            ..Default::default()
        })
        .collect();
    let answer = decrypt(&h, 2, "e", items);
    assert_eq!(plaintext(&answer.results[0]), b"plate");
    assert!(
        answer.results[1..].iter().all(|r| r.error.is_some()),
        "{answer:?}"
    );

    // A thousand records in one request, one peer round trip.
    let records: Vec<CiphertextItem> = (0..1000)
        .map(|i| {
            hpke_crate_seal(
                &pk,
                "aes-128-gcm",
                format!("cam-2/{i}").as_bytes(),
                b"",
                format!("record {i}").as_bytes(),
            )
        })
        .collect();
    let answer = decrypt(&h, 3, "k", records);
    assert_eq!(answer.results.len(), 1000);
    for (i, r) in answer.results.iter().enumerate() {
        assert_eq!(plaintext(r), format!("record {i}").into_bytes());
    }
    assert_eq!(answer.stats.unwrap().rounds, 1);
}

#[test]
fn encrypt_endpoint_round_trips_and_purposes_are_enforced() {
    let h = Harness::start(3);
    h.create(1, "k", Algorithm::HpkeX25519, 2, None).unwrap();
    h.create(1, "e", Algorithm::EciesSecp256k1, 2, None)
        .unwrap();
    h.create(1, "s", Algorithm::FrostEd25519, 2, None).unwrap();
    for aead in [
        None,
        Some("aes-128-gcm"),
        Some("aes-256-gcm"),
        Some("chacha20-poly1305"),
    ] {
        let request = EncryptRequest {
            plaintexts: vec![PlaintextItem {
                plaintext: b64(b"box"),
                info: Some(b64(b"v/1")),
                aad: Some(b64(b"a")),
                aead: aead.map(str::to_string),
            }],
        };
        let sealed = h.rt.block_on(h.client(2).encrypt("k", &request)).unwrap();
        let answer = decrypt(&h, 3, "k", sealed.ciphertexts);
        assert_eq!(plaintext(&answer.results[0]), b"box");
    }
    let request = EncryptRequest {
        plaintexts: vec![PlaintextItem {
            plaintext: b64(b"plate"),
            ..Default::default()
        }],
    };
    let sealed = h.rt.block_on(h.client(1).encrypt("e", &request)).unwrap();
    assert_eq!(
        plaintext(&decrypt(&h, 2, "e", sealed.ciphertexts).results[0]),
        b"plate"
    );

    let sign_key_decrypt = h.rt.block_on(h.client(1).decrypt(
        "s",
        &DecryptRequest {
            ciphertexts: vec![CiphertextItem::default()],
            ..Default::default()
        },
    ));
    assert_eq!(Harness::expect_api_error(sign_key_decrypt).0, 400);
    let decrypt_key_sign = h.rt.block_on(h.client(1).sign("k", b"m"));
    assert_eq!(Harness::expect_api_error(decrypt_key_sign).0, 400);
    let empty = h.rt.block_on(h.client(1).decrypt(
        "k",
        &DecryptRequest {
            ciphertexts: vec![],
            ..Default::default()
        },
    ));
    assert_eq!(Harness::expect_api_error(empty).0, 400);
}

/// The canonical encoding of an item, written here from its description in
/// `src/decryption/digest.rs` rather than by calling it.
fn item_digest(item: &CiphertextItem) -> String {
    use sha2::{Digest, Sha256};
    let mut buf = b"keyquorum/decrypt-item/v1\0".to_vec();
    for field in [
        &item.enc,
        &item.info,
        &item.aad,
        &item.aead,
        &Some(item.ciphertext.clone()),
    ] {
        match field {
            None => buf.push(0),
            Some(text) => {
                buf.push(1);
                buf.extend_from_slice(&(text.len() as u32).to_be_bytes());
                buf.extend_from_slice(text.as_bytes());
            }
        }
    }
    hex::encode(Sha256::digest(buf))
}

#[test]
fn a_decryption_entry_names_each_whole_item_it_touched() {
    let h = Harness::start(3);
    let key = h
        .create(1, "faces", Algorithm::HpkeX25519, 2, None)
        .unwrap();
    let pk = hex::decode(&key.public_key).unwrap();
    let first = hpke_crate_seal(&pk, "aes-128-gcm", b"cam-1/0", b"face", b"record one");
    // The same ciphertext under another context: only the whole item tells them apart.
    let mut second = first.clone();
    second.info = Some(b64(b"cam-1/1"));
    let items = vec![first.clone(), second.clone()];
    decrypt(&h, 1, "faces", items.clone());
    let expected: Vec<String> = items.iter().map(item_digest).collect();
    assert_ne!(expected[0], expected[1]);
    for node in [1u16, 2, 3] {
        let page = h.rt.block_on(h.client(node).audit(None, 1000)).unwrap();
        let entries: Vec<_> = page
            .entries
            .iter()
            .filter(|e| e.action == "decrypt" && e.outcome == "ok")
            .collect();
        assert!(
            !entries.is_empty() || node != 1,
            "node {node}: no decrypt entry"
        );
        for e in entries {
            assert_eq!(
                e.details["items_sha256"],
                serde_json::json!(expected),
                "node {node}, entry {}",
                e.seq
            );
        }
    }
}
