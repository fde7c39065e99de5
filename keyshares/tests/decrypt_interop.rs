//! Interop with unmodified standard encryptors: ciphertexts from the Rust `hpke` 0.12 crate and
//! the `ecies` 0.2.14 crate (eciespy's default format) to the group key of a real 3-of-5 FROST
//! DKG are opened by 3 partials; and what `encrypt` produces opens both through the threshold
//! path and with those crates' ordinary single-key decryption (the key being rebuilt from 3
//! shares, in this test only).

mod decrypt_support;

use curve25519_dalek::Scalar;
use decrypt_support::{ed25519_key, secp256k1_key, threshold_decrypt, verified_partials};
use hpke::aead::{Aead, AesGcm128, AesGcm256, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use keyshares::decrypt::{
    combine_and_open, encrypt, partial_decrypt, standard_public_key, verify_partial, Ciphertext,
    DecryptError, HpkeAead, PartialDecryption, Scheme,
};
use rand::rngs::OsRng;

type HpkePublicKey = <X25519HkdfSha256 as Kem>::PublicKey;
type HpkePrivateKey = <X25519HkdfSha256 as Kem>::PrivateKey;

const INFO: &[u8] = b"video 7f3a / frame 1024";
const AAD: &[u8] = b"segment 12";
const MESSAGE: &[u8] = b"plate: KQ-2024; box: 120,44,310,96";

/// Seals with the `hpke` crate, as an edge device would.
fn hpke_crate_seal<A: Aead>(pk_r: &[u8], aead: HpkeAead) -> Ciphertext {
    let pk = HpkePublicKey::from_bytes(pk_r).unwrap();
    let (enc, ciphertext) = hpke::single_shot_seal::<A, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        INFO,
        MESSAGE,
        AAD,
        &mut OsRng,
    )
    .unwrap();
    Ciphertext::Hpke {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
        info: INFO.to_vec(),
        aad: AAD.to_vec(),
        aead,
    }
}

fn hpke_crate_ciphertexts(pk_r: &[u8]) -> Vec<Ciphertext> {
    vec![
        hpke_crate_seal::<AesGcm128>(pk_r, HpkeAead::Aes128Gcm),
        hpke_crate_seal::<AesGcm256>(pk_r, HpkeAead::Aes256Gcm),
        hpke_crate_seal::<ChaCha20Poly1305>(pk_r, HpkeAead::ChaCha20Poly1305),
    ]
}

#[test]
fn hpke_crate_ciphertexts_open_with_three_of_five() {
    let (key, _) = ed25519_key();
    let pk_r = standard_public_key(Scheme::HpkeX25519, &key.public.group_key).unwrap();
    assert_eq!(pk_r.len(), 32);
    for ct in hpke_crate_ciphertexts(&pk_r) {
        for ids in [[1u16, 2, 3], [3, 4, 5], [1, 3, 5]] {
            let pt = threshold_decrypt(&key, &ids, &ct).unwrap();
            assert_eq!(&pt[..], MESSAGE, "{ids:?}");
        }
        // More than t partials: interpolation over the given set still gives s.
        assert_eq!(
            &threshold_decrypt(&key, &[1, 2, 3, 4, 5], &ct).unwrap()[..],
            MESSAGE
        );
        // Fewer than t: a wrong key, which the AEAD reports.
        assert_eq!(
            threshold_decrypt(&key, &[2, 4], &ct).err(),
            Some(DecryptError::AeadOpen)
        );
    }
}

#[test]
fn ecies_crate_ciphertexts_open_with_three_of_five() {
    let (key, _) = secp256k1_key();
    let pk = standard_public_key(Scheme::EciesSecp256k1, &key.public.group_key).unwrap();
    assert_eq!(pk.len(), 33);
    let blob = ecies::encrypt(&pk, MESSAGE).unwrap();
    assert_eq!(
        blob.len(),
        65 + 16 + 16 + MESSAGE.len(),
        "default eciespy layout"
    );
    let ct = Ciphertext::Ecies { blob };
    for ids in [[1u16, 2, 3], [2, 3, 5], [1, 4, 5]] {
        assert_eq!(
            &threshold_decrypt(&key, &ids, &ct).unwrap()[..],
            MESSAGE,
            "{ids:?}"
        );
    }
    assert_eq!(
        threshold_decrypt(&key, &[1, 2], &ct).err(),
        Some(DecryptError::AeadOpen)
    );
    // An empty message too.
    let empty = Ciphertext::Ecies {
        blob: ecies::encrypt(&pk, b"").unwrap(),
    };
    assert!(threshold_decrypt(&key, &[1, 2, 3], &empty)
        .unwrap()
        .is_empty());
}

#[test]
fn wrong_info_aad_or_corruption_fails_the_aead() {
    let (key, _) = ed25519_key();
    let pk_r = standard_public_key(Scheme::HpkeX25519, &key.public.group_key).unwrap();
    for ct in hpke_crate_ciphertexts(&pk_r) {
        let Ciphertext::Hpke {
            enc,
            ciphertext,
            info,
            aad,
            aead,
        } = ct.clone()
        else {
            unreachable!()
        };
        let partials = verified_partials(&key, &[1, 2, 3], &ct);
        let variants = [
            Ciphertext::Hpke {
                enc: enc.clone(),
                ciphertext: ciphertext.clone(),
                info: b"video 7f3a / frame 1025".to_vec(),
                aad: aad.clone(),
                aead,
            },
            Ciphertext::Hpke {
                enc: enc.clone(),
                ciphertext: ciphertext.clone(),
                info: info.clone(),
                aad: b"segment 13".to_vec(),
                aead,
            },
            Ciphertext::Hpke {
                enc: enc.clone(),
                ciphertext: {
                    let mut c = ciphertext.clone();
                    c[0] ^= 1;
                    c
                },
                info: info.clone(),
                aad: aad.clone(),
                aead,
            },
        ];
        for variant in variants {
            assert_eq!(
                combine_and_open(&key.public.group_key, &partials, &variant).err(),
                Some(DecryptError::AeadOpen)
            );
        }
    }

    let (secp, _) = secp256k1_key();
    let pk = standard_public_key(Scheme::EciesSecp256k1, &secp.public.group_key).unwrap();
    let blob = ecies::encrypt(&pk, MESSAGE).unwrap();
    let partials = verified_partials(&secp, &[1, 2, 3], &Ciphertext::Ecies { blob: blob.clone() });
    for flip in [70, 85, 100] {
        let mut bad = blob.clone();
        bad[flip] ^= 1;
        assert_eq!(
            combine_and_open(
                &secp.public.group_key,
                &partials,
                &Ciphertext::Ecies { blob: bad }
            )
            .err(),
            Some(DecryptError::AeadOpen),
            "byte {flip}"
        );
    }
}

#[test]
fn partial_from_another_share_or_ciphertext_is_rejected() {
    for (key, ct) in [
        {
            let (k, _) = ed25519_key();
            let pk = standard_public_key(Scheme::HpkeX25519, &k.public.group_key).unwrap();
            let ct = hpke_crate_seal::<AesGcm128>(&pk, HpkeAead::Aes128Gcm);
            (k, ct)
        },
        {
            let (k, _) = secp256k1_key();
            let pk = standard_public_key(Scheme::EciesSecp256k1, &k.public.group_key).unwrap();
            let ct = Ciphertext::Ecies {
                blob: ecies::encrypt(&pk, MESSAGE).unwrap(),
            };
            (k, ct)
        },
    ] {
        let e = ct.ephemeral().unwrap();
        let s = key.scheme;
        let p2 = partial_decrypt(s, &key.shares[&2], e, &mut OsRng).unwrap();
        // Node 1 forwards node 2's partial as its own.
        assert_eq!(
            verify_partial(s, &key.public.verifying_shares[&1], e, &p2),
            Err(DecryptError::InvalidProof)
        );
        // Node 2's point with node 1's proof.
        let p1 = partial_decrypt(s, &key.shares[&1], e, &mut OsRng).unwrap();
        let mixed = PartialDecryption {
            point: p2.point.clone(),
            proof: p1.proof.clone(),
        };
        assert_eq!(
            verify_partial(s, &key.public.verifying_shares[&1], e, &mixed),
            Err(DecryptError::InvalidProof)
        );
        // A partial for another ciphertext's ephemeral point.
        let other = encrypt(
            s,
            &key.public.group_key,
            b"x",
            b"",
            b"",
            HpkeAead::Aes128Gcm,
            &mut OsRng,
        )
        .unwrap();
        let p_other =
            partial_decrypt(s, &key.shares[&1], other.ephemeral().unwrap(), &mut OsRng).unwrap();
        assert_eq!(
            verify_partial(s, &key.public.verifying_shares[&1], e, &p_other),
            Err(DecryptError::InvalidProof)
        );
    }
}

#[test]
fn encrypt_roundtrips_for_every_scheme_and_aead() {
    let (ed, _) = ed25519_key();
    for aead in [
        HpkeAead::Aes128Gcm,
        HpkeAead::Aes256Gcm,
        HpkeAead::ChaCha20Poly1305,
    ] {
        let ct = encrypt(
            Scheme::HpkeX25519,
            &ed.public.group_key,
            MESSAGE,
            INFO,
            AAD,
            aead,
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(ct.scheme(), Scheme::HpkeX25519);
        assert_eq!(
            &threshold_decrypt(&ed, &[5, 1, 4], &ct).unwrap()[..],
            MESSAGE,
            "{aead}"
        );
    }
    let (secp, _) = secp256k1_key();
    let ct = encrypt(
        Scheme::EciesSecp256k1,
        &secp.public.group_key,
        MESSAGE,
        b"",
        b"",
        HpkeAead::Aes128Gcm,
        &mut OsRng,
    )
    .unwrap();
    assert_eq!(ct.scheme(), Scheme::EciesSecp256k1);
    assert_eq!(
        &threshold_decrypt(&secp, &[2, 5, 3], &ct).unwrap()[..],
        MESSAGE
    );
    // eciespy cannot bind info or aad; asking for it is an error, not a silent drop.
    for (info, aad) in [(INFO, &b""[..]), (&b""[..], AAD)] {
        let refused = encrypt(
            Scheme::EciesSecp256k1,
            &secp.public.group_key,
            MESSAGE,
            info,
            aad,
            HpkeAead::Aes128Gcm,
            &mut OsRng,
        );
        assert!(matches!(refused, Err(DecryptError::Encrypt(_))));
    }
}

/// Opens with the `hpke` crate and an ordinary private key.
fn hpke_crate_open<A: Aead>(
    sk: &HpkePrivateKey,
    enc: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, hpke::HpkeError> {
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc)?;
    hpke::single_shot_open::<A, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        sk,
        &enc,
        INFO,
        ciphertext,
        AAD,
    )
}

/// An X25519 private key (32 bytes, clamped by the receiver) whose scalar is ±s mod l, for
/// the group secret s. Clamping forces 2^254 ≤ c < 2^255 and 8 | c, so c = 8·t with
/// t = s/8 mod l in [2^251, 2^252); of s and −s (same u-coordinate) one always qualifies.
fn x25519_key_bytes_for(s: Scalar) -> [u8; 32] {
    let eighth = Scalar::from(8u8).invert();
    for candidate in [s, -s] {
        let t = (candidate * eighth).to_bytes();
        if t[31] & 0xf8 == 0x08 {
            // c = 8·t, a 3-bit left shift of the little-endian integer.
            let mut c = [0u8; 32];
            let mut carry = 0u8;
            for (out, byte) in c.iter_mut().zip(t) {
                *out = (byte << 3) | carry;
                carry = byte >> 5;
            }
            return c;
        }
    }
    unreachable!("one of ±s has t in [2^251, 2^252)")
}

#[test]
fn encrypt_output_opens_with_the_standard_single_key_decryptors() {
    // HPKE: rebuild s from 3 shares (test only), turn it into an X25519 private key, and open
    // with the `hpke` crate.
    let (ed, kps) = ed25519_key();
    let three: Vec<_> = [1u16, 3, 4].iter().map(|i| kps[i].clone()).collect();
    let signing_key = frost_ed25519::keys::reconstruct(&three).unwrap();
    let s = Scalar::from_canonical_bytes(signing_key.serialize().try_into().unwrap()).unwrap();
    let sk = HpkePrivateKey::from_bytes(&x25519_key_bytes_for(s)).unwrap();
    let pk_r = standard_public_key(Scheme::HpkeX25519, &ed.public.group_key).unwrap();
    assert_eq!(X25519HkdfSha256::sk_to_pk(&sk).to_bytes().to_vec(), pk_r);
    for aead in [
        HpkeAead::Aes128Gcm,
        HpkeAead::Aes256Gcm,
        HpkeAead::ChaCha20Poly1305,
    ] {
        let ct = encrypt(
            Scheme::HpkeX25519,
            &ed.public.group_key,
            MESSAGE,
            INFO,
            AAD,
            aead,
            &mut OsRng,
        )
        .unwrap();
        let Ciphertext::Hpke {
            enc, ciphertext, ..
        } = ct
        else {
            unreachable!()
        };
        let pt = match aead {
            HpkeAead::Aes128Gcm => hpke_crate_open::<AesGcm128>(&sk, &enc, &ciphertext),
            HpkeAead::Aes256Gcm => hpke_crate_open::<AesGcm256>(&sk, &enc, &ciphertext),
            HpkeAead::ChaCha20Poly1305 => {
                hpke_crate_open::<ChaCha20Poly1305>(&sk, &enc, &ciphertext)
            }
        };
        assert_eq!(pt.unwrap(), MESSAGE, "{aead}");
    }

    // ECIES: our hand-written eciespy format opens with the `ecies` crate.
    let (secp, kps) = secp256k1_key();
    let three: Vec<_> = [2u16, 4, 5].iter().map(|i| kps[i].clone()).collect();
    let sk = frost_secp256k1::keys::reconstruct(&three)
        .unwrap()
        .serialize();
    let ct = encrypt(
        Scheme::EciesSecp256k1,
        &secp.public.group_key,
        MESSAGE,
        b"",
        b"",
        HpkeAead::Aes128Gcm,
        &mut OsRng,
    )
    .unwrap();
    let Ciphertext::Ecies { blob } = ct else {
        unreachable!()
    };
    assert_eq!(ecies::decrypt(&sk, &blob).unwrap(), MESSAGE);
}

#[test]
fn wire_names_and_serde() {
    for aead in [
        HpkeAead::Aes128Gcm,
        HpkeAead::Aes256Gcm,
        HpkeAead::ChaCha20Poly1305,
    ] {
        assert_eq!(aead.as_str().parse::<HpkeAead>(), Ok(aead));
        assert_eq!(
            serde_json::to_string(&aead).unwrap(),
            format!("\"{}\"", aead.as_str())
        );
    }
    assert_eq!(HpkeAead::Aes128Gcm.as_str(), "aes-128-gcm");
    assert_eq!(HpkeAead::Aes256Gcm.as_str(), "aes-256-gcm");
    assert_eq!(HpkeAead::ChaCha20Poly1305.as_str(), "chacha20-poly1305");
    assert!(matches!(
        "aes-gcm".parse::<HpkeAead>(),
        Err(DecryptError::UnknownAead(_))
    ));
    for scheme in [Scheme::HpkeX25519, Scheme::EciesSecp256k1] {
        assert_eq!(scheme.as_str().parse::<Scheme>(), Ok(scheme));
        let json = serde_json::to_string(&scheme).unwrap();
        assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), scheme);
    }
    let p = PartialDecryption {
        point: vec![1, 2, 3],
        proof: vec![4; 64],
    };
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<PartialDecryption>(&json).unwrap(), p);
}
