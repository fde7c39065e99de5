"""End-to-end decryption, requester side (DESIGN.md §6 "who learns the plaintext";
``keyshares/src/decrypt/{reply,requester}.rs``): every holder seals its partial and DLEQ proof
to a fresh X25519 key of this client (``reply_to``), bound to the key, this client, the signed
request's nonce, the holder and the item; the coordinator relays what it cannot read. Here each
sealed partial is opened, its proof checked against the holder's verifying share, t valid
partials per item combined and the item opened. Holders whose partials fail, or who refuse an
item whose ephemeral point is valid, are named; a relay that mangles the answer's shape is
refused as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from . import dleq
from .combine import Ciphertext, OpenError, combine_and_open, ephemeral_point, group_of
from .errors import KeyquorumError
from .groups import PointError
from .records import unb64
from .types import HolderPartials, KeyInfo

#: HPKE ``info`` of every sealed message between keyquorum parties (``keyshares/src/seal.rs``).
SEAL_INFO = b"keyquorum/seal/v1"


def reply_context(key: str, client: str, nonce: str, holder: int, item: int) -> bytes:
    """What a sealed partial is bound to (its AAD): the key, the requesting client and the
    nonce of its signed request, the holder, and the item's index in the request."""
    return f"keyquorum/decrypt/reply/v1|{key}|{client}|{nonce}|{holder}|{item}".encode()


class ReplyKey:
    """A fresh X25519 key pair for one request: holders seal their partials to ``public``.
    The seal is RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    ChaCha20Poly1305 (pyhpke), sealed = ``enc ‖ ciphertext``."""

    def __init__(self) -> None:
        from pyhpke import AEADId, CipherSuite, KDFId, KEMId

        secret = X25519PrivateKey.generate()
        self.public = secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
        self._secret = self._suite.kem.deserialize_private_key(
            secret.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    def __repr__(self) -> str:
        return f"ReplyKey(public={self.public.hex()})"

    def seal(self, context: bytes, plaintext: bytes) -> bytes:
        """Seals to this key as a holder does (for tests of the requester's checks)."""
        suite = self._suite
        enc, sender = suite.create_sender_context(suite.kem.deserialize_public_key(self.public), info=SEAL_INFO)
        return bytes(enc) + bytes(sender.seal(plaintext, aad=context))

    def open(self, context: bytes, sealed: bytes) -> Optional[bytes]:
        """The plaintext of a message sealed to this key under ``context``, or ``None``."""
        if len(sealed) < 32:
            return None
        try:
            recipient = self._suite.create_recipient_context(sealed[:32], self._secret, info=SEAL_INFO)
            return bytes(recipient.open(sealed[32:], aad=context))
        except Exception:  # noqa: BLE001 - pyhpke's or the backend's error: it does not open
            return None


@dataclass
class KeyView:
    """A decryption key's public data, as ``GET /v1/keys/{name}`` gives it."""

    algorithm: str
    group_key: bytes
    threshold: int
    verifying_shares: Dict[int, bytes]

    @classmethod
    def of(cls, info: KeyInfo) -> "KeyView":
        try:
            return cls(info.algorithm, bytes.fromhex(info.group_verifying_key), info.threshold,
                       {v.node: bytes.fromhex(v.verifying_share) for v in info.verifying_shares})
        except ValueError as e:
            raise ValueError(f"key {info.name}: invalid hex in its public data: {e}") from None


class RelayError(KeyquorumError, ValueError):
    """The relayed answer is malformed as a whole (a holder twice, a non-holder, a wrong item
    count, plaintexts instead of sealed partials): only the coordinator can have done that."""


@dataclass
class Opened:
    """The outcome of one end-to-end answer."""

    #: One per ciphertext: the plaintext, or why it could not be opened.
    results: List[Union[bytes, str]]
    #: Holders whose partials were combined, for at least one item.
    contributors: List[int]
    #: Holders that sent an invalid partial or refused a valid item, with the first reason.
    culprits: Dict[int, str] = field(default_factory=dict)
    #: Some item had fewer than t valid partials: ask again, excluding the culprits.
    short: bool = False


def _check_shape(view: KeyView, items: int, answers: Sequence[HolderPartials]) -> None:
    seen = set()
    for answer in answers:
        if answer.node in seen:
            raise RelayError(f"the answer names holder {answer.node} twice")
        seen.add(answer.node)
        if answer.node not in view.verifying_shares:
            raise RelayError(f"the answer names node {answer.node}, which holds no share of this key")
        if len(answer.items) != items:
            raise RelayError(f"holder {answer.node} has {len(answer.items)} items for {items} ciphertexts")


def open_partial(view: KeyView, plain: bytes) -> tuple[bytes, bytes]:
    """(proof, point) of an opened partial: the proof first, then the point."""
    n = dleq.proof_len(group_of(view.algorithm))
    if len(plain) <= n:
        raise ValueError("the sealed partial is too short to hold a proof and a point")
    return plain[:n], plain[n:]


def check_partial(view: KeyView, reply: ReplyKey, context: bytes, node: int, e: bytes, sealed: bytes) -> bytes:
    """The verified partial point D of one holder for one item, or ``ValueError`` naming why."""
    plain = reply.open(context, sealed)
    if plain is None:
        raise ValueError("sealed partial does not open with the reply key (tampered, or sealed to another key or request)")
    proof, point = open_partial(view, plain)
    group = group_of(view.algorithm)
    share = view.verifying_shares.get(node)
    if share is None:
        raise ValueError("has no verifying share for this key")
    try:
        y = group.decode(share, "verifying share")
        d = group.decode(point, "partial decryption point")
        dleq.verify(group, y, e, d, proof)
    except (PointError, dleq.ProofError) as err:
        raise ValueError(f"invalid partial decryption: {err}") from None
    return d


def open_answers(
    view: KeyView,
    key: str,
    client: str,
    nonce: str,
    reply: ReplyKey,
    ciphertexts: Sequence[Union[Ciphertext, str]],
    answers: Sequence[HolderPartials],
) -> Opened:
    """Checks and combines the relayed ``answers`` for ``ciphertexts`` (each parsed, or why
    not); raises :class:`RelayError` for an answer of the wrong shape."""
    _check_shape(view, len(ciphertexts), answers)
    t = view.threshold
    culprits: Dict[int, str] = {}
    contributors: set[int] = set()
    short = False
    results: List[Union[bytes, str]] = []
    for i, ct in enumerate(ciphertexts):
        if isinstance(ct, str):
            results.append(ct)
            continue
        if ct.algorithm != view.algorithm:
            results.append(f"not a {view.algorithm} ciphertext")
            continue
        # An invalid ephemeral point is refused by every honest holder: nobody to blame.
        try:
            e = ephemeral_point(ct)
        except PointError as err:
            results.append(str(err))
            continue
        valid: Dict[int, bytes] = {}
        for answer in answers:
            if answer.node in culprits:
                continue
            item = answer.items[i]
            context = reply_context(key, client, nonce, answer.node, i)
            if item.sealed is None:
                culprits[answer.node] = f"refused item {i}, a valid ciphertext: {item.error or 'empty item'}"
                continue
            try:
                sealed = unb64(item.sealed)
            except ValueError:
                sealed = b""
            try:
                valid[answer.node] = check_partial(view, reply, context, answer.node, e, sealed)
            except ValueError as err:
                culprits[answer.node] = f"item {i}: {err}"
        # A holder found bad on a later item is not combined on this one either.
        valid = {n: d for n, d in valid.items() if n not in culprits}
        if len(valid) < t:
            short = True
            results.append(f"only {len(valid)} of the {t} valid partial decryptions needed")
            continue
        chosen = {n: valid[n] for n in sorted(valid)[:t]}
        contributors.update(chosen)
        try:
            results.append(combine_and_open(view.group_key, chosen, ct))
        except OpenError as err:
            results.append(str(err))
    return Opened(results, sorted(contributors), culprits, short)
