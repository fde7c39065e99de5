//! The plain single-key equivalents, measured in the same run: what the operation costs when
//! one party simply holds the whole key.

use std::time::Instant;

use anyhow::anyhow;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use super::options::Op;
use super::stats::median;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// The operation it stands for: dkg, sign or decrypt.
    pub operation: String,
    pub algorithm: String,
    /// What was timed, e.g. "ed25519-dalek SigningKey::sign".
    pub name: String,
    /// Median over batches of the time per operation.
    pub ms_per_op: f64,
    pub ops_per_s: f64,
    pub batches: usize,
    pub ops_per_batch: usize,
}

/// Times `per_batch` calls of `f`, `batches` times, and reports the median batch per call.
fn time(
    op: Op,
    name: &str,
    batches: usize,
    per_batch: usize,
    mut f: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Baseline> {
    let mut per_op = Vec::with_capacity(batches);
    for _ in 0..batches.max(1) {
        let start = Instant::now();
        for i in 0..per_batch {
            f(i)?;
        }
        per_op.push(start.elapsed().as_secs_f64() * 1e3 / per_batch as f64);
    }
    let ms_per_op = median(&per_op);
    Ok(Baseline {
        operation: op.name().into(),
        algorithm: op.algorithm().to_string(),
        name: name.into(),
        ms_per_op,
        ops_per_s: 1e3 / ms_per_op,
        batches: batches.max(1),
        ops_per_batch: per_batch,
    })
}

/// The single-key figure for `op`, `per_batch` operations per batch.
pub fn measure(op: Op, batches: usize, per_batch: usize) -> anyhow::Result<Baseline> {
    let per_batch = per_batch.max(1);
    match op {
        // A single-key KMS rotates by generating a new key (whose public key changes).
        Op::Dkg | Op::Refresh => time(
            op,
            "ed25519-dalek SigningKey::generate",
            batches,
            per_batch,
            |_| {
                std::hint::black_box(ed25519_dalek::SigningKey::generate(&mut OsRng));
                Ok(())
            },
        ),
        Op::Sign => {
            use ed25519_dalek::Signer;
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            time(
                op,
                "ed25519-dalek SigningKey::sign",
                batches,
                per_batch,
                |i| {
                    let message = format!("bench message {i}");
                    std::hint::black_box(key.sign(message.as_bytes()));
                    Ok(())
                },
            )
        }
        Op::DecryptHpke | Op::DecryptHpkeE2e => hpke_open(op, batches, per_batch),
        Op::DecryptEcies | Op::DecryptEciesE2e => {
            let (sk, pk) = ecies::utils::generate_keypair();
            let (sk, pk) = (sk.serialize(), pk.serialize());
            let blobs = super::inprocess::records(per_batch)
                .iter()
                .map(|p| ecies::encrypt(&pk, p).map_err(|e| anyhow!("ecies encrypt: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            time(op, "ecies (pure Rust) decrypt", batches, per_batch, |i| {
                ecies::decrypt(&sk, &blobs[i]).map_err(|e| anyhow!("ecies decrypt: {e}"))?;
                Ok(())
            })
        }
    }
}

/// RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM: the suite the
/// cluster's HPKE keys are used with here.
fn hpke_open(op: Op, batches: usize, per_batch: usize) -> anyhow::Result<Baseline> {
    use hpke::aead::AesGcm128;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256;
    use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
    use keyshares::decrypt::Scheme;
    let (sk, pk) = X25519HkdfSha256::gen_keypair(&mut OsRng);
    let sealed = super::inprocess::records(per_batch)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (info, aad) = super::inprocess::context(Scheme::HpkeX25519, i);
            let (enc, ct) = hpke::single_shot_seal::<AesGcm128, HkdfSha256, X25519HkdfSha256, _>(
                &OpModeS::Base,
                &pk,
                &info,
                p,
                &aad,
                &mut OsRng,
            )
            .map_err(|e| anyhow!("hpke seal: {e}"))?;
            Ok((enc.to_bytes().to_vec(), ct, info, aad))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    time(op, "hpke single_shot_open", batches, per_batch, |i| {
        let (enc, ct, info, aad) = &sealed[i];
        let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc)
            .map_err(|e| anyhow!("hpke enc: {e}"))?;
        hpke::single_shot_open::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            info,
            ct,
            aad,
        )
        .map_err(|e| anyhow!("hpke open: {e}"))?;
        Ok(())
    })
}
