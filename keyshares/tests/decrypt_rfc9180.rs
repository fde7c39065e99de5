//! RFC 9180 Appendix A.1.1 and A.2.1 (base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-128-GCM / ChaCha20Poly1305) through the threshold path: the vector's skRm is split 3-of-5
//! with Shamir, and the sequence-0 ciphertext is opened from 3 partials.
//!
//! Values copied from the CFRG test-vector file shipped in the `hpke` 0.12 crate
//! (test-vectors-5f503c5.json), which is the data of RFC 9180 Appendix A.

use std::collections::BTreeMap;

use curve25519_dalek::{EdwardsPoint, Scalar};
use keyshares::decrypt::{
    combine_and_open, partial_decrypt, standard_public_key, verify_partial, Ciphertext, HpkeAead,
    PartialDecryption, Scheme, ShareScalar,
};
use rand::rngs::OsRng;

struct Vector {
    aead: HpkeAead,
    info: &'static str,
    sk_rm: &'static str,
    pk_rm: &'static str,
    enc: &'static str,
    // Sequence number 0.
    aad: &'static str,
    ct: &'static str,
    pt: &'static str,
}

/// A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
const A_1_1: Vector = Vector {
    aead: HpkeAead::Aes128Gcm,
    info: "4f6465206f6e2061204772656369616e2055726e",
    sk_rm: "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
    pk_rm: "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
    enc: "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    aad: "436f756e742d30",
    ct:
        "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
    pt: "4265617574792069732074727574682c20747275746820626561757479",
};

/// A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base mode.
const A_2_1: Vector = Vector {
    aead: HpkeAead::ChaCha20Poly1305,
    info: "4f6465206f6e2061204772656369616e2055726e",
    sk_rm: "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
    pk_rm: "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
    enc: "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
    aad: "436f756e742d30",
    ct:
        "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
    pt: "4265617574792069732074727574682c20747275746820626561757479",
};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// The X25519 private key as a scalar: clamp (RFC 7748 §5), then reduce mod l.
fn scalar_of_x25519_key(sk: &str) -> Scalar {
    let mut b: [u8; 32] = unhex(sk).try_into().unwrap();
    b[0] &= 248;
    b[31] &= 127;
    b[31] |= 64;
    Scalar::from_bytes_mod_order(b)
}

/// Test-local Shamir sharing of `s` with threshold t among ids 1..=n: f(0) = s, share_i = f(i).
fn shamir_split(s: Scalar, t: usize, n: u16) -> BTreeMap<u16, Scalar> {
    let coefficients: Vec<Scalar> = std::iter::once(s)
        .chain((1..t).map(|_| Scalar::random(&mut OsRng)))
        .collect();
    (1..=n)
        .map(|i| {
            let x = Scalar::from(i);
            // Horner's rule.
            let y = coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc * x + c);
            (i, y)
        })
        .collect()
}

fn run_vector(v: &Vector) {
    let s = scalar_of_x25519_key(v.sk_rm);
    let group_key = EdwardsPoint::mul_base(&s).compress().to_bytes();

    // pkR through the same group key → standard public key path the node uses.
    assert_eq!(
        standard_public_key(Scheme::HpkeX25519, &group_key).unwrap(),
        unhex(v.pk_rm),
        "pkRm"
    );

    let shares = shamir_split(s, 3, 5);
    let ct = Ciphertext::Hpke {
        enc: unhex(v.enc),
        ciphertext: unhex(v.ct),
        info: unhex(v.info),
        aad: unhex(v.aad),
        aead: v.aead,
    };
    let e = ct.ephemeral().unwrap();

    for subset in [[1u16, 2, 3], [1, 3, 5], [2, 4, 5]] {
        let partials: BTreeMap<u16, PartialDecryption> = subset
            .iter()
            .map(|&i| {
                let share =
                    ShareScalar::from_ed25519_scalar_bytes_for_tests(&shares[&i].to_bytes())
                        .unwrap();
                let partial = partial_decrypt(Scheme::HpkeX25519, &share, e, &mut OsRng).unwrap();
                let verifying_share = EdwardsPoint::mul_base(&shares[&i]).compress().to_bytes();
                verify_partial(Scheme::HpkeX25519, &verifying_share, e, &partial).unwrap();
                (i, partial)
            })
            .collect();
        let pt = combine_and_open(&group_key, &partials, &ct).unwrap();
        assert_eq!(&pt[..], &unhex(v.pt)[..], "subset {subset:?}");

        // Two partials are below the threshold: the AEAD must fail, not some other path.
        let mut two = partials.clone();
        two.remove(&subset[0]);
        assert_eq!(
            combine_and_open(&group_key, &two, &ct).err(),
            Some(keyshares::decrypt::DecryptError::AeadOpen)
        );
    }
}

#[test]
fn rfc9180_a11_x25519_aes128gcm_through_threshold_path() {
    run_vector(&A_1_1);
}

#[test]
fn rfc9180_a21_x25519_chacha20poly1305_through_threshold_path() {
    run_vector(&A_2_1);
}
