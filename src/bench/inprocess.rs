//! The same cryptography the cluster runs, done in this process on one thread with no
//! transport: the floor the networked figures are compared against.

use std::collections::BTreeMap;
use std::time::Instant;

use keyshares::decrypt::{
    combine_and_open, encrypt, partial_decrypt, verify_partial, Ciphertext, HpkeAead, Scheme,
    ShareScalar,
};
use keyshares::{sign, Curve, KeyShare, ProtocolError, PublicKeys};
use rand::rngs::OsRng;

use super::stats::{median, ms};

pub type Keys = Vec<(KeyShare, PublicKeys)>;

/// The whole frost DKG (with the echo check) for participants 1..=n, each in turn.
pub fn dkg(curve: Curve, t: u16, n: u16) -> anyhow::Result<Keys> {
    let ids: Vec<u16> = (1..=n).collect();
    Ok(keyshares::dkg::run_in_memory(curve, t, &ids, &mut OsRng)?)
}

/// Median milliseconds of a whole in-process ceremony.
pub fn dkg_ms(t: u16, n: u16, samples: usize) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let start = Instant::now();
        let keys = dkg(Curve::Ed25519, t, n)?;
        times.push(ms(start.elapsed()));
        anyhow::ensure!(keys.len() == usize::from(n), "DKG returned too few shares");
    }
    Ok(median(&times))
}

/// Median milliseconds of a whole in-process refresh of a key's shares.
pub fn refresh_ms(t: u16, n: u16, samples: usize) -> anyhow::Result<f64> {
    let mut keys = dkg(Curve::Ed25519, t, n)?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let start = Instant::now();
        keys = keyshares::dkg::refresh_in_memory(&keys, &mut OsRng)?;
        times.push(ms(start.elapsed()));
    }
    Ok(median(&times))
}

/// Commit by t signers, signing package, t signature shares, aggregate (which verifies).
pub fn sign_once(keys: &Keys, t: usize, message: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut nonces = Vec::with_capacity(t);
    let mut commitments = BTreeMap::new();
    for (share, _) in &keys[..t] {
        let (n, c) = sign::commit(share, &mut OsRng)?;
        nonces.push(n);
        commitments.insert(share.identifier(), c);
    }
    let package = sign::signing_package(Curve::Ed25519, &commitments, message)?;
    let mut shares = BTreeMap::new();
    for ((share, _), n) in keys[..t].iter().zip(nonces) {
        let s = sign::sign(share, n, &package, |_| Ok::<(), ProtocolError>(()))?;
        shares.insert(share.identifier(), s);
    }
    Ok(sign::aggregate(&keys[0].1, &package, &shares)?)
}

/// Median milliseconds of one in-process t-of-n signature.
pub fn sign_ms(t: u16, n: u16, samples: usize) -> anyhow::Result<f64> {
    let keys = dkg(Curve::Ed25519, t, n)?;
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples.max(1) {
        let message = format!("in-process {i}").into_bytes();
        let start = Instant::now();
        let sig = sign_once(&keys, usize::from(t), &message)?;
        times.push(ms(start.elapsed()));
        anyhow::ensure!(
            sig.len() == 64,
            "aggregate gave a {}-byte signature",
            sig.len()
        );
    }
    Ok(median(&times))
}

/// Plaintexts the size of one anonymisation-metadata record.
pub fn records(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            format!(
                "record {i:05}: plate KQ-{:04}; box 120,44,310,96",
                i * 7 % 10_000
            )
            .into_bytes()
        })
        .collect()
}

pub fn curve_of(scheme: Scheme) -> Curve {
    match scheme {
        Scheme::HpkeX25519 => Curve::Ed25519,
        Scheme::EciesSecp256k1 => Curve::Secp256k1,
    }
}

/// HPKE records bound to their frame as a real producer would; eciespy has no AAD.
pub fn context(scheme: Scheme, i: usize) -> (Vec<u8>, Vec<u8>) {
    match scheme {
        Scheme::HpkeX25519 => (
            b"keyquorum bench".to_vec(),
            format!("frame {i}").into_bytes(),
        ),
        Scheme::EciesSecp256k1 => (Vec::new(), Vec::new()),
    }
}

/// Encrypts every record to `group_key` as a standard encryptor would.
pub fn encrypt_all(
    scheme: Scheme,
    group_key: &[u8],
    plain: &[Vec<u8>],
) -> anyhow::Result<Vec<Ciphertext>> {
    plain
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (info, aad) = context(scheme, i);
            Ok(encrypt(
                scheme,
                group_key,
                p,
                &info,
                &aad,
                HpkeAead::Aes128Gcm,
                &mut OsRng,
            )?)
        })
        .collect()
}

/// What the service does per record, sequentially: t partials, each verified, then combine.
fn threshold_decrypt(
    scheme: Scheme,
    keys: &Keys,
    t: usize,
    cts: &[Ciphertext],
) -> anyhow::Result<()> {
    let shares: Vec<(u16, ShareScalar)> = keys[..t]
        .iter()
        .map(|(k, _)| {
            let s = match k {
                KeyShare::Ed25519(kp) => ShareScalar::from_ed25519(kp),
                KeyShare::Secp256k1(kp) => ShareScalar::from_secp256k1(kp),
            };
            (k.identifier(), s)
        })
        .collect();
    let public = &keys[0].1;
    let verifying = public.verifying_shares();
    let group = public.group_key();
    for ct in cts {
        let e = ct.ephemeral()?;
        let mut partials = BTreeMap::new();
        for (id, share) in &shares {
            let p = partial_decrypt(scheme, share, e, &mut OsRng)?;
            let vs = verifying
                .get(id)
                .ok_or_else(|| anyhow::anyhow!("no verifying share for {id}"))?;
            verify_partial(scheme, vs, e, &p)?;
            partials.insert(*id, p);
        }
        combine_and_open(&group, &partials, ct)?;
    }
    Ok(())
}

/// Median milliseconds per record of in-process t-of-n decryption of `count` records.
pub fn decrypt_ms(
    scheme: Scheme,
    t: u16,
    n: u16,
    count: usize,
    samples: usize,
) -> anyhow::Result<f64> {
    let keys = dkg(curve_of(scheme), t, n)?;
    let cts = encrypt_all(scheme, &keys[0].1.group_key(), &records(count))?;
    let mut per_record = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let start = Instant::now();
        threshold_decrypt(scheme, &keys, usize::from(t), &cts)?;
        per_record.push(ms(start.elapsed()) / count.max(1) as f64);
    }
    Ok(median(&per_record))
}
