//! End-to-end decryption, requester side (DESIGN.md §6), against crafted relayed answers: an
//! honest relay opens; a holder's bad proof, a refused valid item, a partial sealed to another
//! key or moved to another item names the holder; a relay that drops partials leaves the
//! requester short, and one that duplicates a holder or invents one is refused.

#[path = "decrypt_support/mod.rs"]
mod decrypt_support;

use decrypt_support::{ed25519_key, secp256k1_key, TestKey};
use keyshares::decrypt::reply::{reply_context, seal_partial};
use keyshares::decrypt::requester::{
    open_answers, Binding, HolderAnswer, HolderItem, KeyView, RelayError,
};
use keyshares::decrypt::{encrypt, partial_decrypt, Ciphertext, HpkeAead, Scheme};
use rand::rngs::OsRng;

const BINDING: Binding<'static> = Binding {
    key: "reid",
    client: "analyst",
    nonce: "0123456789abcdef0123",
};

fn view(key: &TestKey) -> KeyView {
    KeyView {
        scheme: key.scheme,
        group_key: key.public.group_key.clone(),
        threshold: 3,
        verifying_shares: key.public.verifying_shares.clone(),
    }
}

fn ciphertexts(key: &TestKey, messages: &[&[u8]]) -> Vec<Result<Ciphertext, String>> {
    let (info, aad): (&[u8], &[u8]) = match key.scheme {
        Scheme::HpkeX25519 => (b"info", b"aad"),
        Scheme::EciesSecp256k1 => (b"", b""),
    };
    messages
        .iter()
        .map(|m| {
            Ok(encrypt(
                key.scheme,
                &key.public.group_key,
                m,
                info,
                aad,
                HpkeAead::ChaCha20Poly1305,
                &mut OsRng,
            )
            .unwrap())
        })
        .collect()
}

/// What an honest holder sends: each item's partial sealed to `reply_to` under its context.
fn honest(
    key: &TestKey,
    holder: u16,
    reply_to: &[u8; 32],
    cts: &[Result<Ciphertext, String>],
) -> HolderAnswer {
    let items = cts
        .iter()
        .enumerate()
        .map(|(i, ct)| {
            let e = ct.as_ref().unwrap().ephemeral().unwrap();
            let p = partial_decrypt(key.scheme, &key.shares[&holder], e, &mut OsRng).unwrap();
            let context = reply_context(BINDING.key, BINDING.client, BINDING.nonce, holder, i);
            HolderItem::Sealed(seal_partial(reply_to, &context, &p, &mut OsRng).unwrap())
        })
        .collect();
    HolderAnswer {
        node: holder,
        items,
    }
}

fn plain(result: &Result<zeroize::Zeroizing<Vec<u8>>, String>) -> &[u8] {
    result.as_ref().map(|p| p.as_slice()).unwrap()
}

#[test]
fn an_honest_relay_opens_for_both_schemes() {
    for key in [ed25519_key().0, secp256k1_key().0] {
        let (secret, public) = keyshares::seal::generate(&mut OsRng);
        let cts = ciphertexts(&key, &[b"plate AB-123", b"face 7"]);
        let answers: Vec<_> = [5, 2, 4].map(|h| honest(&key, h, &public, &cts)).into();
        let opened = open_answers(&view(&key), BINDING, &secret, &cts, &answers).unwrap();
        assert_eq!(plain(&opened.results[0]), b"plate AB-123");
        assert_eq!(plain(&opened.results[1]), b"face 7");
        assert!(opened.culprits.is_empty() && !opened.short);
        assert_eq!(opened.contributors, vec![2, 4, 5]);
    }
}

#[test]
fn a_bad_proof_names_its_holder_and_spares_cover_it() {
    let (key, _) = ed25519_key();
    let (secret, public) = keyshares::seal::generate(&mut OsRng);
    let cts = ciphertexts(&key, &[b"secret"]);
    let mut answers: Vec<_> = [1, 2, 3, 4].map(|h| honest(&key, h, &public, &cts)).into();
    // Holder 2 sends a partial whose proof is flipped, sealed correctly.
    let e = cts[0].as_ref().unwrap().ephemeral().unwrap();
    let mut p = partial_decrypt(key.scheme, &key.shares[&2], e, &mut OsRng).unwrap();
    p.proof[0] ^= 1;
    let context = reply_context(BINDING.key, BINDING.client, BINDING.nonce, 2, 0);
    answers[1].items[0] =
        HolderItem::Sealed(seal_partial(&public, &context, &p, &mut OsRng).unwrap());
    let opened = open_answers(&view(&key), BINDING, &secret, &cts, &answers).unwrap();
    assert_eq!(plain(&opened.results[0]), b"secret");
    assert_eq!(opened.culprits.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert!(
        opened.culprits[&2].contains("invalid partial"),
        "{opened:?}"
    );
    assert!(!opened.contributors.contains(&2));
}

#[test]
fn a_refused_valid_item_names_its_holder() {
    let (key, _) = secp256k1_key();
    let (secret, public) = keyshares::seal::generate(&mut OsRng);
    let cts = ciphertexts(&key, &[b"secret"]);
    let mut answers: Vec<_> = [1, 2, 3].map(|h| honest(&key, h, &public, &cts)).into();
    answers[2].items[0] = HolderItem::Error("no".into());
    let opened = open_answers(&view(&key), BINDING, &secret, &cts, &answers).unwrap();
    assert_eq!(opened.culprits.keys().copied().collect::<Vec<_>>(), vec![3]);
    assert!(opened.short, "two valid partials of three needed");
    assert!(opened.results[0].is_err());
}

#[test]
fn partials_sealed_to_another_key_or_moved_between_items_do_not_count() {
    let (key, _) = ed25519_key();
    let (secret, public) = keyshares::seal::generate(&mut OsRng);
    let (_, other) = keyshares::seal::generate(&mut OsRng);
    let cts = ciphertexts(&key, &[b"first", b"second"]);
    // A relay that swapped reply_to for its own key: nothing it relays opens for us.
    let swapped: Vec<_> = [1, 2, 3].map(|h| honest(&key, h, &other, &cts)).into();
    let opened = open_answers(&view(&key), BINDING, &secret, &cts, &swapped).unwrap();
    assert!(opened.short && opened.results.iter().all(Result::is_err));
    assert_eq!(opened.culprits.len(), 3);
    assert!(opened.culprits[&1].contains("does not open"), "{opened:?}");
    // Items swapped between positions: bound to their index, they no longer open.
    let mut answers: Vec<_> = [1, 2, 3].map(|h| honest(&key, h, &public, &cts)).into();
    answers[0].items.swap(0, 1);
    let opened = open_answers(&view(&key), BINDING, &secret, &cts, &answers).unwrap();
    assert_eq!(opened.culprits.keys().copied().collect::<Vec<_>>(), vec![1]);
    // Another request's answers (another nonce) do not open either.
    let replayed = Binding {
        nonce: "another-nonce-0000",
        ..BINDING
    };
    let answers: Vec<_> = [1, 2, 3].map(|h| honest(&key, h, &public, &cts)).into();
    let opened = open_answers(&view(&key), replayed, &secret, &cts, &answers).unwrap();
    assert_eq!(opened.culprits.len(), 3);
}

#[test]
fn a_relay_that_drops_duplicates_or_invents_holders_is_caught() {
    let (key, _) = ed25519_key();
    let (secret, public) = keyshares::seal::generate(&mut OsRng);
    let cts = ciphertexts(&key, &[b"secret"]);
    let answers: Vec<_> = [1, 2, 3].map(|h| honest(&key, h, &public, &cts)).into();
    // Dropped: two of three needed, nobody to blame, the requester must ask again.
    let opened = open_answers(&view(&key), BINDING, &secret, &cts, &answers[..2]).unwrap();
    assert!(opened.short && opened.culprits.is_empty());
    assert!(opened.results[0].as_ref().unwrap_err().contains("only 2"));
    // Duplicated: holder 1 twice would count as two partials if accepted.
    let duplicated = vec![answers[0].clone(), answers[0].clone(), answers[1].clone()];
    assert_eq!(
        open_answers(&view(&key), BINDING, &secret, &cts, &duplicated).unwrap_err(),
        RelayError::DuplicateHolder(1)
    );
    // A node that holds no share.
    let mut invented = answers.clone();
    invented[2].node = 9;
    assert_eq!(
        open_answers(&view(&key), BINDING, &secret, &cts, &invented).unwrap_err(),
        RelayError::NotAHolder(9)
    );
    // An item dropped from one holder's answer.
    let mut truncated = answers;
    truncated[0].items.clear();
    assert!(matches!(
        open_answers(&view(&key), BINDING, &secret, &cts, &truncated).unwrap_err(),
        RelayError::ItemCount { node: 1, .. }
    ));
}
