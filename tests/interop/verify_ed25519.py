#!/usr/bin/env python3
"""Verifies keyquorum signatures with pyca/cryptography's Ed25519, an implementation we did not write.

Reads JSON from stdin: {"public_key": hex, "signatures": [{"message": b64, "signature": hex}]}.
Every signature must verify, and must fail for a modified message; exits non-zero otherwise.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def main():
    data = json.load(sys.stdin)
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(data["public_key"]))
    checked = 0
    for entry in data["signatures"]:
        message = base64.b64decode(entry["message"])
        signature = bytes.fromhex(entry["signature"])
        key.verify(signature, message)  # raises InvalidSignature
        try:
            key.verify(signature, message + b"!")
        except InvalidSignature:
            pass
        else:
            sys.exit("a signature verified for a modified message")
        checked += 1
    if checked == 0:
        sys.exit("no signatures to check")
    print(f"{checked} signatures verified by pyca/cryptography")


if __name__ == "__main__":
    main()
