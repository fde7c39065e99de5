"""The requester's combination (DESIGN.md §6; ``keyshares/src/decrypt/{lagrange,threshold,
hpke_schedule,ecies}.rs``): s·E = Σ λ_i·D_i over t verified partials, then the standard key
schedule on that DH output — RFC 9180's DHKEM(X25519) and key schedule (pyhpke's KEM and
labeled HKDF, its AEADs), or eciespy's KDF and AES-256-GCM — and the AEAD opens.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Union

from .groups import ED25519, SECP256K1, Group, PointError
from .records import AEADS, ECIES, HPKE, unb64
from .types import CiphertextItem

#: eciespy's default format: 65-byte ephemeral key ‖ 16-byte nonce ‖ 16-byte tag ‖ body.
ECIES_HEADER = 65 + 16 + 16
#: The AEAD tag length of every HPKE AEAD here.
HPKE_TAG = 16


class OpenError(ValueError):
    """A ciphertext that does not open with the combined secret."""


@dataclass
class Ciphertext:
    """One ciphertext item read for a key of ``algorithm``; ``ephemeral`` is the point the
    partials are computed on (``enc``, or ECIES's 65-byte ephemeral key)."""

    algorithm: str
    ephemeral: bytes
    body: bytes
    info: bytes = b""
    aad: bytes = b""
    aead: str = "aes-128-gcm"


def parse_item(algorithm: str, item: CiphertextItem) -> Union[Ciphertext, str]:
    """An API item read as the node reads it (``api/src/ciphertexts.rs``), or why it cannot be."""
    try:
        body = unb64(item.ciphertext)
    except ValueError as e:
        return f"ciphertext: {e}"
    if algorithm == HPKE:
        if item.enc is None:
            return "enc is required for hpke-x25519"
        try:
            enc = unb64(item.enc)
            info = unb64(item.info) if item.info is not None else b""
            aad = unb64(item.aad) if item.aad is not None else b""
        except ValueError as e:
            return f"invalid base64: {e}"
        aead = item.aead or "aes-128-gcm"
        if aead not in AEADS:
            return f"unknown AEAD {aead[:32]!r}"
        if len(enc) != 32:
            return f"enc: expected 32 bytes, got {len(enc)}"
        if len(body) < HPKE_TAG:
            return f"ciphertext truncated: need at least {HPKE_TAG} bytes, got {len(body)}"
        return Ciphertext(HPKE, enc, body, info, aad, aead)
    if algorithm == ECIES:
        if item.enc is not None or item.info is not None or item.aad is not None or item.aead is not None:
            return 'ecies-secp256k1 items take only "ciphertext" (eciespy\'s format has no enc, info, aad or aead)'
        if len(body) < ECIES_HEADER:
            return f"ciphertext truncated: need at least {ECIES_HEADER} bytes, got {len(body)}"
        return Ciphertext(ECIES, body[:65], body)
    return f"{algorithm} is not a decryption algorithm"


def group_of(algorithm: str) -> Group:
    if algorithm == HPKE:
        return ED25519
    if algorithm == ECIES:
        return SECP256K1
    raise ValueError(f"{algorithm} is not a decryption algorithm")


def ephemeral_point(ct: Ciphertext) -> bytes:
    """The validated point E of a ciphertext: what every honest holder accepts
    (:class:`PointError` otherwise)."""
    if ct.algorithm == HPKE:
        return ED25519.lift_enc(ct.ephemeral)
    return SECP256K1.decode(ct.ephemeral, "ephemeral public key")


def lagrange_at_zero(ids: List[int], order: int) -> List[int]:
    """λ_i = Π_{j≠i} j / (j − i) mod ``order`` for each identifier, in order."""
    if len(set(ids)) != len(ids) or 0 in ids:
        raise ValueError("identifiers must be distinct and non-zero")
    out = []
    for i in ids:
        num, den = 1, 1
        for j in ids:
            if j != i:
                num = num * j % order
                den = den * (j - i) % order
        out.append(num * pow(den, -1, order) % order)
    return out


def combine(group: Group, partials: Dict[int, bytes]) -> bytes:
    """Σ λ_i·D_i over exactly the given holders (verified partials, keyed by node id)."""
    ids = sorted(partials)
    total = group.mul_base(0)
    for i, lam in zip(ids, lagrange_at_zero(ids, group.ORDER)):
        total = group.add(total, group.mul(partials[i], lam))
    return total


def open_hpke(dh: bytes, pk_r: bytes, ct: Ciphertext) -> bytes:
    """RFC 9180 base mode from the DH output instead of a private key: Decap's
    ExtractAndExpand (§4.1, kem_context = enc ‖ pkRm), KeySchedule (§5.1, empty psk and
    psk_id), then open with sequence number 0 (nonce = base_nonce, §5.2)."""
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId
    from pyhpke.kdf import KDF
    from pyhpke.kem import KEM

    if dh == bytes(32):  # RFC 9180 §7.1.4: an all-zero X25519 output is refused
        raise OpenError("degenerate shared secret")
    aead_id = {"aes-128-gcm": AEADId.AES128_GCM, "aes-256-gcm": AEADId.AES256_GCM,
               "chacha20-poly1305": AEADId.CHACHA20_POLY1305}[ct.aead]
    kem_id, kdf_id = KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256
    shared_secret = KEM(kem_id).extract_and_expand(dh, ct.ephemeral + pk_r, 32)
    suite = CipherSuite.new(kem_id, kdf_id, aead_id)
    kdf = KDF(kdf_id, b"HPKE" + struct.pack(">HHH", kem_id.value, kdf_id.value, aead_id.value))
    context = b"\x00" + kdf.labeled_extract(b"", b"psk_id_hash", b"") + kdf.labeled_extract(b"", b"info_hash", ct.info)
    secret = kdf.labeled_extract(shared_secret, b"secret", b"")
    key = kdf.labeled_expand(secret, b"key", context, suite.aead.key_size)
    base_nonce = kdf.labeled_expand(secret, b"base_nonce", context, suite.aead.nonce_size)
    try:
        return bytes(suite.aead.import_key(key).open(ct.body, base_nonce, ct.aad))
    except Exception:  # noqa: BLE001 - pyhpke raises its own errors or the backend's
        raise OpenError("the AEAD does not open: wrong key or tampered ciphertext") from None


def open_ecies(shared_point: bytes, ct: Ciphertext) -> bytes:
    """eciespy's decryption after its ECDH: HKDF-SHA256 of ephemeral ‖ shared (uncompressed),
    AES-256-GCM with its 16-byte nonce."""
    from ecies.utils.hash import derive_key
    from ecies.utils.symmetric import sym_decrypt

    shared = SECP256K1.uncompressed(shared_point, "the combined point")
    key = derive_key(ct.ephemeral + shared)
    try:
        return bytes(sym_decrypt(key, ct.body[65:], "aes-256-gcm", 16))
    except ValueError:
        raise OpenError("the AEAD does not open: wrong key or tampered ciphertext") from None


def combine_and_open(group_key: bytes, partials: Dict[int, bytes], ct: Ciphertext) -> bytes:
    """Combines verified partials and opens ``ct``; ``group_key`` is the FROST group verifying
    key (Edwards point or SEC1). :class:`OpenError` when it does not open (fewer than t
    partials, partials of another ciphertext, a tampered ciphertext)."""
    try:
        if ct.algorithm == HPKE:
            pk_r = ED25519.to_x25519(ED25519.decode(group_key, "group public key"), "group public key")
            dh = ED25519.to_x25519(combine(ED25519, partials), "the combined point")
            return open_hpke(dh, pk_r, ct)
        return open_ecies(combine(SECP256K1, partials), ct)
    except PointError as e:
        raise OpenError(str(e)) from None
