//! The seal header: the data key wrapped under a key derived from the operator's passphrase
//! with Argon2id (RFC 9106), and the Argon2 parameters it was derived with (DESIGN.md §8).
//!
//! The parameters are read from disk, so they are bounded before anything is derived: a header
//! edited to ask for terabytes of memory or millions of passes is refused with an error, not
//! obeyed.

use anyhow::Context;
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::StoreError;

use super::SEAL_HEADER;

/// Argon2id cost: OWASP's recommended m=19 MiB, t=2, p=1. Unsealing happens once per start (or
/// unseal), so ~30 ms is cheap there and expensive for an attacker guessing passphrases.
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SealHeader {
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    wrapped_dek: String,
}

/// The largest Argon2 cost a seal header may ask for: 1 GiB of memory, 16 passes, 16 lanes
/// (RFC 9106 §4 recommends at most 2 GiB and t = 1, or 64 MiB and t = 3).
pub const MAX_M_KIB: u32 = 1024 * 1024;
pub const MAX_T: u32 = 16;
pub const MAX_P: u32 = 16;

/// Refuses parameters outside what this node would ever write, before any derivation.
pub fn check_params(m: u32, t: u32, p: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_P).contains(&p),
        "seal header: argon2 p = {p} is outside 1..={MAX_P}"
    );
    anyhow::ensure!(
        (8 * p..=MAX_M_KIB).contains(&m),
        "seal header: argon2 m_kib = {m} is outside {}..={MAX_M_KIB}",
        8 * p
    );
    anyhow::ensure!(
        (1..=MAX_T).contains(&t),
        "seal header: argon2 t = {t} is outside 1..={MAX_T}"
    );
    Ok(())
}

fn derive_kek(
    passphrase: &str,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    check_params(m, t, p)?;
    let params =
        Params::new(m, t, p, Some(32)).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    let mut kek = Zeroizing::new([0u8; 32]);
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(kek)
}

pub fn wrap_dek(passphrase: &str, dek: &[u8; 32]) -> anyhow::Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let kek = derive_kek(passphrase, &salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P)?;
    let wrapped = XChaCha20Poly1305::new(kek.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: dek,
                aad: SEAL_HEADER,
            },
        )
        .map_err(|_| anyhow::anyhow!("wrapping the data key failed"))?;
    let header = SealHeader {
        m_kib: ARGON2_M_KIB,
        t: ARGON2_T,
        p: ARGON2_P,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        wrapped_dek: hex::encode(wrapped),
    };
    Ok(serde_json::to_vec(&header)?)
}

pub fn unwrap_dek(passphrase: &str, header: &[u8]) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let header: SealHeader = serde_json::from_slice(header).context("corrupt seal header")?;
    let salt = hex::decode(&header.salt).context("corrupt seal header")?;
    let nonce = hex::decode(&header.nonce).context("corrupt seal header")?;
    let wrapped = hex::decode(&header.wrapped_dek).context("corrupt seal header")?;
    if nonce.len() != 24 || salt.len() < 8 {
        return Err(anyhow::anyhow!("corrupt seal header").into());
    }
    let kek = derive_kek(passphrase, &salt, header.m_kib, header.t, header.p)?;
    let dek = Zeroizing::new(
        XChaCha20Poly1305::new(kek.as_ref().into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &wrapped,
                    aad: SEAL_HEADER,
                },
            )
            .map_err(|_| StoreError::WrongPassphrase)?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if dek.len() != 32 {
        return Err(anyhow::anyhow!("corrupt seal header").into());
    }
    out.copy_from_slice(&dek);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with(m_kib: u32, t: u32, p: u32) -> Vec<u8> {
        let dek = [7u8; 32];
        let mut header: serde_json::Value =
            serde_json::from_slice(&wrap_dek("pass", &dek).unwrap()).unwrap();
        header["m_kib"] = m_kib.into();
        header["t"] = t.into();
        header["p"] = p.into();
        serde_json::to_vec(&header).unwrap()
    }

    #[test]
    fn absurd_argon2_parameters_are_refused_before_deriving() {
        for (m, t, p, field) in [
            (u32::MAX, 2, 1, "m_kib"),
            (MAX_M_KIB + 1, 2, 1, "m_kib"),
            (19 * 1024, 1_000_000, 1, "t = "),
            (19 * 1024, 0, 1, "t = "),
            (19 * 1024, 2, 255, "p = "),
        ] {
            let started = std::time::Instant::now();
            let e = match unwrap_dek("pass", &header_with(m, t, p)) {
                Err(StoreError::Other(e)) => e.to_string(),
                Err(other) => panic!("{m} {t} {p}: unexpected {other}"),
                Ok(_) => panic!("{m} {t} {p}: accepted"),
            };
            assert!(e.contains(field), "{e}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        // The parameters this node writes are accepted.
        let dek = unwrap_dek("pass", &header_with(ARGON2_M_KIB, ARGON2_T, ARGON2_P)).unwrap();
        assert_eq!(*dek, [7u8; 32]);
    }
}
