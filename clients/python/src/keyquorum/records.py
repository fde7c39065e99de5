"""Sealed anonymisation records, byte-compatible with ``keyquorum encrypt``/``decrypt``
(``src/records.rs``).

A record is a JSON object with ``"video"`` (string) and ``"frame"`` (non-negative integer).
It is bound to that place by the bytes ``b"keyquorum/record/v1\\0" ‖ u32be(len(video)) ‖ video
‖ u64be(frame)``: as HPKE ``info`` (RFC 9180 base mode, pyhpke), or for ECIES (eciespy, which
has no info or AAD) inside the plaintext as ``{"binding": hex, "record": record}``, checked
after decryption. A sealed record is ``{"video", "frame", "algorithm", "enc"?, "ciphertext",
"aead"?}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .types import CiphertextItem, KeyInfo

HPKE = "hpke-x25519"
ECIES = "ecies-secp256k1"
AEADS = ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")


class RecordError(ValueError):
    """A record that cannot be sealed or opened (it names why)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def binding(video: str, frame: int) -> bytes:
    """The bytes that bind a record to its video and frame."""
    v = video.encode()
    return b"keyquorum/record/v1\0" + struct.pack(">I", len(v)) + v + struct.pack(">Q", frame)


def place_of(record: Any) -> Tuple[str, int]:
    if not isinstance(record, Mapping):
        raise RecordError("a record must be a JSON object")
    video, frame = record.get("video"), record.get("frame")
    if not isinstance(video, str):
        raise RecordError('the record has no "video" string')
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < 2**64:
        raise RecordError('the record has no non-negative integer "frame"')
    return video, frame


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _suite(aead: str) -> Any:
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    ids = {"aes-128-gcm": AEADId.AES128_GCM, "aes-256-gcm": AEADId.AES256_GCM,
           "chacha20-poly1305": AEADId.CHACHA20_POLY1305}
    if aead not in ids:
        raise RecordError(f"unknown aead {aead!r}; one of {', '.join(AEADS)}")
    return CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, ids[aead])


PublicKey = Union[KeyInfo, Mapping[str, Any], str, bytes, Tuple[str, Union[str, bytes]]]


def resolve_public_key(key: PublicKey) -> Tuple[str, bytes]:
    """(algorithm, public key bytes) from a :class:`KeyInfo`, a key's JSON, an
    ``(algorithm, key)`` pair, or a bare hex/bytes key (32 bytes: hpke-x25519, 33 or 65:
    ecies-secp256k1 — as ``keyquorum encrypt --public-key``)."""
    if isinstance(key, KeyInfo):
        algorithm, pk = key.algorithm, bytes.fromhex(key.public_key)
    elif isinstance(key, Mapping):
        algorithm, pk = str(key["algorithm"]), bytes.fromhex(str(key["public_key"]))
    elif isinstance(key, tuple):
        algorithm, raw = key
        pk = bytes.fromhex(raw) if isinstance(raw, str) else bytes(raw)
    else:
        pk = bytes.fromhex(key.strip()) if isinstance(key, str) else bytes(key)
        algorithm = {32: HPKE, 33: ECIES, 65: ECIES}.get(len(pk), "")
        if not algorithm:
            raise RecordError(f"a {len(pk)}-byte public key fits no decryption algorithm")
    if algorithm not in (HPKE, ECIES):
        raise RecordError(f"{algorithm} is a signing algorithm; records need {HPKE} or {ECIES}")
    return algorithm, pk


def seal_record(key: PublicKey, record: Mapping[str, Any], aead: str = "aes-128-gcm") -> Dict[str, Any]:
    """Seals one record offline to a key's public key; see :func:`seal_records`."""
    algorithm, pk = resolve_public_key(key)
    video, frame = place_of(record)
    place = binding(video, frame)
    if algorithm == HPKE:
        suite = _suite(aead)
        enc, sender = suite.create_sender_context(suite.kem.deserialize_public_key(pk), info=place)
        ciphertext = sender.seal(_compact(dict(record)), aad=b"")
        return {"video": video, "frame": frame, "algorithm": HPKE, "enc": b64(enc),
                "ciphertext": b64(ciphertext), "aead": aead}
    import ecies

    wrapped = {"binding": place.hex(), "record": dict(record)}
    blob = ecies.encrypt(pk.hex(), _compact(wrapped))
    return {"video": video, "frame": frame, "algorithm": ECIES, "ciphertext": b64(blob)}


def seal_records(
    key: PublicKey, records: Iterable[Mapping[str, Any]], aead: str = "aes-128-gcm"
) -> List[Dict[str, Any]]:
    """Seals detection records offline, binding each to its video and frame exactly like
    ``keyquorum encrypt``: the output opens with ``keyquorum decrypt`` and
    :meth:`keyquorum.Client.open_records`."""
    return [seal_record(key, r, aead) for r in records]


def ciphertext_item(sealed: Mapping[str, Any]) -> CiphertextItem:
    """The API item that decrypts a sealed record, with the binding rebuilt from its place;
    raises :class:`RecordError` for a record the node would refuse as malformed."""
    video, frame = place_of(sealed)
    algorithm = sealed.get("algorithm")
    try:
        ciphertext = unb64(str(sealed.get("ciphertext", "")))
        enc = unb64(str(sealed["enc"])) if sealed.get("enc") is not None else None
    except (binascii.Error, ValueError) as e:
        raise RecordError(f"invalid base64: {e}") from None
    if algorithm == HPKE:
        aead = sealed.get("aead") or "aes-128-gcm"
        if aead not in AEADS:
            raise RecordError(f"unknown aead {aead!r}")
        if enc is None or len(enc) != 32:
            raise RecordError("hpke-x25519 records need a 32-byte enc")
        return CiphertextItem(ciphertext=b64(ciphertext), enc=b64(enc), info=b64(binding(video, frame)),
                              aead=sealed.get("aead"))
    if algorithm == ECIES:
        if enc is not None or sealed.get("aead") is not None:
            raise RecordError("ecies-secp256k1 records take no enc or aead")
        if len(ciphertext) < 65 + 16 + 16:
            raise RecordError("the ECIES ciphertext is too short")
        return CiphertextItem(ciphertext=b64(ciphertext))
    raise RecordError(f"unknown record algorithm {algorithm!r}")


def open_plaintext(sealed: Mapping[str, Any], plaintext: bytes) -> Dict[str, Any]:
    """The record from a decrypted plaintext, after checking it belongs where it was found."""
    try:
        value = json.loads(plaintext)
    except ValueError as e:
        raise RecordError(f"decrypted record is not JSON: {e}") from None
    place = place_of(sealed)
    if sealed.get("algorithm") == HPKE:
        record = value
    else:
        if not isinstance(value, dict) or value.get("binding") != binding(*place).hex():
            raise RecordError("the record was sealed for another video or frame")
        record = value.get("record")
    if place_of(record) != place:
        raise RecordError("the record was sealed for another video or frame")
    return dict(record)


@dataclass
class RecordResult:
    """The outcome of one sealed record: ``record`` when it opened, else ``error``."""

    index: int
    sealed: Mapping[str, Any]
    record: Optional[Dict[str, Any]] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.record is not None
