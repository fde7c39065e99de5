"""Wire types of the API, as dataclasses. Each names its schema in ``api/openapi.json``
(``SCHEMA``); the tests check every field against that document. ``raw`` keeps the whole
answer, so fields the node adds later are not lost."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Type, TypeVar

T = TypeVar("T", bound="Wire")


@dataclass
class Wire:
    SCHEMA: ClassVar[str] = ""
    # Fields holding nested wire types: field name -> (type, is_list)
    NESTED: ClassVar[Dict[str, Any]] = {}

    @classmethod
    def from_json(cls: Type[T], d: Dict[str, Any]) -> T:
        kwargs: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw" or f.name not in d:
                continue
            value = d[f.name]
            nested = cls.NESTED.get(f.name)
            if nested is not None and value is not None:
                value = [nested.from_json(v) for v in value] if isinstance(value, list) else nested.from_json(value)
            kwargs[f.name] = value
        obj = cls(**kwargs)
        if any(f.name == "raw" for f in dataclasses.fields(cls)):
            object.__setattr__(obj, "raw", d)
        return obj

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "raw" or value is None:
                continue
            if isinstance(value, Wire):
                value = value.to_json()
            elif isinstance(value, list):
                value = [v.to_json() if isinstance(v, Wire) else v for v in value]
            out[f.name] = value
        return out


def wire_types() -> List[Type[Wire]]:
    """Every wire type of this module (for the OpenAPI consistency test)."""
    return [c for c in globals().values() if isinstance(c, type) and issubclass(c, Wire) and c.SCHEMA]


@dataclass
class Health(Wire):
    SCHEMA: ClassVar[str] = "Health"
    status: str = ""
    node: Optional[int] = None


@dataclass
class Excluded(Wire):
    SCHEMA: ClassVar[str] = "Excluded"
    node: int = 0
    reason: str = ""


@dataclass
class KeyPolicy(Wire):
    """Who may use a key. Lists hold client names or ``"*"``."""

    SCHEMA: ClassVar[str] = "KeyPolicy"
    sign: List[str] = field(default_factory=list)
    decrypt: List[str] = field(default_factory=list)
    read: List[str] = field(default_factory=list)
    manage: List[str] = field(default_factory=list)
    approve: List[str] = field(default_factory=list)
    decrypt_approvals: int = 0
    #: ``"end_to_end"`` makes every holder refuse coordinator-combine decryptions (a request
    #: without ``reply_to``); ``None`` (the node's ``"any"``) allows both.
    decrypt_mode: Optional[str] = None
    #: Decryption requests: one refusal closes the request (with ``False`` refusals are
    #: recorded and approvals still count).
    deny_closes: bool = True
    #: Decryption requests expire this many seconds after creation (1 to 31 536 000).
    request_ttl_seconds: int = 86400


@dataclass
class VerifyingShare(Wire):
    SCHEMA: ClassVar[str] = "VerifyingShare"
    node: int = 0
    verifying_share: str = ""


@dataclass
class KeyInfo(Wire):
    """A key's public data (``GET /v1/keys/{name}``)."""

    SCHEMA: ClassVar[str] = "KeyInfo"
    NESTED: ClassVar[Dict[str, Any]] = {"policy": KeyPolicy, "verifying_shares": VerifyingShare}
    name: str = ""
    algorithm: str = ""
    purpose: str = ""
    threshold: int = 0
    participants: List[int] = field(default_factory=list)
    state: str = ""
    created_at: str = ""
    public_key: str = ""
    group_verifying_key: str = ""
    verifying_shares: List[VerifyingShare] = field(default_factory=list)
    policy: KeyPolicy = field(default_factory=KeyPolicy)
    generation: int = 0
    pending_generation: Optional[int] = None
    retired_at: Optional[str] = None
    ceremony: Optional[Dict[str, Any]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class CreateKeyRequest(Wire):
    SCHEMA: ClassVar[str] = "CreateKeyRequest"
    name: str = ""
    algorithm: str = ""
    threshold: int = 0
    participants: Optional[List[int]] = None
    policy: Optional[KeyPolicy] = None


@dataclass
class KeyList(Wire):
    SCHEMA: ClassVar[str] = "KeyList"
    NESTED: ClassVar[Dict[str, Any]] = {"keys": KeyInfo}
    keys: List[KeyInfo] = field(default_factory=list)
    next: Optional[str] = None


@dataclass
class SignItem(Wire):
    SCHEMA: ClassVar[str] = "SignItem"
    message: str = ""


@dataclass
class SignRequest(Wire):
    SCHEMA: ClassVar[str] = "SignRequest"
    message: Optional[str] = None
    batch: Optional[List[SignItem]] = None


@dataclass
class SignResponse(Wire):
    SCHEMA: ClassVar[str] = "SignResponse"
    NESTED: ClassVar[Dict[str, Any]] = {"excluded": Excluded}
    signature: str = ""
    signers: List[int] = field(default_factory=list)
    excluded: List[Excluded] = field(default_factory=list)
    stats: Optional[Dict[str, Any]] = None


@dataclass
class SignResult(Wire):
    SCHEMA: ClassVar[str] = "SignResult"
    signature: Optional[str] = None
    error: Optional[str] = None


@dataclass
class BatchSignResponse(Wire):
    SCHEMA: ClassVar[str] = "BatchSignResponse"
    NESTED: ClassVar[Dict[str, Any]] = {"results": SignResult, "excluded": Excluded}
    results: List[SignResult] = field(default_factory=list)
    signers: List[int] = field(default_factory=list)
    excluded: List[Excluded] = field(default_factory=list)
    stats: Optional[Dict[str, Any]] = None


@dataclass
class VerifyRequest(Wire):
    SCHEMA: ClassVar[str] = "VerifyRequest"
    message: str = ""
    signature: str = ""


@dataclass
class VerifyResponse(Wire):
    SCHEMA: ClassVar[str] = "VerifyResponse"
    valid: bool = False


@dataclass
class CiphertextItem(Wire):
    SCHEMA: ClassVar[str] = "CiphertextItem"
    ciphertext: str = ""
    enc: Optional[str] = None
    info: Optional[str] = None
    aad: Optional[str] = None
    aead: Optional[str] = None


@dataclass
class DecryptRequest(Wire):
    SCHEMA: ClassVar[str] = "DecryptRequest"
    ciphertexts: List[CiphertextItem] = field(default_factory=list)
    #: End-to-end mode: the requester's ephemeral X25519 public key, hex.
    reply_to: Optional[str] = None
    #: Holders the coordinator must not ask (their partials failed an earlier check).
    exclude: Optional[List[int]] = None


@dataclass
class DecryptResult(Wire):
    SCHEMA: ClassVar[str] = "DecryptResult"
    plaintext: Optional[str] = None
    error: Optional[str] = None


@dataclass
class SealedItem(Wire):
    """A holder's partial and proof for one ciphertext sealed to ``reply_to`` (base64 of
    ``enc ‖ ciphertext``), or why it gave none."""

    SCHEMA: ClassVar[str] = "SealedItem"
    sealed: Optional[str] = None
    error: Optional[str] = None


@dataclass
class HolderPartials(Wire):
    SCHEMA: ClassVar[str] = "HolderPartials"
    NESTED: ClassVar[Dict[str, Any]] = {"items": SealedItem}
    node: int = 0
    items: List[SealedItem] = field(default_factory=list)


@dataclass
class DecryptResponse(Wire):
    SCHEMA: ClassVar[str] = "DecryptResponse"
    NESTED: ClassVar[Dict[str, Any]] = {"results": DecryptResult, "excluded": Excluded,
                                        "sealed_partials": HolderPartials}
    results: List[DecryptResult] = field(default_factory=list)
    contributors: List[int] = field(default_factory=list)
    excluded: List[Excluded] = field(default_factory=list)
    stats: Optional[Dict[str, Any]] = None
    #: ``"end_to_end"`` or ``"coordinator"``.
    mode: Optional[str] = None
    sealed_partials: List[HolderPartials] = field(default_factory=list)


@dataclass
class DecryptReport(Wire):
    """Holders whose end-to-end partials failed this client's checks (``/decrypt/report``)."""

    SCHEMA: ClassVar[str] = "DecryptReport"
    NESTED: ClassVar[Dict[str, Any]] = {"culprits": Excluded}
    request_nonce: str = ""
    culprits: List[Excluded] = field(default_factory=list)


@dataclass
class ReportAccepted(Wire):
    SCHEMA: ClassVar[str] = "ReportAccepted"
    recorded: bool = False


@dataclass
class SealState(Wire):
    SCHEMA: ClassVar[str] = "SealState"
    sealed: bool = False


@dataclass
class UnsealRequest(Wire):
    SCHEMA: ClassVar[str] = "UnsealRequest"
    passphrase: str = ""


@dataclass
class Status(Wire):
    SCHEMA: ClassVar[str] = "Status"
    node: int = 0
    name: str = ""
    sealed: bool = False
    keys: int = 0
    peers: List[Dict[str, Any]] = field(default_factory=list)
    version: str = ""
    admin_caught_up: Optional[bool] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ClientInfo(Wire):
    SCHEMA: ClassVar[str] = "ClientInfo"
    name: str = ""
    public_key: str = ""
    roles: List[str] = field(default_factory=list)


@dataclass
class ClientList(Wire):
    SCHEMA: ClassVar[str] = "ClientList"
    NESTED: ClassVar[Dict[str, Any]] = {"clients": ClientInfo}
    clients: List[ClientInfo] = field(default_factory=list)
    admin_seq: int = 0


@dataclass
class ChangeApplied(Wire):
    SCHEMA: ClassVar[str] = "ChangeApplied"
    admin_seq: int = 0
    nodes: List[int] = field(default_factory=list)


@dataclass
class ErrorBody(Wire):
    SCHEMA: ClassVar[str] = "ErrorBody"
    NESTED: ClassVar[Dict[str, Any]] = {"culprits": Excluded}
    error: str = ""
    message: str = ""
    culprits: List[Excluded] = field(default_factory=list)


@dataclass
class CreateDecryptRequest(Wire):
    """``POST /v1/keys/{name}/decrypt-requests``: each record is a decrypt item with its
    ``video`` and ``frame`` labels where known (shown to approvers, not checked)."""

    SCHEMA: ClassVar[str] = "CreateDecryptRequest"
    ciphertexts: List[Dict[str, Any]] = field(default_factory=list)
    reason: str = ""


@dataclass
class DecryptRequestCreated(Wire):
    SCHEMA: ClassVar[str] = "DecryptRequestCreated"
    id: str = ""
    #: ``"pending"`` (``"approved"`` when the key's policy needs no approvals).
    state: str = ""
    approvals_needed: int = 0
    expires_at: str = ""
    content_sha256: str = ""


@dataclass
class Review(Wire):
    """One approval or refusal of a decryption request."""

    SCHEMA: ClassVar[str] = "Review"
    client: str = ""
    comment: str = ""
    #: RFC 3339, UTC: when the reviewer signed.
    at: str = ""
    #: The admin log entry that recorded it.
    admin_seq: int = 0


@dataclass
class RecordLabel(Wire):
    """The video and frame of one requested record, where the requester sent them."""

    SCHEMA: ClassVar[str] = "RecordLabel"
    index: int = 0
    video: Optional[str] = None
    frame: Optional[int] = None
    #: SHA-256 of the ciphertext item, as the audit trail names it.
    sha256: str = ""


@dataclass
class DecryptRequestInfo(Wire):
    """A decryption request as the answering node holds it (``GET /v1/decrypt-requests/{id}``).
    ``state`` is ``pending``, ``approved``, ``denied``, ``expired`` or ``executed``."""

    SCHEMA: ClassVar[str] = "DecryptRequestInfo"
    NESTED: ClassVar[Dict[str, Any]] = {"labels": RecordLabel, "approvals": Review, "refusals": Review,
                                        "ciphertexts": CiphertextItem}
    id: str = ""
    key: str = ""
    requester: str = ""
    reason: str = ""
    state: str = ""
    records: int = 0
    labels: List[RecordLabel] = field(default_factory=list)
    approvals_needed: int = 0
    #: Who may approve, from the key's policy when the request was created.
    approvers: List[str] = field(default_factory=list)
    deny_closes: bool = True
    approvals: List[Review] = field(default_factory=list)
    refusals: List[Review] = field(default_factory=list)
    created_at: str = ""
    expires_at: str = ""
    content_sha256: str = ""
    executed_at: Optional[str] = None
    #: The records themselves (only in ``GET /v1/decrypt-requests/{id}``, not in lists).
    ciphertexts: List[CiphertextItem] = field(default_factory=list)


@dataclass
class DecryptRequestList(Wire):
    SCHEMA: ClassVar[str] = "DecryptRequestList"
    NESTED: ClassVar[Dict[str, Any]] = {"requests": DecryptRequestInfo}
    requests: List[DecryptRequestInfo] = field(default_factory=list)


@dataclass
class ReviewDecryptRequest(Wire):
    """``POST /v1/decrypt-requests/{id}/approve`` and ``/deny``."""

    SCHEMA: ClassVar[str] = "ReviewDecryptRequest"
    comment: str = ""
    #: The content hash the reviewer read: the review counts only for exactly that content.
    content_sha256: str = ""


@dataclass
class ExecuteDecryptRequest(Wire):
    """``POST /v1/decrypt-requests/{id}/execute``: end to end with ``reply_to``."""

    SCHEMA: ClassVar[str] = "ExecuteDecryptRequest"
    reply_to: Optional[str] = None
    exclude: Optional[List[int]] = None


@dataclass
class Signature:
    """A signature from ``sign``: hex ``signature``, its raw ``bytes``, who signed and who was
    excluded (with reasons)."""

    signature: str
    signers: List[int]
    excluded: List[Excluded]

    @property
    def bytes(self) -> bytes:
        return bytes.fromhex(self.signature)

    def __str__(self) -> str:
        return self.signature
