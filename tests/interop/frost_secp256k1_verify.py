"""Checks FROST(secp256k1, SHA-256) signatures as RFC 9591 defines them, independently of the
frost crates: the challenge is computed here (RFC 9591 §6.5 H2, RFC 9380 §5.2 hash_to_field with
expand_message_xmd), and the group arithmetic is libsecp256k1's, through coincurve.

stdin: JSON [{"public_key": hex (33-byte SEC1), "message": base64, "signature": hex (R || z)}]
stdout: one line per signature, "valid" or "invalid".
"""
import base64
import hashlib
import json
import sys

from coincurve import PublicKey

CONTEXT = b"FROST-secp256k1-SHA256-v1"
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 with SHA-256."""
    b_in_bytes, s_in_bytes = 32, 64
    ell = -(-length // b_in_bytes)
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(s_in_bytes) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    blocks = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1]))
        blocks.append(hashlib.sha256(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def h2(data: bytes) -> int:
    """RFC 9591 §6.5: hash_to_field(m, 1) over the scalar field, DST = context || "chal"."""
    return int.from_bytes(expand_message_xmd(data, CONTEXT + b"chal", 48), "big") % ORDER


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != 65 or len(public_key) != 33:
        return False
    r_enc, z = signature[:33], int.from_bytes(signature[33:], "big")
    if not 0 < z < ORDER:
        return False
    try:
        r = PublicKey(r_enc)
        y = PublicKey(public_key)
    except ValueError:
        return False
    c = h2(r_enc + public_key + message)
    left = PublicKey.from_secret(z.to_bytes(32, "big"))
    right = PublicKey.combine_keys([r, y.multiply(c.to_bytes(32, "big"))])
    return left.format() == right.format()


def main() -> None:
    for item in json.load(sys.stdin):
        ok = verify(
            bytes.fromhex(item["public_key"]),
            base64.b64decode(item["message"]),
            bytes.fromhex(item["signature"]),
        )
        print("valid" if ok else "invalid")


if __name__ == "__main__":
    main()
