"""Signed requests and approvals (README, "Access control"; ``api/src/auth.rs``).

A request is signed over the eight lines ``KQ-REQUEST-V2, client, node, METHOD, path,
hex(SHA-256(body)), timestamp_ms, nonce`` joined by ``\\n``; an approval over the nine lines
``KQ-APPROVAL-V1, approver, requester, request nonce, METHOD, path, hex(SHA-256(body)),
timestamp_ms, nonce``. Both travel as ``KQ-Ed25519 client=…,node=…,ts=…,nonce=…,sig=…``
(``node=*`` for approvals). The signing itself is ``cryptography``'s Ed25519.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Optional, Union

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SCHEME = "KQ-Ed25519"
APPROVAL_HEADER = "X-KQ-Approval"
REQUEST_V2 = "KQ-REQUEST-V2"
APPROVAL_V1 = "KQ-APPROVAL-V1"


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    client: str, node: Optional[int], method: str, path: str, body: bytes, timestamp_ms: int, nonce: str
) -> bytes:
    """The bytes a client signs for a request (``node=None`` means ``*``)."""
    node_text = "*" if node is None else str(node)
    return "\n".join(
        [REQUEST_V2, client, node_text, method.upper(), path, _body_hash(body), str(timestamp_ms), nonce]
    ).encode()


def canonical_approval(
    approver: str,
    requester: str,
    request_nonce: str,
    method: str,
    path: str,
    body: bytes,
    timestamp_ms: int,
    nonce: str,
) -> bytes:
    """The bytes an approver signs."""
    return "\n".join(
        [
            APPROVAL_V1,
            approver,
            requester,
            request_nonce,
            method.upper(),
            path,
            _body_hash(body),
            str(timestamp_ms),
            nonce,
        ]
    ).encode()


def random_nonce() -> str:
    """128 random bits as 32 hex characters (nonces are 16-64 of ``[A-Za-z0-9_-]``)."""
    return secrets.token_hex(16)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class RequestSignature:
    """One client's signature over a request or approval, as carried in a header."""

    client: str
    node: Optional[int]
    timestamp_ms: int
    nonce: str
    signature: str

    def to_header(self) -> str:
        node = "*" if self.node is None else str(self.node)
        return f"{SCHEME} client={self.client},node={node},ts={self.timestamp_ms},nonce={self.nonce},sig={self.signature}"

    @classmethod
    def from_header(cls, value: str) -> "RequestSignature":
        if not value.startswith(SCHEME + " "):
            raise ValueError(f"the signature header must start with '{SCHEME} '")
        fields = {}
        for part in value[len(SCHEME) + 1 :].split(","):
            k, sep, v = part.strip().partition("=")
            if not sep:
                raise ValueError(f"'{part}' is not key=value")
            fields[k] = v
        node = fields["node"]
        return cls(
            client=fields["client"],
            node=None if node == "*" else int(node),
            timestamp_ms=int(fields["ts"]),
            nonce=fields["nonce"],
            signature=fields["sig"],
        )


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approver is asked to approve: one request of one requester, named by its
    nonce. Plain data (``to_json``/``from_json``), so it can travel to the approver's machine;
    ``body`` is the exact request body, which the approver may inspect before signing."""

    requester: str
    request_nonce: str
    method: str
    path: str
    body: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "requester": self.requester,
                "request_nonce": self.request_nonce,
                "method": self.method,
                "path": self.path,
                "body": self.body.decode(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "ApprovalRequest":
        d = json.loads(text)
        return cls(d["requester"], d["request_nonce"], d["method"], d["path"], d["body"].encode())


@dataclass(frozen=True)
class Approval:
    """An approver's signature over one :class:`ApprovalRequest`: an ``X-KQ-Approval`` header."""

    signature: RequestSignature

    @property
    def approver(self) -> str:
        return self.signature.client

    def header(self) -> str:
        return self.signature.to_header()


class ClientKey:
    """A client's identity: its registered name and its Ed25519 signing key.

    Key files are the JSON ``{"client", "secret_key", "public_key"}`` (hex) that
    ``keyquorum client keygen`` and ``cluster init`` (``admin.key``) write."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey):
        self.name = name
        self._key = private_key

    def __repr__(self) -> str:
        return f"ClientKey({self.name!r}, {self.public_hex})"

    @classmethod
    def generate(cls, name: str) -> "ClientKey":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_file_text(cls, text: str) -> "ClientKey":
        try:
            d = json.loads(text)
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(d["secret_key"]))
            name = d["client"]
            public = d["public_key"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"not a client key file: {e}") from None
        me = cls(name, key)
        if me.public_hex != public:
            raise ValueError("public_key does not match secret_key")
        return me

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "ClientKey":
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_file_text(f.read())
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}: {e}") from None

    @property
    def public_hex(self) -> str:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def to_file_text(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        secret = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
        return json.dumps({"client": self.name, "secret_key": secret, "public_key": self.public_hex}, indent=2) + "\n"

    def sign_request(
        self,
        node: Optional[int],
        method: str,
        path: str,
        body: bytes,
        timestamp_ms: Optional[int] = None,
        nonce: Optional[str] = None,
    ) -> RequestSignature:
        ts = now_ms() if timestamp_ms is None else timestamp_ms
        nonce = random_nonce() if nonce is None else nonce
        message = canonical_request(self.name, node, method, path, body, ts, nonce)
        return RequestSignature(self.name, node, ts, nonce, self._key.sign(message).hex())

    def approve(self, request: ApprovalRequest) -> Approval:
        """Approves one request (its requester and nonce), now, with a fresh nonce."""
        ts, nonce = now_ms(), random_nonce()
        message = canonical_approval(
            self.name, request.requester, request.request_nonce, request.method, request.path, request.body, ts, nonce
        )
        return Approval(RequestSignature(self.name, None, ts, nonce, self._key.sign(message).hex()))

    # An approver is any callable ``ApprovalRequest -> Approval``; a ClientKey is one.
    __call__ = approve


def approve(key: Union[ClientKey, str, "os.PathLike[str]"], request: ApprovalRequest) -> Approval:
    """Signs an approval of ``request`` with ``key`` (a :class:`ClientKey` or a key file path)."""
    if not isinstance(key, ClientKey):
        key = ClientKey.load(key)
    return key.approve(request)
