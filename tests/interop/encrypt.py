#!/usr/bin/env python3
"""Encrypts records to a keyquorum public key with unmodified Python libraries.

Usage: encrypt.py hpke HEX_X25519_PUBLIC_KEY  |  encrypt.py ecies HEX_SEC1_PUBLIC_KEY
Prints a JSON list of {"item": <the API's ciphertext item>, "plaintext": <b64>}: pyhpke for
RFC 9180 base mode with every AEAD keyquorum supports, eciespy with its default configuration.

encrypt.py records-hpke KEY | records-ecies KEY: reads metadata records (NDJSON, each with
"video" and "frame") on standard input and prints sealed records as `keyquorum decrypt` reads
them, bound to their place as DESIGN.md §7 and src/records.rs describe.
"""
import base64
import json
import sys


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hpke_items(public_key: bytes):
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    items = []
    for aead_id, name in [
        (AEADId.AES128_GCM, "aes-128-gcm"),
        (AEADId.AES256_GCM, "aes-256-gcm"),
        (AEADId.CHACHA20_POLY1305, "chacha20-poly1305"),
    ]:
        suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, aead_id)
        pk = suite.kem.deserialize_public_key(public_key)
        for frame in range(2):
            info = f"video=cam-3;frame={frame}".encode()
            aad = b"face-crop"
            plaintext = json.dumps({"video": "cam-3", "frame": frame, "aead": name, "boxes": [[1, 2, 3, 4]]}).encode()
            enc, sender = suite.create_sender_context(pk, info=info)
            ciphertext = sender.seal(plaintext, aad=aad)
            items.append({
                "item": {"enc": b64(enc), "ciphertext": b64(ciphertext), "info": b64(info), "aad": b64(aad), "aead": name},
                "plaintext": b64(plaintext),
            })
    return items


def ecies_items(public_key_hex: str):
    import ecies

    items = []
    for plate in ["AB-123-CD", "ZZ-999-ZZ", ""]:
        plaintext = plate.encode()
        ciphertext = ecies.encrypt(public_key_hex, plaintext)
        items.append({"item": {"ciphertext": b64(ciphertext)}, "plaintext": b64(plaintext)})
    return items


def binding(video: str, frame: int) -> bytes:
    v = video.encode()
    return b"keyquorum/record/v1\0" + len(v).to_bytes(4, "big") + v + frame.to_bytes(8, "big")


def sealed_records(scheme: str, key_hex: str):
    out = []
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        video, frame = record["video"], record["frame"]
        place = binding(video, frame)
        if scheme == "records-hpke":
            from pyhpke import AEADId, CipherSuite, KDFId, KEMId

            suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
            pk = suite.kem.deserialize_public_key(bytes.fromhex(key_hex))
            enc, sender = suite.create_sender_context(pk, info=place)
            ciphertext = sender.seal(json.dumps(record).encode())
            out.append({"video": video, "frame": frame, "algorithm": "hpke-x25519",
                        "enc": b64(enc), "ciphertext": b64(ciphertext), "aead": "aes-128-gcm"})
        else:
            import ecies

            wrapped = json.dumps({"binding": place.hex(), "record": record}).encode()
            out.append({"video": video, "frame": frame, "algorithm": "ecies-secp256k1",
                        "ciphertext": b64(ecies.encrypt(key_hex, wrapped))})
    return out


def main():
    scheme, key_hex = sys.argv[1], sys.argv[2]
    if scheme.startswith("records-"):
        for sealed in sealed_records(scheme, key_hex):
            print(json.dumps(sealed))
        return
    if scheme == "hpke":
        items = hpke_items(bytes.fromhex(key_hex))
    elif scheme == "ecies":
        items = ecies_items(key_hex)
    else:
        sys.exit(f"unknown scheme {scheme}")
    json.dump(items, sys.stdout)


if __name__ == "__main__":
    main()
