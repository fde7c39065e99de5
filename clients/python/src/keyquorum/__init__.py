"""keyquorum: a Python client for the keyquorum threshold KMS."""

from .auth import Approval, ApprovalRequest, ClientKey, RequestSignature, approve
from .client import Approver, Client, PreparedDecrypt, PreparedRequest, verify_local
from .modes import Auto, CoordinatorCombines, DecryptMode, DecryptRound, Decrypted, EndToEnd
from . import errors as _errors
from .errors import *  # noqa: F401,F403
from .errors import ERRORS, ApiError, Culprit, KeyquorumError, NoNodeAvailable, TransportError
from .e2e import RelayError
from .records import RecordError, RecordResult, binding, seal_record, seal_records
from .types import DecryptRequestCreated, DecryptRequestInfo, KeyInfo, KeyPolicy, RecordLabel, Review, Signature

__version__ = "0.1.0"
__all__ = [
    "Approval", "ApprovalRequest", "Approver", "ClientKey", "RequestSignature", "approve", "Client",
    "CoordinatorCombines", "DecryptMode", "DecryptRound", "Decrypted", "Auto", "EndToEnd", "PreparedDecrypt",
    "PreparedRequest", "verify_local", "ERRORS", "ApiError",
    "Culprit", "KeyquorumError", "NoNodeAvailable", "TransportError", "RecordError", "RecordResult", "RelayError",
    "binding", "seal_record", "seal_records", "KeyInfo", "KeyPolicy", "Signature", "DecryptRequestCreated",
    "DecryptRequestInfo", "RecordLabel", "Review",
] + [n for n in _errors.__all__ if n not in ("ERRORS",)]
