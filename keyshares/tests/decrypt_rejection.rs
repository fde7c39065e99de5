//! Hostile inputs: every one must give an `Err`, never a panic and never a partial.
//!
//! X25519: the low-order u-coordinates of RFC 7748 / the well-known blocklist (0, 1, the two
//! points of order 8, p − 1, p, p + 1, and their top-bit-set variants), twist points, wrong
//! lengths, non-canonical encodings, and points with a small-order component.
//! secp256k1: off-curve points, the identity, bad prefixes, truncations.

mod decrypt_support;

use std::collections::BTreeMap;

use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::{EdwardsPoint, Scalar};
use decrypt_support::{ed25519_key, secp256k1_key, verified_partials, TestKey};
use keyshares::decrypt::{
    combine_and_open, encrypt, partial_decrypt, standard_public_key, verify_partial, Ciphertext,
    DecryptError, HpkeAead, PartialDecryption, Scheme, ShareScalar,
};
use rand::rngs::OsRng;
use rand::RngCore;

/// Little-endian 32-byte encoding of a decimal number below 2^256.
fn le_from_decimal(dec: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for digit in dec.bytes() {
        let mut carry = u32::from(digit - b'0');
        for byte in out.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "overflow");
    }
    out
}

const P: &str = "57896044618658097711785492504343953926634992332820282019728792003956564819949";
const P_MINUS_1: &str =
    "57896044618658097711785492504343953926634992332820282019728792003956564819948";
const P_PLUS_1: &str =
    "57896044618658097711785492504343953926634992332820282019728792003956564819950";

/// The X25519 low-order u-coordinates (RFC 7748 §6.1 / the usual blocklist), and the same with
/// bit 255 set, which X25519 implementations mask off.
fn low_order_encodings() -> Vec<[u8; 32]> {
    let base = [
        "0",
        "1",
        "325606250916557431795983626356110631294008115727848805560023387167927233504",
        "39382357235489614581723060781553021112529911719440698176882885853963445705823",
        P_MINUS_1,
        P,
        P_PLUS_1,
    ]
    .map(le_from_decimal);
    let mut all = base.to_vec();
    all.extend(base.iter().map(|b| {
        let mut b = *b;
        b[31] |= 0x80;
        b
    }));
    all
}

/// u-coordinates on the quadratic twist: u³ + 486662u² + u is a non-residue mod p for these
/// (checked with Euler's criterion when the test was written).
const TWIST_US: [u8; 4] = [2, 3, 5, 12];

/// A point of order 8·l: B + T with T of order 8.
fn mixed_order_point() -> EdwardsPoint {
    let t = MontgomeryPoint(le_from_decimal(
        "325606250916557431795983626356110631294008115727848805560023387167927233504",
    ))
    .to_edwards(0)
    .unwrap();
    EdwardsPoint::mul_base(&Scalar::from(4242u32)) + t
}

fn x25519_share() -> ShareScalar {
    ShareScalar::from_ed25519_scalar_bytes_for_tests(&Scalar::from(77u8).to_bytes()).unwrap()
}

#[test]
fn x25519_low_order_points_are_rejected() {
    let share = x25519_share();
    for enc in low_order_encodings() {
        let err = partial_decrypt(Scheme::HpkeX25519, &share, &enc, &mut OsRng).unwrap_err();
        assert!(
            matches!(
                err,
                DecryptError::EncSmallOrder
                    | DecryptError::EncNotOnCurve
                    | DecryptError::EncNotCanonical
            ),
            "{} gave {err:?}",
            hex::encode(enc)
        );
    }
    // The named ones with their specific reasons.
    let order8 = le_from_decimal(
        "39382357235489614581723060781553021112529911719440698176882885853963445705823",
    );
    let reason = |u: [u8; 32]| partial_decrypt(Scheme::HpkeX25519, &share, &u, &mut OsRng).err();
    assert_eq!(reason(order8), Some(DecryptError::EncSmallOrder));
    assert_eq!(reason([0; 32]), Some(DecryptError::EncSmallOrder));
    // u = −1 is the pole of the birational map and not on the curve.
    assert_eq!(
        reason(le_from_decimal(P_MINUS_1)),
        Some(DecryptError::EncNotOnCurve)
    );
}

#[test]
fn x25519_twist_points_are_rejected() {
    let share = x25519_share();
    for u in TWIST_US {
        let mut enc = [0u8; 32];
        enc[0] = u;
        assert_eq!(
            partial_decrypt(Scheme::HpkeX25519, &share, &enc, &mut OsRng).err(),
            Some(DecryptError::EncNotOnCurve),
            "u = {u}"
        );
    }
    // Control: u = 9 (the base point) is on the curve and accepted.
    let mut nine = [0u8; 32];
    nine[0] = 9;
    assert!(partial_decrypt(Scheme::HpkeX25519, &share, &nine, &mut OsRng).is_ok());
}

#[test]
fn x25519_non_canonical_and_mixed_order_points_are_rejected() {
    let share = x25519_share();
    // u = 9 with bit 255 set: the same point for X25519, but not our canonical encoding.
    let mut nine_high = [0u8; 32];
    nine_high[0] = 9;
    nine_high[31] = 0x80;
    assert_eq!(
        partial_decrypt(Scheme::HpkeX25519, &share, &nine_high, &mut OsRng).err(),
        Some(DecryptError::EncNotCanonical)
    );
    let mixed = mixed_order_point().to_montgomery().to_bytes();
    assert_eq!(
        partial_decrypt(Scheme::HpkeX25519, &share, &mixed, &mut OsRng).err(),
        Some(DecryptError::EncNotTorsionFree)
    );
}

#[test]
fn x25519_wrong_lengths_are_rejected() {
    let share = x25519_share();
    for len in [0usize, 1, 31, 33, 64] {
        let enc = vec![9u8; len];
        assert_eq!(
            partial_decrypt(Scheme::HpkeX25519, &share, &enc, &mut OsRng).err(),
            Some(DecryptError::WrongLength {
                what: "enc",
                expected: 32,
                got: len
            })
        );
    }
}

#[test]
fn verify_partial_rejects_bad_ephemeral_point_and_verifying_share() {
    let (key, _) = ed25519_key();
    let ct = encrypt(
        Scheme::HpkeX25519,
        &key.public.group_key,
        b"m",
        b"",
        b"",
        HpkeAead::Aes128Gcm,
        &mut OsRng,
    )
    .unwrap();
    let e = ct.ephemeral().unwrap();
    let partial = partial_decrypt(Scheme::HpkeX25519, &key.shares[&1], e, &mut OsRng).unwrap();
    let vs = &key.public.verifying_shares[&1];
    assert_eq!(verify_partial(Scheme::HpkeX25519, vs, e, &partial), Ok(()));

    // A non-torsion-free "ephemeral" is refused before any proof check.
    let mixed = mixed_order_point().to_montgomery().to_bytes();
    assert_eq!(
        verify_partial(Scheme::HpkeX25519, vs, &mixed, &partial),
        Err(DecryptError::EncNotTorsionFree)
    );
    // A partial point with a torsion component (D + T) is refused even before the proof.
    let t = mixed_order_point() - EdwardsPoint::mul_base(&Scalar::from(4242u32));
    let d =
        curve25519_dalek::edwards::CompressedEdwardsY(partial.point.clone().try_into().unwrap())
            .decompress()
            .unwrap();
    let bad = PartialDecryption {
        point: (d + t).compress().to_bytes().to_vec(),
        proof: partial.proof.clone(),
    };
    assert_eq!(
        verify_partial(Scheme::HpkeX25519, vs, e, &bad),
        Err(DecryptError::EdwardsNotPrimeOrder {
            what: "partial decryption point"
        })
    );
    // A verifying share with a torsion component, or the identity, or garbage.
    let vs_point = curve25519_dalek::edwards::CompressedEdwardsY(vs.clone().try_into().unwrap())
        .decompress()
        .unwrap();
    for bad_vs in [
        (vs_point + t).compress().to_bytes().to_vec(),
        EdwardsPoint::default().compress().to_bytes().to_vec(),
        vec![0xff; 32],
        vs[..31].to_vec(),
    ] {
        assert!(verify_partial(Scheme::HpkeX25519, &bad_vs, e, &partial).is_err());
    }
    // A proof of the wrong length, or garbage.
    for proof in [vec![], vec![0u8; 63], vec![0xff; 64], vec![0u8; 65]] {
        let p = PartialDecryption {
            point: partial.point.clone(),
            proof,
        };
        assert!(verify_partial(Scheme::HpkeX25519, vs, e, &p).is_err());
    }
}

#[test]
fn secp256k1_bad_points_are_rejected() {
    let (key, _) = secp256k1_key();
    let share = &key.shares[&1];
    let good = standard_public_key(Scheme::EciesSecp256k1, &key.public.group_key).unwrap();
    assert!(partial_decrypt(Scheme::EciesSecp256k1, share, &good, &mut OsRng).is_ok());

    let mut off_curve_uncompressed = vec![0x04];
    off_curve_uncompressed.extend_from_slice(&[1u8; 64]); // (1, 1) is not on y² = x³ + 7
    let mut x_not_on_curve = vec![0x02];
    // x = 5: 5³ + 7 = 132 is not a square mod p (checked with Euler's criterion).
    x_not_on_curve.extend_from_slice(&[0u8; 31]);
    x_not_on_curve.push(5);
    let mut x_too_big = vec![0x03];
    x_too_big.extend_from_slice(&[0xff; 32]); // x ≥ p
    let mut hybrid = good.clone();
    hybrid[0] = 0x06;
    let mut compact = good.clone();
    compact[0] = 0x05;

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty"),
        (vec![0x00], "identity"),
        (vec![0x00; 33], "identity, padded"),
        (off_curve_uncompressed, "off curve (uncompressed)"),
        (x_not_on_curve, "x without a point"),
        (x_too_big, "x ≥ p"),
        (hybrid, "hybrid prefix"),
        (compact, "compact prefix"),
        (vec![0x01; 33], "bad prefix"),
        (good[..32].to_vec(), "truncated compressed"),
        ([good.clone(), vec![0]].concat(), "too long"),
        (vec![0x04; 64], "truncated uncompressed"),
    ];
    for (bytes, what) in cases {
        let err = partial_decrypt(Scheme::EciesSecp256k1, share, &bytes, &mut OsRng);
        assert!(err.is_err(), "{what} accepted");
        let vs = &key.public.verifying_shares[&1];
        let honest_e = ecies_ct(&key).ephemeral().unwrap().to_vec();
        let p = partial_decrypt(Scheme::EciesSecp256k1, share, &honest_e, &mut OsRng).unwrap();
        assert!(
            verify_partial(Scheme::EciesSecp256k1, vs, &bytes, &p).is_err(),
            "{what}"
        );
        assert!(
            verify_partial(Scheme::EciesSecp256k1, &bytes, &honest_e, &p).is_err(),
            "{what}"
        );
        let bad_partial = PartialDecryption {
            point: bytes.clone(),
            proof: p.proof.clone(),
        };
        assert!(verify_partial(Scheme::EciesSecp256k1, vs, &honest_e, &bad_partial).is_err());
        assert!(
            standard_public_key(Scheme::EciesSecp256k1, &bytes).is_err(),
            "{what}"
        );
    }
    assert_eq!(
        partial_decrypt(Scheme::EciesSecp256k1, share, &[0x00], &mut OsRng).err(),
        Some(DecryptError::Secp256k1Identity {
            what: "ephemeral public key"
        })
    );
}

fn ecies_ct(key: &TestKey) -> Ciphertext {
    encrypt(
        Scheme::EciesSecp256k1,
        &key.public.group_key,
        b"hello",
        b"",
        b"",
        HpkeAead::Aes128Gcm,
        &mut OsRng,
    )
    .unwrap()
}

#[test]
fn truncated_ciphertexts_are_rejected() {
    let (key, _) = secp256k1_key();
    let blob = match ecies_ct(&key) {
        Ciphertext::Ecies { blob } => blob,
        _ => unreachable!(),
    };
    for len in [0, 1, 64, 65, 96] {
        let ct = Ciphertext::Ecies {
            blob: blob[..len].to_vec(),
        };
        assert_eq!(
            ct.ephemeral().err(),
            Some(DecryptError::CiphertextTruncated { need: 97, got: len })
        );
        assert_eq!(
            combine_and_open(&key.public.group_key, &BTreeMap::new(), &ct).err(),
            Some(DecryptError::CiphertextTruncated { need: 97, got: len })
        );
    }
    // 97 bytes is an empty message: valid length.
    assert!(Ciphertext::Ecies {
        blob: blob[..97].to_vec()
    }
    .ephemeral()
    .is_ok());

    let hpke = |enc: usize, ct: usize| Ciphertext::Hpke {
        enc: vec![9; enc],
        ciphertext: vec![0; ct],
        info: vec![],
        aad: vec![],
        aead: HpkeAead::ChaCha20Poly1305,
    };
    assert!(matches!(
        hpke(31, 16).ephemeral(),
        Err(DecryptError::WrongLength { .. })
    ));
    assert_eq!(
        hpke(32, 15).ephemeral().err(),
        Some(DecryptError::CiphertextTruncated { need: 16, got: 15 })
    );
    assert!(hpke(32, 16).ephemeral().is_ok());
}

#[test]
fn combine_rejects_bad_sets_and_keys() {
    let (key, _) = ed25519_key();
    let ct = encrypt(
        Scheme::HpkeX25519,
        &key.public.group_key,
        b"m",
        b"",
        b"",
        HpkeAead::Aes256Gcm,
        &mut OsRng,
    )
    .unwrap();
    assert_eq!(
        combine_and_open(&key.public.group_key, &BTreeMap::new(), &ct).err(),
        Some(DecryptError::NoPartials)
    );
    let mut partials = verified_partials(&key, &[1, 2, 3], &ct);
    let p1 = partials[&1].clone();
    partials.insert(0, p1);
    assert_eq!(
        combine_and_open(&key.public.group_key, &partials, &ct).err(),
        Some(DecryptError::ZeroIdentifier)
    );
    partials.remove(&0);
    assert!(combine_and_open(&[0u8; 32], &partials, &ct).is_err());
    assert!(combine_and_open(&key.public.group_key[..31], &partials, &ct).is_err());
    // An HPKE key is not an ECIES key and the other way round.
    let (secp, _) = secp256k1_key();
    assert!(standard_public_key(Scheme::HpkeX25519, &secp.public.group_key).is_err());
    assert!(standard_public_key(Scheme::EciesSecp256k1, &key.public.group_key).is_err());
}

#[test]
fn share_of_the_wrong_curve_is_rejected() {
    let (ed, _) = ed25519_key();
    let (secp, _) = secp256k1_key();
    let mut nine = [0u8; 32];
    nine[0] = 9;
    let e = secp.public.group_key.clone();
    assert!(matches!(
        partial_decrypt(Scheme::HpkeX25519, &secp.shares[&1], &nine, &mut OsRng),
        Err(DecryptError::SchemeMismatch { .. })
    ));
    assert!(matches!(
        partial_decrypt(Scheme::EciesSecp256k1, &ed.shares[&1], &e, &mut OsRng),
        Err(DecryptError::SchemeMismatch { .. })
    ));
    // Debug never shows the scalar.
    let shown = format!("{:?}", ed.shares[&1]);
    assert!(shown.contains("redacted"), "{shown}");
}

/// Random bytes of every length up to 130 through every entry point: errors only, no panic.
#[test]
fn random_inputs_never_panic() {
    let (ed, _) = ed25519_key();
    let (secp, _) = secp256k1_key();
    let mut buf = [0u8; 130];
    for len in 0..buf.len() {
        for _ in 0..4 {
            OsRng.fill_bytes(&mut buf);
            let bytes = &buf[..len];
            for (scheme, key) in [(Scheme::HpkeX25519, &ed), (Scheme::EciesSecp256k1, &secp)] {
                let _ = partial_decrypt(scheme, &key.shares[&2], bytes, &mut OsRng);
                let p = PartialDecryption {
                    point: bytes.to_vec(),
                    proof: bytes.to_vec(),
                };
                let _ = verify_partial(scheme, bytes, bytes, &p);
                let _ = standard_public_key(scheme, bytes);
                let mut ps = BTreeMap::new();
                ps.insert(1u16, p.clone());
                ps.insert(2u16, p);
                let _ = combine_and_open(
                    bytes,
                    &ps,
                    &Ciphertext::Ecies {
                        blob: bytes.to_vec(),
                    },
                );
                let hpke = Ciphertext::Hpke {
                    enc: bytes.to_vec(),
                    ciphertext: bytes.to_vec(),
                    info: vec![],
                    aad: vec![],
                    aead: HpkeAead::Aes128Gcm,
                };
                let _ = combine_and_open(bytes, &ps, &hpke);
                let _ = encrypt(
                    scheme,
                    bytes,
                    bytes,
                    bytes,
                    bytes,
                    HpkeAead::Aes256Gcm,
                    &mut OsRng,
                );
            }
        }
    }
}
