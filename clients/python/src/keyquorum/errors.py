"""One exception class per error code of the API (``{"error", "message", "culprits"}``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type


@dataclass(frozen=True)
class Culprit:
    """A node excluded from or blamed for an operation (``Excluded`` in the OpenAPI document)."""

    node: int
    reason: str


class KeyquorumError(Exception):
    """Base class of every error this package raises."""


class TransportError(KeyquorumError):
    """No usable answer: connection refused, timeout, TLS failure or a body that is not JSON."""


class NoNodeAvailable(TransportError):
    """Every node URL failed (down or sealed); ``errors`` holds each node's error."""

    def __init__(self, message: str, errors: List[Exception]):
        super().__init__(message)
        self.errors = errors


class ApiError(KeyquorumError):
    """A node answered with an error body. Subclasses are per error code."""

    code: str = ""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        culprits: Optional[List[Culprit]] = None,
        retry_after: Optional[float] = None,
        url: str = "",
    ):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.culprits: List[Culprit] = culprits or []
        self.retry_after = retry_after
        self.url = url


# 400 / 404 / 409 / 413 / 415
class InvalidRequest(ApiError):
    code = "invalid_request"


class NotFound(ApiError):
    code = "not_found"


class Conflict(ApiError):
    code = "conflict"


class KeyRetired(Conflict):
    code = "key_retired"


class NotAParticipant(Conflict):
    code = "not_a_participant"


# Decryption requests (README, "Decryption requests and the console"): the broken rule.
class NoSuchRequest(NotFound):
    code = "no_such_request"


class DuplicateApproval(Conflict):
    """This approver reviewed the request already (one review per approver)."""

    code = "duplicate_approval"


class ContentMismatch(Conflict):
    """The review names another content hash than the request's."""

    code = "content_mismatch"


class RequestDenied(Conflict):
    """An approver refused the request and the policy's ``deny_closes`` closed it."""

    code = "request_denied"


class RequestExpired(Conflict):
    code = "request_expired"


class NotApproved(Conflict):
    """Executing a request that lacks its ``approvals_needed`` approvals."""

    code = "not_approved"


class AlreadyExecuted(Conflict):
    code = "already_executed"


class NotExecuted(Conflict):
    """A holder found no logged execution of the request for this signed execute request."""

    code = "not_executed"


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"


# 401: the request is not authentic
class Unauthorized(ApiError):
    code = "unauthorized"


class MalformedSignature(Unauthorized):
    code = "malformed_signature"


class UnknownClient(Unauthorized):
    code = "unknown_client"


class BadSignature(Unauthorized):
    code = "bad_signature"


class StaleRequest(Unauthorized):
    code = "stale_request"


class ReplayedRequest(Unauthorized):
    code = "replayed_request"


class MisaddressedRequest(Unauthorized):
    code = "misaddressed_request"


# 403: authentic, but may not do this
class Forbidden(ApiError):
    code = "forbidden"


class ApprovalsRequired(Forbidden):
    code = "approvals_required"


class WrongPassphrase(Forbidden):
    code = "wrong_passphrase"


class NotAnApprover(Forbidden):
    """The reviewer is not in the key policy's approvers (as at the request's creation)."""

    code = "not_an_approver"


class SelfApproval(Forbidden):
    """The requester reviewing its own request."""

    code = "self_approval"


class NotRequester(Forbidden):
    """Only the requester executes its request."""

    code = "not_requester"


# 429
class RateLimited(ApiError):
    """``retry_after`` holds the seconds of the ``Retry-After`` header."""

    code = "rate_limited"


# 5xx
class Internal(ApiError):
    code = "internal"


class Unavailable(ApiError):
    """A 503 whose request may succeed later or on another node."""


class QuorumUnavailable(Unavailable):
    code = "quorum_unavailable"


class Sealed(Unavailable):
    code = "sealed"


class CatchingUp(Unavailable):
    code = "catching_up"


class StalePolicy(Unavailable):
    code = "stale_policy"


class ChangeNotApplied(Unavailable):
    code = "change_not_applied"


class Retry(Unavailable):
    """The node applied another admin change meanwhile: sign the request again."""

    code = "retry"


class Halted(Unavailable):
    code = "halted"


class WrongPin(Unavailable):
    """Unseal: the hardware seal refused the PIN; the node stays sealed."""

    code = "wrong_pin"


class SealUnavailable(Unavailable):
    """Unseal: the hardware seal could not be used; the node stays sealed."""

    code = "seal_unavailable"


class CeremonyFailed(ApiError):
    """A key ceremony failed; 503 for a node down, 502 for misbehaviour (``culprits``)."""

    code = "ceremony_failed"


class TimedOut(ApiError):
    code = "timed_out"


__all__ = [
    "Culprit", "KeyquorumError", "TransportError", "NoNodeAvailable", "ApiError", "ERRORS", "from_response",
    "InvalidRequest", "NotFound", "Conflict", "KeyRetired", "NotAParticipant", "PayloadTooLarge",
    "UnsupportedMediaType", "Unauthorized", "MalformedSignature", "UnknownClient", "BadSignature",
    "StaleRequest", "ReplayedRequest", "MisaddressedRequest", "Forbidden", "ApprovalsRequired",
    "WrongPassphrase", "RateLimited", "Internal", "Unavailable", "QuorumUnavailable", "Sealed",
    "CatchingUp", "StalePolicy", "ChangeNotApplied", "Retry", "Halted", "CeremonyFailed", "TimedOut",
    "WrongPin", "SealUnavailable", "NoSuchRequest", "DuplicateApproval", "ContentMismatch", "RequestDenied",
    "RequestExpired", "NotApproved", "AlreadyExecuted", "NotExecuted", "NotAnApprover", "SelfApproval",
    "NotRequester",
]

ERRORS: Dict[str, Type[ApiError]] = {
    cls.code: cls
    for cls in [
        InvalidRequest, NotFound, Conflict, KeyRetired, NotAParticipant, PayloadTooLarge,
        UnsupportedMediaType, Unauthorized, MalformedSignature, UnknownClient, BadSignature,
        StaleRequest, ReplayedRequest, MisaddressedRequest, Forbidden, ApprovalsRequired,
        WrongPassphrase, RateLimited, Internal, QuorumUnavailable, Sealed, CatchingUp,
        StalePolicy, ChangeNotApplied, Retry, Halted, CeremonyFailed, TimedOut, WrongPin, SealUnavailable,
        NoSuchRequest, DuplicateApproval, ContentMismatch, RequestDenied, RequestExpired, NotApproved,
        AlreadyExecuted, NotExecuted, NotAnApprover, SelfApproval, NotRequester,
    ]
}


def from_response(status: int, body: Any, retry_after: Optional[str], url: str) -> ApiError:
    """The exception for an error answer; an unknown code still gets a class by status."""
    if not isinstance(body, dict):
        body = {"error": "http_error", "message": str(body)}
    code = str(body.get("error", "http_error"))
    culprits = [
        Culprit(int(c.get("node", 0)), str(c.get("reason", "")))
        for c in body.get("culprits") or []
        if isinstance(c, dict)
    ]
    cls = ERRORS.get(code)
    if cls is None:
        cls = {400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
               429: RateLimited, 503: Unavailable, 504: TimedOut}.get(status, ApiError)
    seconds: Optional[float] = None
    if retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:
            seconds = None
    return cls(status, code, str(body.get("message", "")), culprits, seconds, url)
