//! Costs of threshold decryption (DESIGN.md §6 lists the reference numbers): one node's
//! partial with its proof, the combiner's check of one partial, a whole 3-of-5 decryption run
//! sequentially on one core, and an ordinary single-key decryption as the baseline.
//!
//! End-to-end mode (DESIGN.md §6) adds the requester's side per record: opening t + 1 holders'
//! sealed partials, checking their proofs, combining t and opening (`e2e_client_per_record`),
//! and each holder's seal of its partial (`e2e_holder_seal`).
//!
//! `cargo bench -p keyshares --bench decrypt`; medians land in target/criterion/*/new/estimates.json.

#[path = "../tests/decrypt_support/mod.rs"]
mod decrypt_support;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use decrypt_support::{ed25519_key, secp256k1_key, threshold_decrypt, TestKey};
use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use keyshares::decrypt::prepared::{CheckedPartial, Ephemeral, VerifyingShare};
use keyshares::decrypt::reply::{reply_context, seal_partial};
use keyshares::decrypt::requester::{open_answers, Binding, HolderAnswer, HolderItem, KeyView};
use keyshares::decrypt::{
    encrypt, partial_decrypt, standard_public_key, verify_partial, Ciphertext, HpkeAead,
    PartialDecryption, Scheme,
};
use rand::rngs::OsRng;

const MESSAGE: &[u8] = b"plate: KQ-2024; box: 120,44,310,96";

fn threshold_benches(c: &mut Criterion, name: &str, key: &TestKey, ct: &Ciphertext) {
    let e = ct.ephemeral().unwrap();
    let scheme = key.scheme;
    let partial = partial_decrypt(scheme, &key.shares[&1], e, &mut OsRng).unwrap();
    let vs = &key.public.verifying_shares[&1];

    c.bench_function(&format!("{name}/partial_decrypt"), |b| {
        b.iter(|| partial_decrypt(scheme, &key.shares[&1], black_box(e), &mut OsRng).unwrap())
    });
    c.bench_function(&format!("{name}/verify_partial"), |b| {
        b.iter(|| verify_partial(scheme, vs, black_box(e), &partial).unwrap())
    });
    // 64 partials of 32 records from two holders: the batch against 64 single checks.
    let records: Vec<Ciphertext> = (0..32)
        .map(|_| {
            encrypt(
                scheme,
                &key.public.group_key,
                MESSAGE,
                b"",
                b"",
                HpkeAead::Aes128Gcm,
                &mut OsRng,
            )
            .unwrap()
        })
        .collect();
    let many: Vec<(u16, &[u8], PartialDecryption)> = records
        .iter()
        .flat_map(|ct| {
            let e = ct.ephemeral().unwrap();
            [1u16, 2].map(|h| {
                (
                    h,
                    e,
                    partial_decrypt(scheme, &key.shares[&h], e, &mut OsRng).unwrap(),
                )
            })
        })
        .collect();
    c.bench_function(&format!("{name}/verify_64_partials_one_by_one"), |b| {
        b.iter(|| {
            for (h, e, p) in &many {
                verify_partial(scheme, &key.public.verifying_shares[h], e, p).unwrap();
            }
        })
    });
    c.bench_function(&format!("{name}/verify_64_partials_batch"), |b| {
        b.iter(|| {
            for holder in [1u16, 2] {
                let vs = &key.public.verifying_shares[&holder];
                let share = VerifyingShare::decode(scheme, vs).unwrap();
                let mine: Vec<&(u16, &[u8], PartialDecryption)> =
                    many.iter().filter(|(h, _, _)| *h == holder).collect();
                let points: Vec<Ephemeral> = mine
                    .iter()
                    .map(|(_, e, _)| Ephemeral::parse(scheme, e).unwrap())
                    .collect();
                let items: Vec<(&Ephemeral, &PartialDecryption)> =
                    points.iter().zip(mine.iter().map(|(_, _, p)| p)).collect();
                let checked = CheckedPartial::verify_many(&share, &items, &mut OsRng);
                assert!(checked.iter().all(Result::is_ok));
            }
        })
    });
    c.bench_function(&format!("{name}/threshold_3_of_5_sequential"), |b| {
        b.iter(|| threshold_decrypt(key, &[1, 3, 5], black_box(ct)).unwrap())
    });
    e2e_benches(c, name, key, ct);
}

/// The requester's work per record in end-to-end mode: four holders' answers (t = 3 and the
/// default spare), each opened and checked, three combined.
fn e2e_benches(c: &mut Criterion, name: &str, key: &TestKey, ct: &Ciphertext) {
    let binding = Binding {
        key: "bench",
        client: "analyst",
        nonce: "0123456789abcdef",
    };
    let (secret, public) = keyshares::seal::generate(&mut OsRng);
    let e = ct.ephemeral().unwrap();
    let sealed = |holder: u16| {
        let p = partial_decrypt(key.scheme, &key.shares[&holder], e, &mut OsRng).unwrap();
        let context = reply_context(binding.key, binding.client, binding.nonce, holder, 0);
        seal_partial(&public, &context, &p, &mut OsRng).unwrap()
    };
    let answers: Vec<HolderAnswer> = [1, 2, 4, 5]
        .into_iter()
        .map(|node| HolderAnswer {
            node,
            items: vec![HolderItem::Sealed(sealed(node))],
        })
        .collect();
    let view = KeyView {
        scheme: key.scheme,
        group_key: key.public.group_key.clone(),
        threshold: 3,
        verifying_shares: key.public.verifying_shares.clone(),
    };
    let items = vec![Ok(ct.clone())];
    c.bench_function(&format!("{name}/e2e_client_per_record"), |b| {
        b.iter(|| {
            let opened =
                open_answers(&view, binding, &secret, black_box(&items), &answers).unwrap();
            assert!(opened.results[0].is_ok());
        })
    });
    let partial = partial_decrypt(key.scheme, &key.shares[&1], e, &mut OsRng).unwrap();
    c.bench_function(&format!("{name}/e2e_holder_seal"), |b| {
        b.iter(|| seal_partial(&public, b"context", black_box(&partial), &mut OsRng).unwrap())
    });
}

fn x25519(c: &mut Criterion) {
    let (key, _) = ed25519_key();
    let ct = encrypt(
        Scheme::HpkeX25519,
        &key.public.group_key,
        MESSAGE,
        b"info",
        b"aad",
        HpkeAead::Aes128Gcm,
        &mut OsRng,
    )
    .unwrap();
    threshold_benches(c, "hpke_x25519", &key, &ct);

    // Baseline: the `hpke` crate opening with an ordinary private key.
    let (sk, pk) = X25519HkdfSha256::derive_keypair(b"benchmark key material, 32 bytes");
    let (enc, sealed) = hpke::single_shot_seal::<AesGcm128, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        b"info",
        MESSAGE,
        b"aad",
        &mut OsRng,
    )
    .unwrap();
    let enc_bytes = enc.to_bytes();
    c.bench_function("hpke_x25519/single_key_open_baseline", |b| {
        b.iter(|| {
            let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&enc_bytes).unwrap();
            hpke::single_shot_open::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &sk,
                &enc,
                b"info",
                black_box(&sealed),
                b"aad",
            )
            .unwrap()
        })
    });
}

fn secp256k1(c: &mut Criterion) {
    let (key, _) = secp256k1_key();
    let pk = standard_public_key(Scheme::EciesSecp256k1, &key.public.group_key).unwrap();
    let ct = Ciphertext::Ecies {
        blob: ecies::encrypt(&pk, MESSAGE).unwrap(),
    };
    threshold_benches(c, "ecies_secp256k1", &key, &ct);

    // Baseline: the `ecies` crate decrypting with an ordinary secret key.
    let (sk, pk) = ecies::utils::generate_keypair();
    let blob = ecies::encrypt(&pk.serialize(), MESSAGE).unwrap();
    let sk = sk.serialize();
    c.bench_function("ecies_secp256k1/single_key_decrypt_baseline", |b| {
        b.iter(|| ecies::decrypt(&sk, black_box(&blob)).unwrap())
    });
}

criterion_group! {
    name = benches;
    // Short runs: the numbers are for orientation, and the machine is shared.
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = x25519, secp256k1
}
criterion_main!(benches);
