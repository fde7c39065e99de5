//! In-process costs of a key's lifecycle next to the key generation they are compared with:
//! a whole refresh, reshare and repair, every message delivered at once, on one core.
//!
//! `cargo bench -p keyshares --bench lifecycle`; medians land in
//! target/criterion/lifecycle/*/new/estimates.json.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use keyshares::{dkg, repair, reshare, Curve, KeyShare, PublicKeys};
use rand::rngs::OsRng;

/// (threshold, participants) of the keys measured.
const SIZES: [(u16, u16); 3] = [(2, 3), (3, 5), (5, 9)];

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for (t, n) in SIZES {
        let ids: Vec<u16> = (1..=n).collect();
        let key = dkg::run_in_memory(Curve::Ed25519, t, &ids, &mut OsRng).unwrap();
        let public = key[0].1.clone();
        group.bench_function(format!("dkg/{t}-of-{n}"), |b| {
            b.iter(|| dkg::run_in_memory(Curve::Ed25519, t, &ids, &mut OsRng).unwrap())
        });
        group.bench_function(format!("refresh/{t}-of-{n}"), |b| {
            b.iter(|| dkg::refresh_in_memory(&key, &mut OsRng).unwrap())
        });
        group.bench_function(format!("reshare_same_committee/{t}-of-{n}"), |b| {
            b.iter(|| reshare::run_in_memory(&key, &ids, &ids, t, &mut OsRng).unwrap())
        });
        let grown: Vec<u16> = (1..=n + 2).collect();
        group.bench_function(
            format!("reshare_grow/{t}-of-{n}_to_{}-of-{}", t + 1, n + 2),
            |b| b.iter(|| reshare::run_in_memory(&key, &ids, &grown, t + 1, &mut OsRng).unwrap()),
        );
        let helpers: Vec<_> = key[1..=usize::from(t)].iter().map(|(s, _)| s).collect();
        let rebuilt = repair::repair_in_memory(&helpers, 1, &public, &mut OsRng).unwrap();
        assert_eq!(rebuilt, key[0].0);
        assert_eq!(frost_repair(&helpers, 1, &public), key[0].0);
        group.bench_function(format!("repair/{t}-of-{n}"), |b| {
            b.iter(|| repair::repair_in_memory(&helpers, 1, &public, &mut OsRng).unwrap())
        });
        // The baseline: frost's repair alone, without the commitments that name a liar.
        group.bench_function(format!("repair_frost_unverified/{t}-of-{n}"), |b| {
            b.iter(|| frost_repair(&helpers, 1, &public))
        });
    }
    group.finish();
}

/// frost `keys::repairable` steps 1–3 as they come, every message delivered at once.
fn frost_repair(helpers: &[&KeyShare], target: u16, public: &PublicKeys) -> KeyShare {
    use frost_ed25519::keys::repairable::{
        repair_share_part1, repair_share_part2, repair_share_part3,
    };
    let PublicKeys::Ed25519(public) = public else {
        unreachable!("the bench keys are Ed25519")
    };
    let id = |n: u16| frost_ed25519::Identifier::try_from(n).unwrap();
    let ids: Vec<_> = helpers.iter().map(|s| id(s.identifier())).collect();
    let mut received = std::collections::BTreeMap::<_, Vec<_>>::new();
    for share in helpers {
        let KeyShare::Ed25519(share) = share else {
            unreachable!("the bench keys are Ed25519")
        };
        for (to, delta) in repair_share_part1::<frost_ed25519::Ed25519Sha512, _>(
            &ids,
            share,
            &mut OsRng,
            id(target),
        )
        .unwrap()
        {
            received.entry(to).or_default().push(delta);
        }
    }
    let sigmas: Vec<_> = received.values().map(|d| repair_share_part2(d)).collect();
    KeyShare::Ed25519(repair_share_part3(&sigmas, id(target), public).unwrap())
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
