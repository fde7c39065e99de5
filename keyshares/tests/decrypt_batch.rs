//! Batch verification of partial decryptions as the node runs it (`decrypt::prepared`,
//! DESIGN.md §6): a holder's partials are checked together, and one bad partial among many is
//! named by its position.

mod decrypt_support;

use std::collections::BTreeSet;

use decrypt_support::{ed25519_key, secp256k1_key, TestKey};
use keyshares::decrypt::prepared::{CheckedPartial, Ephemeral, VerifyingShare};
use keyshares::decrypt::{
    encrypt, partial_decrypt, verify_partial, Ciphertext, DecryptError, HpkeAead,
    PartialDecryption, Scheme,
};
use rand::rngs::OsRng;

fn ciphertexts(key: &TestKey, n: usize) -> Vec<Ciphertext> {
    (0..n)
        .map(|i| {
            let message = format!("frame {i}: box 10,20,30,40");
            // eciespy's format has no info.
            let info: &[u8] = match key.scheme {
                Scheme::HpkeX25519 => b"video-7",
                Scheme::EciesSecp256k1 => b"",
            };
            encrypt(
                key.scheme,
                &key.public.group_key,
                message.as_bytes(),
                info,
                b"",
                HpkeAead::Aes128Gcm,
                &mut OsRng,
            )
            .unwrap()
        })
        .collect()
}

/// (holder, partial) for each ciphertext and each of `holders`, in that order.
fn partials(
    key: &TestKey,
    cts: &[Ciphertext],
    holders: &[u16],
) -> Vec<(u16, usize, PartialDecryption)> {
    let mut out = Vec::new();
    for (i, ct) in cts.iter().enumerate() {
        let e = ct.ephemeral().unwrap();
        for &h in holders {
            let p = partial_decrypt(key.scheme, &key.shares[&h], e, &mut OsRng).unwrap();
            out.push((h, i, p));
        }
    }
    out
}

/// Each holder's partials checked in one batch, as the node checks them; results in the
/// order of `partials`.
fn batch_results(
    key: &TestKey,
    cts: &[Ciphertext],
    partials: &[(u16, usize, PartialDecryption)],
) -> Vec<Result<(), DecryptError>> {
    let points: Vec<Ephemeral> = cts
        .iter()
        .map(|ct| Ephemeral::parse(key.scheme, ct.ephemeral().unwrap()).unwrap())
        .collect();
    let mut results = vec![Ok(()); partials.len()];
    let holders: BTreeSet<u16> = partials.iter().map(|(h, _, _)| *h).collect();
    for holder in holders {
        let share =
            VerifyingShare::decode(key.scheme, &key.public.verifying_shares[&holder]).unwrap();
        let positions: Vec<usize> = (0..partials.len())
            .filter(|i| partials[*i].0 == holder)
            .collect();
        let items: Vec<(&Ephemeral, &PartialDecryption)> = positions
            .iter()
            .map(|i| (&points[partials[*i].1], &partials[*i].2))
            .collect();
        let checked = CheckedPartial::verify_many(&share, &items, &mut OsRng);
        for (i, result) in positions.into_iter().zip(checked) {
            results[i] = result.map(|_| ());
        }
    }
    results
}

/// 500 ciphertexts, two holders each: 1,000 partials. Holder 3's partial for record 321 is a
/// valid partial of another record (its proof is well formed, only wrong here).
#[test]
fn one_bad_proof_among_1000_is_named() {
    let (key, _) = ed25519_key();
    let cts = ciphertexts(&key, 500);
    let mut all = partials(&key, &cts, &[1, 3]);
    assert_eq!(all.len(), 1000);
    assert!(batch_results(&key, &cts, &all).iter().all(Result::is_ok));

    let bad = all
        .iter()
        .position(|(h, i, _)| *h == 3 && *i == 321)
        .unwrap();
    let misplaced = all
        .iter()
        .position(|(h, i, _)| *h == 3 && *i == 322)
        .unwrap();
    all[bad].2 = all[misplaced].2.clone();
    let results = batch_results(&key, &cts, &all);
    let failed: Vec<(u16, usize)> = all
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_err())
        .map(|((h, i, _), _)| (*h, *i))
        .collect();
    assert_eq!(
        failed,
        vec![(3, 321)],
        "exactly the bad partial, by holder and record"
    );
    assert_eq!(results[bad], Err(DecryptError::InvalidProof));
}

/// The batch answers what each single check answers, item by item, decode errors included.
#[test]
fn batch_agrees_with_single_checks_on_bad_encodings() {
    for key in [ed25519_key().0, secp256k1_key().0] {
        let cts = ciphertexts(&key, 3);
        let mut all = partials(&key, &cts, &[2, 4]);
        all[1].2.proof.pop();
        all[2].2.point = vec![0u8; all[2].2.point.len()];
        all[4].2.proof[5] ^= 0x40;
        let results = batch_results(&key, &cts, &all);
        for ((holder, item, partial), got) in all.iter().zip(&results) {
            let e = cts[*item].ephemeral().unwrap();
            let single =
                verify_partial(key.scheme, &key.public.verifying_shares[holder], e, partial);
            assert_eq!(got, &single, "{} holder {holder} item {item}", key.scheme);
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
        assert_eq!(results[1], Err(DecryptError::MalformedProof));
    }
}

#[test]
fn proof_lengths_are_fixed_per_scheme() {
    for key in [ed25519_key().0, secp256k1_key().0] {
        let cts = ciphertexts(&key, 1);
        let all = partials(&key, &cts, &[1]);
        assert_eq!(all[0].2.proof.len(), key.scheme.proof_len());
    }
    assert_eq!(Scheme::HpkeX25519.proof_len(), 96);
    assert_eq!(Scheme::EciesSecp256k1.proof_len(), 98);
}
