"""Who combines the partial decryptions (DESIGN.md §6): this client (end to end, the default
when the key and the node allow it) or the coordinating node.

A :class:`DecryptMode` starts one :class:`DecryptRound` per request: the round gives the
request's body and reads the node's answer, given the nonce the request was signed with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from .combine import parse_item
from .e2e import KeyView, RelayError, ReplyKey, open_answers
from .records import ECIES, HPKE, unb64
from .types import CiphertextItem, DecryptRequest, DecryptResponse, Excluded, KeyInfo

END_TO_END = "end_to_end"
COORDINATOR = "coordinator"


@dataclass
class Decrypted:
    """The outcome of a decryption request."""

    #: One per ciphertext, in order: the plaintext bytes, or why it did not open.
    results: List[Union[bytes, str]]
    #: Holders whose partials were combined.
    contributors: List[int] = field(default_factory=list)
    #: Nodes left out, with reasons: by the coordinator, and (end to end) by this client's
    #: checks of the proofs.
    excluded: List[Excluded] = field(default_factory=list)
    #: ``"end_to_end"`` or ``"coordinator"``: who combined.
    mode: str = COORDINATOR
    #: End to end: holders whose partials failed this client's checks (reported to the node).
    culprits: List[Excluded] = field(default_factory=list)
    #: End to end: some item lacked t valid partials (worth asking again without the culprits).
    short: bool = False


class DecryptRound:
    """One request of a decryption: its body, then the reading of its answer."""

    #: The decrypt request's JSON body.
    body: Dict[str, Any]
    #: The key's public data the round reads the answer with (end to end).
    key: Optional[KeyInfo] = None

    def finish(self, answer: Any, nonce: str, key: Optional[KeyInfo] = None) -> Decrypted:
        """Reads the node's ``answer`` to the request signed with ``nonce``; ``key`` (fresher
        public data of the key) replaces the one the round began with."""
        raise NotImplementedError


class DecryptMode:
    """A way to decrypt: :class:`EndToEnd`, :class:`CoordinatorCombines`, or :class:`Auto`
    (the default) which picks end to end whenever the key and the node support it."""

    def begin(self, key: KeyInfo, items: Sequence[CiphertextItem], client: Optional[str],
              exclude: Sequence[int] = ()) -> DecryptRound:
        """Starts a round for ``items`` on ``key``; ``client`` is the signing client's name
        (``None`` without a client key); ``exclude``: holders the coordinator must not ask."""
        raise NotImplementedError


class _CoordinatorRound(DecryptRound):
    def __init__(self, items: Sequence[CiphertextItem]):
        self.count = len(items)
        self.body = DecryptRequest(ciphertexts=list(items)).to_json()

    def finish(self, answer: Any, nonce: str, key: Optional[KeyInfo] = None) -> Decrypted:
        reply = DecryptResponse.from_json(answer)
        out: List[Union[bytes, str]] = []
        for i in range(self.count):
            r = reply.results[i] if i < len(reply.results) else None
            if r is not None and r.plaintext is not None:
                try:
                    out.append(unb64(r.plaintext))
                except ValueError:
                    out.append("the node sent invalid base64")
            else:
                out.append((r.error if r is not None else None) or "no plaintext in the answer")
        return Decrypted(out, reply.contributors, reply.excluded, COORDINATOR)


class CoordinatorCombines(DecryptMode):
    """The coordinating node checks and combines the partials and answers plaintexts: it
    learns them. For keys whose policy allows it, when this client cannot combine."""

    def begin(self, key: KeyInfo, items: Sequence[CiphertextItem], client: Optional[str],
              exclude: Sequence[int] = ()) -> DecryptRound:
        return _CoordinatorRound(items)


class _EndToEndRound(DecryptRound):
    def __init__(self, key: KeyInfo, items: Sequence[CiphertextItem], client: str, exclude: Sequence[int]):
        self.key = key
        self._began = key
        self.client = client
        self.reply = ReplyKey()
        self.ciphertexts = [parse_item(key.algorithm, item) for item in items]
        self.body = DecryptRequest(ciphertexts=list(items), reply_to=self.reply.public.hex(),
                                   exclude=sorted(set(exclude)) or None).to_json()

    def finish(self, answer: Any, nonce: str, key: Optional[KeyInfo] = None) -> Decrypted:
        key = key or self._began
        reply = DecryptResponse.from_json(answer)
        if reply.mode not in (None, END_TO_END) or (not reply.sealed_partials and reply.results):
            raise RelayError("the node answered an end-to-end request with plaintexts of its own")
        opened = open_answers(KeyView.of(key), key.name, self.client, nonce, self.reply,
                              self.ciphertexts, reply.sealed_partials)
        culprits = [Excluded(node, reason) for node, reason in sorted(opened.culprits.items())]
        return Decrypted(opened.results, opened.contributors, list(reply.excluded) + culprits,
                         END_TO_END, culprits, opened.short)


class EndToEnd(DecryptMode):
    """Holders seal their partials and DLEQ proofs to a fresh key of this client; it checks
    every proof against the key's verifying shares, combines t valid partials and opens the
    ciphertexts: no node sees a plaintext. Needs a client key (the seals are bound to the
    signing client and the request's nonce)."""

    def begin(self, key: KeyInfo, items: Sequence[CiphertextItem], client: Optional[str],
              exclude: Sequence[int] = ()) -> DecryptRound:
        if client is None:
            raise ValueError("end-to-end decryption needs a client key to sign with")
        if key.algorithm not in (HPKE, ECIES):
            raise ValueError(f"key {key.name} is a {key.algorithm} key, not a decryption key")
        return _EndToEndRound(key, items, client, exclude)


class Auto(DecryptMode):
    """End to end when this client signs its requests and the node publishes what the checks
    need (the group key and every holder's verifying share); else the coordinator combines.
    A key whose policy demands end to end always goes end to end."""

    def begin(self, key: KeyInfo, items: Sequence[CiphertextItem], client: Optional[str],
              exclude: Sequence[int] = ()) -> DecryptRound:
        holders = {v.node for v in key.verifying_shares}
        supported = (key.algorithm in (HPKE, ECIES) and bool(key.group_verifying_key)
                     and bool(key.participants) and set(key.participants) <= holders)
        if key.policy.decrypt_mode == END_TO_END or (client is not None and supported):
            return EndToEnd().begin(key, items, client, exclude)
        return CoordinatorCombines().begin(key, items, client, exclude)
