//! Helpers shared by the `decrypt_*` integration tests: a real FROST DKG and the threshold
//! decryption round trip through the public API.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;

use frost_core::keys::{dkg, KeyPackage, PublicKeyPackage};
use frost_core::{Ciphersuite, Identifier};
use keyshares::decrypt::{
    combine_and_open, partial_decrypt, verify_partial, Ciphertext, DecryptError, PartialDecryption,
    Scheme, ShareScalar,
};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// A key as the combiner sees it: group key and each participant's verifying share.
pub struct PublicSide {
    pub group_key: Vec<u8>,
    pub verifying_shares: BTreeMap<u16, Vec<u8>>,
}

/// A t-of-n key: the shares (by FROST identifier) and the public side.
pub struct TestKey {
    pub scheme: Scheme,
    pub shares: BTreeMap<u16, ShareScalar>,
    pub public: PublicSide,
}

/// Runs the three parts of the frost Pedersen DKG among n participants in memory.
pub fn frost_dkg<C: Ciphersuite>(
    t: u16,
    n: u16,
) -> (BTreeMap<u16, KeyPackage<C>>, PublicKeyPackage<C>) {
    let id = |i: u16| Identifier::<C>::try_from(i).unwrap();
    let mut r1_secret = BTreeMap::new();
    let mut r1_public = BTreeMap::new();
    for i in 1..=n {
        let (secret, package) = dkg::part1::<C, _>(id(i), n, t, OsRng).unwrap();
        r1_secret.insert(i, secret);
        r1_public.insert(id(i), package);
    }
    let others = |i: u16, all: &BTreeMap<Identifier<C>, _>| -> BTreeMap<Identifier<C>, _> {
        all.iter()
            .filter(|(k, _)| **k != id(i))
            .map(|(k, v): (&Identifier<C>, &dkg::round1::Package<C>)| (*k, v.clone()))
            .collect()
    };
    let mut r2_secret = BTreeMap::new();
    let mut r2_out = BTreeMap::new();
    for (i, secret) in r1_secret {
        let (s2, out) = dkg::part2(secret, &others(i, &r1_public)).unwrap();
        r2_secret.insert(i, s2);
        r2_out.insert(i, out);
    }
    let mut key_packages = BTreeMap::new();
    let mut public = None;
    for i in 1..=n {
        let received: BTreeMap<_, _> = r2_out
            .iter()
            .filter(|(from, _)| **from != i)
            .map(|(from, out)| (id(*from), out[&id(i)].clone()))
            .collect();
        let (kp, pkp) = dkg::part3(&r2_secret[&i], &others(i, &r1_public), &received).unwrap();
        key_packages.insert(i, kp);
        public = Some(pkp);
    }
    (key_packages, public.unwrap())
}

fn public_side<C: Ciphersuite>(pkp: &PublicKeyPackage<C>, n: u16) -> PublicSide {
    let verifying_shares = (1..=n)
        .map(|i| {
            let vs = &pkp.verifying_shares()[&Identifier::try_from(i).unwrap()];
            (i, vs.serialize().unwrap())
        })
        .collect();
    PublicSide {
        group_key: pkp.verifying_key().serialize().unwrap(),
        verifying_shares,
    }
}

/// A 3-of-5 HPKE-X25519 key from a real Ed25519 DKG, with its key packages.
pub fn ed25519_key() -> (TestKey, BTreeMap<u16, frost_ed25519::keys::KeyPackage>) {
    let (kps, pkp) = frost_dkg::<frost_ed25519::Ed25519Sha512>(3, 5);
    let shares = kps
        .iter()
        .map(|(i, kp)| (*i, ShareScalar::from_ed25519(kp)))
        .collect();
    let key = TestKey {
        scheme: Scheme::HpkeX25519,
        shares,
        public: public_side(&pkp, 5),
    };
    (key, kps)
}

/// A 3-of-5 ECIES-secp256k1 key from a real secp256k1 DKG, with its key packages.
pub fn secp256k1_key() -> (TestKey, BTreeMap<u16, frost_secp256k1::keys::KeyPackage>) {
    let (kps, pkp) = frost_dkg::<frost_secp256k1::Secp256K1Sha256>(3, 5);
    let shares = kps
        .iter()
        .map(|(i, kp)| (*i, ShareScalar::from_secp256k1(kp)))
        .collect();
    let key = TestKey {
        scheme: Scheme::EciesSecp256k1,
        shares,
        public: public_side(&pkp, 5),
    };
    (key, kps)
}

/// The partials of the given participants for a ciphertext, each checked with verify_partial.
pub fn verified_partials(
    key: &TestKey,
    ids: &[u16],
    ct: &Ciphertext,
) -> BTreeMap<u16, PartialDecryption> {
    let e = ct.ephemeral().unwrap();
    ids.iter()
        .map(|&i| {
            let partial = partial_decrypt(key.scheme, &key.shares[&i], e, &mut OsRng).unwrap();
            verify_partial(key.scheme, &key.public.verifying_shares[&i], e, &partial)
                .unwrap_or_else(|err| panic!("honest partial {i} rejected: {err}"));
            (i, partial)
        })
        .collect()
}

/// The whole threshold decryption with the given participants.
pub fn threshold_decrypt(
    key: &TestKey,
    ids: &[u16],
    ct: &Ciphertext,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    combine_and_open(&key.public.group_key, &verified_partials(key, ids, ct), ct)
}
