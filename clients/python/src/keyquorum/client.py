"""The client: signed requests, failover between nodes, keys, signing, records, approvals."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

import requests

from . import errors as E
from .auth import Approval, ApprovalRequest, ClientKey, RequestSignature
from .records import (
    RecordError,
    RecordResult,
    HPKE,
    b64,
    binding,
    ciphertext_item,
    open_plaintext,
)
from .modes import Auto, CoordinatorCombines, DecryptMode, DecryptRound, Decrypted, EndToEnd
from .types import (
    BatchSignResponse,
    ChangeApplied,
    ClientInfo,
    ClientList,
    CiphertextItem,
    CreateDecryptRequest,
    CreateKeyRequest,
    DecryptReport,
    DecryptRequestCreated,
    DecryptRequestInfo,
    DecryptRequestList,
    ExecuteDecryptRequest,
    ReviewDecryptRequest,
    Excluded,
    Health,
    KeyInfo,
    KeyList,
    KeyPolicy,
    ReportAccepted,
    SealState,
    Signature,
    SignItem,
    SignRequest,
    SignResponse,
    Status,
    UnsealRequest,
    VerifyRequest,
    VerifyResponse,
)

PathLike = Union[str, "os.PathLike[str]"]
#: Anything that turns an :class:`ApprovalRequest` into an :class:`Approval`: a
#: :class:`ClientKey` (approver's key at hand), or a function that asks an approver elsewhere.
Approver = Callable[[ApprovalRequest], Approval]
Progress = Callable[[int, int], None]

#: Every (method, path) this client calls; the tests check them against api/openapi.json.
PATHS = [
    ("get", "/v1/health"), ("get", "/v1/status"), ("post", "/v1/sys/seal"), ("post", "/v1/sys/unseal"),
    ("get", "/v1/clients"), ("post", "/v1/clients"), ("delete", "/v1/clients/{name}"),
    ("post", "/v1/keys"), ("get", "/v1/keys"), ("get", "/v1/keys/{name}"), ("delete", "/v1/keys/{name}"),
    ("post", "/v1/keys/{name}/refresh"), ("put", "/v1/keys/{name}/policy"), ("post", "/v1/keys/{name}/sign"),
    ("post", "/v1/keys/{name}/verify"), ("post", "/v1/keys/{name}/decrypt"),
    ("post", "/v1/keys/{name}/decrypt/report"),
    ("post", "/v1/keys/{name}/decrypt-requests"), ("get", "/v1/decrypt-requests"),
    ("get", "/v1/decrypt-requests/{id}"), ("post", "/v1/decrypt-requests/{id}/approve"),
    ("post", "/v1/decrypt-requests/{id}/deny"), ("post", "/v1/decrypt-requests/{id}/execute"),
]
#: Query parameters this client sends, per path.
QUERY = {"/v1/keys": ["limit", "after"], "/v1/decrypt-requests": ["state"]}
#: The states of a decryption request.
REQUEST_STATES = ("pending", "approved", "denied", "expired", "executed")

MAX_SIGN_BATCH = 256
MAX_DECRYPT_BATCH = 4096


class _Node:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.id: Optional[int] = None


@dataclass
class PreparedRequest:
    """A signed request not sent yet, addressed to one node (its signature names the node):
    collect approvals of :meth:`approval_request`, then :meth:`Client.send` it. Send it within
    the cluster's clock-skew window (``timeouts.max_clock_skew_ms``, 30 s by default)."""

    method: str
    path: str
    body: bytes
    node_url: str
    node_id: int
    signature: RequestSignature

    def approval_request(self) -> ApprovalRequest:
        """What each approver signs (ship it as ``.to_json()`` to a remote approver)."""
        return ApprovalRequest(self.signature.client, self.signature.nonce, self.method, self.path, self.body)


@dataclass
class PreparedDecrypt(PreparedRequest):
    """A prepared decryption request: :meth:`Client.send_decrypt` sends it and reads the
    answer with its ``round`` (end to end: opens the sealed partials with the round's key)."""

    round: Optional[DecryptRound] = None
    key_name: str = ""


def _never_sent(e: requests.exceptions.RequestException) -> bool:
    """True when the connection could not be made, so the request never reached the node."""
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(e, requests.exceptions.ConnectionError):
        return False
    text = repr(e)
    return any(s in text for s in ("NewConnectionError", "Connection refused", "Failed to establish"))


_FAILOVER = (E.Sealed, E.CatchingUp)


def verify_local(public_key: Union[KeyInfo, str, bytes], message: bytes, signature: Union[str, bytes, Signature]) -> bool:
    """Checks a frost-ed25519 signature locally (plain RFC 8032 Ed25519, ``cryptography``)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(public_key, KeyInfo):
        if public_key.algorithm != "frost-ed25519":
            raise ValueError(f"local verification is for frost-ed25519 keys, not {public_key.algorithm}")
        public_key = public_key.public_key
    pk = bytes.fromhex(public_key) if isinstance(public_key, str) else bytes(public_key)
    if isinstance(signature, Signature):
        sig = signature.bytes
    else:
        try:
            sig = bytes.fromhex(signature) if isinstance(signature, str) else bytes(signature)
        except ValueError:
            return False
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, message)
        return True
    except (InvalidSignature, ValueError):
        return False


class Client:
    """A client of a keyquorum cluster.

    ``url`` is one node's client URL or a list of them (``urls`` is the same). Requests are
    signed with ``client_key`` (a key file path or :class:`ClientKey`) when given, else sent with
    the bearer ``token`` (reads only). ``ca`` is a PEM CA file for https nodes. With several
    URLs a request goes to the next node when one is down (connection refused) or answers 503
    ``sealed`` / ``catching_up``; idempotent reads are also retried ``read_retries`` times over
    all nodes on timeouts and broken connections."""

    def __init__(
        self,
        url: Union[str, Sequence[str], None] = None,
        *,
        urls: Optional[Sequence[str]] = None,
        client_key: Union[PathLike, ClientKey, None] = None,
        token: Optional[str] = None,
        ca: Optional[PathLike] = None,
        timeout: float = 60.0,
        read_retries: int = 2,
        retry_delay: float = 0.2,
    ):
        given: List[str] = []
        if isinstance(url, str):
            given.append(url)
        elif url is not None:
            given.extend(url)
        given.extend(urls or [])
        if not given:
            env = os.environ.get("KEYQUORUM_URL")
            if not env:
                raise ValueError("give url or urls (or set KEYQUORUM_URL)")
            given = [u for u in env.split(",") if u]
        self._nodes = [_Node(u) for u in given]
        self._current = 0
        if client_key is not None and not isinstance(client_key, ClientKey):
            client_key = ClientKey.load(client_key)
        self.client_key: Optional[ClientKey] = client_key
        self.token = token
        self.timeout = timeout
        self.read_retries = read_retries
        self.retry_delay = retry_delay
        self._http = requests.Session()
        if ca is not None:
            self._http.verify = os.fspath(ca)
        self._key_cache: Dict[str, KeyInfo] = {}

    @property
    def urls(self) -> List[str]:
        return [n.url for n in self._nodes]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ------------------------------------------------------------------------

    def _order(self) -> List[_Node]:
        return self._nodes[self._current :] + self._nodes[: self._current]

    def _health_of(self, node: _Node) -> Health:
        resp = self._http.get(node.url + "/v1/health", timeout=self.timeout)
        if resp.status_code != 200:
            raise E.TransportError(f"{node.url}: health answered HTTP {resp.status_code}")
        health = Health.from_json(resp.json())
        if health.node is not None:
            node.id = health.node
        return health

    def _node_id(self, node: _Node) -> int:
        if node.id is None:
            self._health_of(node)
        if node.id is None:
            raise E.TransportError(f"{node.url}: /v1/health named no node id")
        return node.id

    def _prepare_on(self, node: _Node, method: str, path: str, body: bytes) -> PreparedRequest:
        if self.client_key is None:
            raise ValueError("this call needs a client key (client_key=...)")
        node_id = self._node_id(node)
        sig = self.client_key.sign_request(node_id, method, path, body)
        return PreparedRequest(method.upper(), path, body, node.url, node_id, sig)

    def _exchange(
        self,
        url: str,
        method: str,
        path_and_query: str,
        body: Optional[bytes],
        authorization: Optional[str],
        approvals: Sequence[Approval] = (),
    ) -> Any:
        headers: List[Tuple[str, str]] = []
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        if authorization is not None:
            headers.append(("Authorization", authorization))
        # One header per approver: requests merges a dict's keys, so build the list by hand.
        hdrs = requests.structures.CaseInsensitiveDict(headers)
        req = requests.Request(method, url + path_and_query, data=body, headers=hdrs)
        prepared = self._http.prepare_request(req)
        if approvals:
            # http.client sends a header given as a list-joined value once; several
            # X-KQ-Approval headers are sent as separate lines via urllib3's HTTPHeaderDict.
            from urllib3._collections import HTTPHeaderDict

            merged = HTTPHeaderDict([(str(k), str(v)) for k, v in prepared.headers.items()])
            for a in approvals:
                merged.add("X-KQ-Approval", a.header())
            prepared.headers = merged  # type: ignore[assignment]
        resp = self._http.send(prepared, timeout=self.timeout)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = resp.text
        if resp.status_code >= 400:
            raise E.from_response(resp.status_code, data, resp.headers.get("Retry-After"), url + path_and_query)
        if isinstance(data, str):
            raise E.TransportError(f"{url}: the answer is not JSON")
        return data

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str = "",
        idempotent: bool = False,
        approvers: Sequence[Approver] = (),
    ) -> Any:
        return self._call_signed(method, path, body, query=query, idempotent=idempotent, approvers=approvers)[0]

    def _call_signed(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str = "",
        idempotent: bool = False,
        approvers: Sequence[Approver] = (),
    ) -> Tuple[Any, Optional[PreparedRequest]]:
        """:meth:`_call`, also giving the signed request that was answered (its nonce binds
        end-to-end partials), ``None`` with bearer-token auth."""
        raw = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        rounds = 1 + (self.read_retries if idempotent else 0)
        failures: List[Exception] = []
        for round_ in range(rounds):
            for node in self._order():
                prepared: Optional[PreparedRequest] = None
                try:
                    if self.client_key is not None:
                        prepared = self._prepare_on(node, method, path, raw or b"")
                        approvals = [a(prepared.approval_request()) for a in approvers]
                        auth: Optional[str] = prepared.signature.to_header()
                    else:
                        approvals, auth = [], (f"Bearer {self.token}" if self.token else None)
                    result = self._exchange(node.url, method, path + query, raw, auth, approvals)
                except requests.exceptions.RequestException as e:
                    failures.append(E.TransportError(f"{node.url}: {e}"))
                    if idempotent or _never_sent(e):
                        continue
                    raise failures[-1] from e
                except E.TransportError as e:  # /v1/health gave no node id: nothing was sent
                    failures.append(e)
                    continue
                except _FAILOVER as e:
                    failures.append(e)
                    continue
                self._current = self._nodes.index(node)
                return result, prepared
            if round_ + 1 < rounds:
                time.sleep(self.retry_delay)
        if len(self._nodes) == 1:
            raise failures[-1]
        raise E.NoNodeAvailable(
            "no node could serve the request: " + "; ".join(str(f) for f in failures[-len(self._nodes):]),
            failures,
        )

    # ---- approvals: prepare, approve, send --------------------------------------------------

    def prepare(self, method: str, path: str, body: Any = None) -> PreparedRequest:
        """Signs a request for the first node that answers, without sending it."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        failures: List[Exception] = []
        for node in self._order():
            try:
                return self._prepare_on(node, method, path, raw)
            except (requests.exceptions.RequestException, E.TransportError) as e:
                failures.append(e)
        raise E.NoNodeAvailable("no node answered /v1/health", failures)

    def prepare_decrypt(
        self, name: str, ciphertexts: Sequence[Union[CiphertextItem, Mapping[str, Any]]],
        mode: Optional[DecryptMode] = None,
    ) -> PreparedDecrypt:
        """A decryption request for approvers to approve (``ciphertexts`` are API items or
        sealed records); send it with :meth:`send_decrypt` (or :meth:`send` for the raw
        answer). End to end by default, as :meth:`decrypt`."""
        items = [c if isinstance(c, CiphertextItem) else _item_of(c) for c in ciphertexts]
        round_ = (mode or Auto()).begin(self.key(name), items, self._signer())
        p = self.prepare("POST", f"/v1/keys/{_seg(name)}/decrypt", round_.body)
        return PreparedDecrypt(p.method, p.path, p.body, p.node_url, p.node_id, p.signature, round_, name)

    def send_decrypt(self, prepared: PreparedDecrypt, approvals: Sequence[Approval] = ()) -> Decrypted:
        """Sends a prepared decryption with its approvals and reads the answer: per item the
        plaintext or an error. End to end, holders whose partials fail the checks are
        reported to the node and listed in ``culprits``; the request is not sent again (its
        approvals are for this request only)."""
        if prepared.round is None:
            raise ValueError("prepare the request with prepare_decrypt")
        answer = self.send(prepared, approvals)
        out = prepared.round.finish(answer, prepared.signature.nonce)
        return self._settle_culprits(prepared.key_name, prepared.round, answer, prepared.signature.nonce, out)

    def send(self, prepared: PreparedRequest, approvals: Sequence[Approval] = ()) -> Any:
        """Sends a prepared request with its approvals to the node it is addressed to."""
        try:
            return self._exchange(prepared.node_url, prepared.method, prepared.path,
                                  prepared.body if prepared.body or prepared.method != "GET" else None,
                                  prepared.signature.to_header(), approvals)
        except requests.exceptions.RequestException as e:
            raise E.TransportError(f"{prepared.node_url}: {e}") from e

    # ---- cluster ----------------------------------------------------------------------------

    def health(self) -> Health:
        """``GET /v1/health`` of the first node that answers."""
        failures: List[Exception] = []
        for node in self._order():
            try:
                return self._health_of(node)
            except (requests.exceptions.RequestException, E.TransportError) as e:
                failures.append(e)
        raise E.NoNodeAvailable("no node answered /v1/health", failures)

    def status(self) -> Status:
        return Status.from_json(self._call("GET", "/v1/status", idempotent=True))

    def seal(self) -> SealState:
        """Seals the node this client is talking to (admin). Use a one-URL client."""
        return SealState.from_json(self._call("POST", "/v1/sys/seal", {}))

    def unseal(self, passphrase: str) -> SealState:
        return SealState.from_json(self._call("POST", "/v1/sys/unseal", UnsealRequest(passphrase).to_json()))

    # ---- clients (admin) --------------------------------------------------------------------

    def clients(self) -> ClientList:
        return ClientList.from_json(self._call("GET", "/v1/clients", idempotent=True))

    def add_client(self, name: str, public_key: str, roles: Sequence[str] = ()) -> ChangeApplied:
        """Registers a client (or replaces its key and roles) on every node (admin)."""
        body = ClientInfo(name, public_key, list(roles)).to_json()
        return ChangeApplied.from_json(self._call("POST", "/v1/clients", body))

    def remove_client(self, name: str) -> ChangeApplied:
        return ChangeApplied.from_json(self._call("DELETE", f"/v1/clients/{_seg(name)}"))

    # ---- keys -------------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        algorithm: str,
        threshold: int,
        participants: Optional[List[int]] = None,
        policy: Union[KeyPolicy, Mapping[str, Any], None] = None,
    ) -> KeyInfo:
        """Runs a key ceremony (``frost-ed25519``, ``frost-secp256k1``, ``hpke-x25519`` or
        ``ecies-secp256k1``); 409 :class:`Conflict` on a duplicate name."""
        if policy is not None and not isinstance(policy, KeyPolicy):
            policy = KeyPolicy(**dict(policy))
        body = CreateKeyRequest(name, algorithm, threshold, participants, policy).to_json()
        return self._remember(KeyInfo.from_json(self._call("POST", "/v1/keys", body)))

    def keys(self, page_size: int = 1000) -> List[KeyInfo]:
        """Every key the caller may read, following the ``next`` cursor page after page."""
        out: List[KeyInfo] = []
        after: Optional[str] = None
        while True:
            query = f"?limit={page_size}" + (f"&after={quote(after, safe='')}" if after is not None else "")
            page = KeyList.from_json(self._call("GET", "/v1/keys", query=query, idempotent=True))
            out.extend(page.keys)
            if not page.next:
                return out
            after = page.next

    def key(self, name: str) -> KeyInfo:
        return self._remember(KeyInfo.from_json(self._call("GET", f"/v1/keys/{_seg(name)}", idempotent=True)))

    def refresh(self, name: str) -> KeyInfo:
        """New shares of the same key (same public key, ``generation`` + 1)."""
        return self._remember(KeyInfo.from_json(self._call("POST", f"/v1/keys/{_seg(name)}/refresh", {})))

    def retire(self, name: str) -> KeyInfo:
        """Erases every share; the public data stays readable with ``state == "retired"``."""
        return self._remember(KeyInfo.from_json(self._call("DELETE", f"/v1/keys/{_seg(name)}")))

    def set_policy(self, name: str, policy: Union[KeyPolicy, Mapping[str, Any]]) -> KeyInfo:
        if not isinstance(policy, KeyPolicy):
            policy = KeyPolicy(**dict(policy))
        return self._remember(KeyInfo.from_json(self._call("PUT", f"/v1/keys/{_seg(name)}/policy", policy.to_json())))

    def _remember(self, info: KeyInfo) -> KeyInfo:
        self._key_cache[info.name] = info
        return info

    def _cached_key(self, name: str) -> KeyInfo:
        return self._key_cache.get(name) or self.key(name)

    # ---- signing ----------------------------------------------------------------------------

    def sign(self, name: str, message: bytes) -> Signature:
        """Signs ``message`` with any t of the key's nodes; the answer names the ``signers``
        and the nodes ``excluded`` (with reasons)."""
        body = SignRequest(message=b64(message)).to_json()
        r = SignResponse.from_json(self._call("POST", f"/v1/keys/{_seg(name)}/sign", body))
        return Signature(r.signature, r.signers, r.excluded)

    def sign_batch(self, name: str, messages: Sequence[bytes]) -> List[Union[Signature, E.KeyquorumError]]:
        """Signs many messages, at most 256 per request (one FROST session each). One entry
        per message: a :class:`Signature`, or an error for an item the nodes refused."""
        out: List[Union[Signature, E.KeyquorumError]] = []
        for start in range(0, len(messages), MAX_SIGN_BATCH):
            chunk = messages[start : start + MAX_SIGN_BATCH]
            body = SignRequest(batch=[SignItem(b64(m)) for m in chunk]).to_json()
            r = BatchSignResponse.from_json(self._call("POST", f"/v1/keys/{_seg(name)}/sign", body))
            for item in r.results:
                if item.signature is not None:
                    out.append(Signature(item.signature, r.signers, r.excluded))
                else:
                    out.append(E.KeyquorumError(item.error or "no signature"))
        return out

    def verify(
        self, name: Union[str, KeyInfo], message: bytes, signature: Union[str, bytes, Signature], *, local: bool = False
    ) -> bool:
        """Checks a signature: through the cluster (``/verify``), or with ``local=True``
        on this machine with ``cryptography`` for frost-ed25519 keys (no round trip once the
        key's public data is known: pass a :class:`KeyInfo` or a name this client has seen)."""
        sig_hex = signature.signature if isinstance(signature, Signature) else (
            signature.hex() if isinstance(signature, (bytes, bytearray)) else signature)
        if local:
            info = name if isinstance(name, KeyInfo) else self._cached_key(name)
            return verify_local(info, message, sig_hex)
        key_name = name.name if isinstance(name, KeyInfo) else name
        body = VerifyRequest(b64(message), sig_hex).to_json()
        return VerifyResponse.from_json(self._call("POST", f"/v1/keys/{_seg(key_name)}/verify", body, idempotent=True)).valid

    # ---- decryption ----------------------------------------------------------------------

    def _signer(self) -> Optional[str]:
        return self.client_key.name if self.client_key is not None else None

    def decrypt(
        self,
        name: str,
        ciphertexts: Sequence[Union[CiphertextItem, Mapping[str, Any]]],
        approvals: Sequence[Approver] = (),
        mode: Optional[DecryptMode] = None,
    ) -> List[Union[bytes, str]]:
        """Decrypts API ciphertext items in one request: per item the plaintext or an error.
        See :meth:`decrypt_items` for who combines."""
        return self.decrypt_items(name, ciphertexts, approvals, mode).results

    def decrypt_items(
        self,
        name: str,
        ciphertexts: Sequence[Union[CiphertextItem, Mapping[str, Any]]],
        approvals: Sequence[Approver] = (),
        mode: Optional[DecryptMode] = None,
    ) -> Decrypted:
        """:meth:`decrypt` with the whole outcome: results, contributors, excluded nodes and
        who combined. ``mode`` defaults to :class:`Auto`: end to end (this client combines
        partials sealed to it; no node sees a plaintext) whenever the key and the node
        support it, else :class:`CoordinatorCombines`."""
        items = [c if isinstance(c, CiphertextItem) else CiphertextItem.from_json(dict(c)) for c in ciphertexts]
        return self._decrypt_rounds(self.key(name), items, approvals, mode or Auto())

    def report_decrypt(self, name: str, request_nonce: str, culprits: Sequence[Excluded]) -> ReportAccepted:
        """Names holders whose end-to-end partials failed this client's checks in the answer
        to the request signed with ``request_nonce``; the node audits the report
        (``decrypt.report``). Done by the decryption calls themselves."""
        body = DecryptReport(request_nonce, list(culprits)).to_json()
        return ReportAccepted.from_json(self._call("POST", f"/v1/keys/{_seg(name)}/decrypt/report", body))

    def _decrypt_rounds(
        self, info: KeyInfo, items: List[CiphertextItem], approvals: Sequence[Approver], mode: DecryptMode,
    ) -> Decrypted:
        """One request, then again without the holders whose partials failed while some item
        lacks t valid partials and there are new culprits to leave out (as the Rust client)."""
        path = f"/v1/keys/{_seg(info.name)}/decrypt"
        exclude: List[int] = []
        reported: List[Excluded] = []
        while True:
            round_ = mode.begin(info, items, self._signer(), exclude)
            answer, sent = self._call_signed("POST", path, round_.body, approvers=approvals)
            nonce = sent.signature.nonce if sent is not None else ""
            out = self._settle_culprits(info.name, round_, answer, nonce, round_.finish(answer, nonce))
            info = self._key_cache.get(info.name, info)  # re-read while settling culprits
            fresh = [c.node for c in out.culprits if c.node not in exclude]
            reported.extend(out.culprits)
            if out.short and fresh:
                exclude.extend(fresh)
                continue
            out.excluded = [e for e in out.excluded if e not in out.culprits] + reported
            out.culprits = reported
            return out

    def _settle_culprits(self, name: str, round_: DecryptRound, answer: Any, nonce: str, out: Decrypted) -> Decrypted:
        """Before naming holders: if the key changed since the round began (new shares after
        a refresh have new verifying shares), the answer is read again with its fresh data.
        Culprits that remain are reported to the node (best effort: the report is for the
        audit trail, the decryption goes on)."""
        if not out.culprits:
            return out
        fresh = self.key(name)
        began = round_.key
        if began is not None and (fresh.generation, fresh.verifying_shares) != (began.generation, began.verifying_shares):
            out = round_.finish(answer, nonce, fresh)
            if not out.culprits:
                return out
        try:
            self.report_decrypt(name, nonce, out.culprits)
        except (E.KeyquorumError, requests.exceptions.RequestException):
            pass
        return out

    def open_records(
        self,
        name: str,
        sealed: Iterable[Mapping[str, Any]],
        approvals: Sequence[Approver] = (),
        batch_size: int = 500,
        progress: Optional[Progress] = None,
        mode: Optional[DecryptMode] = None,
        on_excluded: Optional[Callable[[List[Excluded]], None]] = None,
    ) -> List[RecordResult]:
        """Decrypts sealed records through the cluster, ``batch_size`` per request (one peer
        round trip each), end to end by default (see :meth:`decrypt_items`). Returns one
        :class:`RecordResult` per record, in order: a record that is malformed, sealed to
        another key or moved to another video or frame gets an ``error`` and the others still
        open. ``approvals``: one approver per approval the key's policy needs — each is asked
        to approve every request (a :class:`ClientKey`, or a function sending the
        :class:`ApprovalRequest` to an approver). ``progress(done, total)`` is called after
        each batch; ``on_excluded(nodes)`` with the nodes a batch left out (culprits
        included). Errors of the whole request (:class:`Forbidden`,
        :class:`ApprovalsRequired`, no node) are raised."""
        mode = mode or Auto()
        records = list(sealed)
        total = len(records)
        results: List[Optional[RecordResult]] = [None] * total
        info = self.key(name)
        todo: List[Tuple[int, CiphertextItem]] = []
        for i, s in enumerate(records):
            try:
                if isinstance(s, Mapping) and s.get("algorithm") != info.algorithm:
                    raise RecordError(f"the record is sealed for {s.get('algorithm')}, key {name} is {info.algorithm}")
                todo.append((i, ciphertext_item(s)))
            except RecordError as e:
                results[i] = RecordResult(i, s, error=str(e))
        done = total - len(todo)
        size = max(1, min(batch_size, MAX_DECRYPT_BATCH))
        for start in range(0, len(todo), size):
            self._open_batch(info, records, todo[start : start + size], approvals, mode, results, on_excluded)
            done += len(todo[start : start + size])
            if progress is not None:
                progress(done, total)
        return [r if r is not None else RecordResult(i, records[i], error="not decrypted") for i, r in enumerate(results)]

    def _open_batch(
        self, info: KeyInfo, records: List[Mapping[str, Any]], batch: List[Tuple[int, CiphertextItem]],
        approvals: Sequence[Approver], mode: DecryptMode, results: List[Optional[RecordResult]],
        on_excluded: Optional[Callable[[List[Excluded]], None]],
    ) -> None:
        items = [item for _, item in batch]
        try:
            out = self._decrypt_rounds(info, items, approvals, mode)
        except E.InvalidRequest as e:
            # The node refused the whole request for an item it could not parse: split the
            # batch until the bad record stands alone, so it alone fails.
            if len(batch) == 1:
                i = batch[0][0]
                results[i] = RecordResult(i, records[i], error=e.message)
                return
            half = len(batch) // 2
            self._open_batch(info, records, batch[:half], approvals, mode, results, on_excluded)
            self._open_batch(info, records, batch[half:], approvals, mode, results, on_excluded)
            return
        if out.excluded and on_excluded is not None:
            on_excluded(out.excluded)
        for (i, _), outcome in zip(batch, out.results):
            if isinstance(outcome, str):
                results[i] = RecordResult(i, records[i], error=outcome)
                continue
            try:
                results[i] = RecordResult(i, records[i], record=open_plaintext(records[i], outcome))
            except RecordError as err:
                results[i] = RecordResult(i, records[i], error=str(err))

    # ---- decryption requests (README, "Decryption requests and the console") ----------------

    def create_decrypt_request(
        self, key: str, records: Sequence[Union[CiphertextItem, Mapping[str, Any]]], reason: str,
    ) -> DecryptRequestCreated:
        """Asks for the decryption of ``records`` (1 to 4096) with a ``reason`` approvers read
        (1 to 2000 characters). Records are sealed records (from :func:`seal_records` or
        ``keyquorum encrypt``; their video and frame are sent as labels, as the CLI does), API
        :class:`CiphertextItem` s, or item dicts with optional ``video`` / ``frame``. Signed by
        a client in the key's ``decrypt`` list; the answer carries the request's ``id``."""
        body = CreateDecryptRequest([_requested(r) for r in records], reason).to_json()
        return DecryptRequestCreated.from_json(self._call("POST", f"/v1/keys/{_seg(key)}/decrypt-requests", body))

    def decrypt_requests(self, state: Optional[str] = None) -> List[DecryptRequestInfo]:
        """The requests the caller may see, newest first; only those in ``state``
        (``pending``, ``approved``, ``denied``, ``expired`` or ``executed``) when given.
        Listed requests carry no ``ciphertexts`` (:meth:`decrypt_request` has them)."""
        if state is not None and state not in REQUEST_STATES:
            raise ValueError(f"unknown state {state!r}; one of {', '.join(REQUEST_STATES)}")
        query = f"?state={state}" if state is not None else ""
        return DecryptRequestList.from_json(
            self._call("GET", "/v1/decrypt-requests", query=query, idempotent=True)).requests

    def decrypt_request(self, id: str) -> DecryptRequestInfo:
        """One request with its records, labels, reviews and ``content_sha256``."""
        return DecryptRequestInfo.from_json(self._call("GET", f"/v1/decrypt-requests/{_seg(id)}", idempotent=True))

    def approve_request(self, request: Union[str, DecryptRequestInfo], comment: str = "") -> DecryptRequestInfo:
        """Approves a request for the content the approver read: pass the
        :class:`DecryptRequestInfo` that was reviewed (its ``content_sha256`` is signed), or an
        id, which reads the request first (as the CLI). Returns the request after it."""
        return self._review(request, "approve", comment)

    def deny_request(self, request: Union[str, DecryptRequestInfo], comment: str = "") -> DecryptRequestInfo:
        """Refuses a request (see :meth:`approve_request`); with the policy's ``deny_closes``
        (the default) this closes it."""
        return self._review(request, "deny", comment)

    def _review(self, request: Union[str, DecryptRequestInfo], verb: str, comment: str) -> DecryptRequestInfo:
        shown = request if isinstance(request, DecryptRequestInfo) else self.decrypt_request(request)
        body = ReviewDecryptRequest(comment, shown.content_sha256).to_json()
        return DecryptRequestInfo.from_json(self._call("POST", f"/v1/decrypt-requests/{_seg(shown.id)}/{verb}", body))

    def execute_request_items(self, id: str, mode: Optional[DecryptMode] = None) -> Tuple[DecryptRequestInfo, Decrypted]:
        """Executes an approved request (its requester, once) and reads the answer: the request
        as read before, and per record the plaintext or an error. ``mode`` defaults to
        :class:`EndToEnd`: holders seal their partials to a fresh ``reply_to`` key of this
        client, which checks every DLEQ proof and combines, so no node sees a plaintext;
        :class:`CoordinatorCombines` lets the node combine. One round only (an execution
        happens once): holders whose partials fail the checks are reported and listed in
        ``culprits``, not left out of a second try."""
        shown = self.decrypt_request(id)
        info = self.key(shown.key)
        round_ = (mode or EndToEnd()).begin(info, shown.ciphertexts, self._signer())
        reply_to = round_.body.get("reply_to")
        body = ExecuteDecryptRequest(reply_to=str(reply_to) if reply_to is not None else None).to_json()
        answer, sent = self._call_signed("POST", f"/v1/decrypt-requests/{_seg(shown.id)}/execute", body)
        nonce = sent.signature.nonce if sent is not None else ""
        out = self._settle_culprits(shown.key, round_, answer, nonce, round_.finish(answer, nonce))
        return shown, out

    def execute_request(
        self, id: str, *, mode: Optional[DecryptMode] = None, combine_on_node: bool = False,
    ) -> List[RecordResult]:
        """Executes an approved request (see :meth:`execute_request_items`; end to end unless
        ``combine_on_node`` or another ``mode``) and opens its records as
        :meth:`open_records` does: one :class:`RecordResult` per record, in order, each
        record checked against the video and frame it was requested with. A record sent
        without labels opens to ``{"index", "plaintext"}`` (base64), as the CLI prints it."""
        if combine_on_node:
            mode = CoordinatorCombines()
        shown, out = self.execute_request_items(id, mode)
        algorithm = self._cached_key(shown.key).algorithm
        results: List[RecordResult] = []
        for i, item in enumerate(shown.ciphertexts):
            label = shown.labels[i] if i < len(shown.labels) else None
            outcome = out.results[i] if i < len(out.results) else "no result"
            if label is None or label.video is None or label.frame is None:
                sealed: Dict[str, Any] = {"index": i, **item.to_json()}
                if isinstance(outcome, str):
                    results.append(RecordResult(i, sealed, error=outcome))
                else:
                    results.append(RecordResult(i, sealed, record={"index": i, "plaintext": b64(outcome)}))
                continue
            sealed = {"video": label.video, "frame": label.frame, "algorithm": algorithm,
                      "ciphertext": item.ciphertext}
            if item.enc is not None:
                sealed["enc"] = item.enc
            if item.aead is not None:
                sealed["aead"] = item.aead
            if isinstance(outcome, str):
                results.append(RecordResult(i, sealed, error=outcome))
                continue
            try:
                if algorithm == HPKE and item.info != b64(binding(label.video, label.frame)):
                    raise RecordError("the record was sealed for another video or frame than its label")
                results.append(RecordResult(i, sealed, record=open_plaintext(sealed, outcome)))
            except RecordError as err:
                results.append(RecordResult(i, sealed, error=str(err)))
        return results


def _requested(record: Union[CiphertextItem, Mapping[str, Any]]) -> Dict[str, Any]:
    """One record of a decryption request: the decrypt item, with the sealed record's video
    and frame as labels."""
    if isinstance(record, CiphertextItem):
        return record.to_json()
    if "algorithm" in record:  # a sealed record
        out = ciphertext_item(record).to_json()
        out["video"], out["frame"] = record["video"], record["frame"]
        return out
    out = CiphertextItem.from_json(dict(record)).to_json()
    for label in ("video", "frame"):
        if record.get(label) is not None:
            out[label] = record[label]
    return out


def _seg(name: str) -> str:
    return quote(name, safe="")


def _item_of(sealed: Mapping[str, Any]) -> CiphertextItem:
    if "video" in sealed:
        return ciphertext_item(sealed)
    return CiphertextItem.from_json(dict(sealed))


__all__ = ["Client", "PreparedRequest", "PreparedDecrypt", "DecryptMode", "DecryptRound", "Decrypted", "Auto",
           "EndToEnd", "CoordinatorCombines", "verify_local", "Approver", "Excluded"]
