"""The check of a holder's Chaum-Pedersen proof that log_G(Y) = log_E(D) (DESIGN.md §6,
"Verifiable partials"; ``keyshares/src/decrypt/dleq.rs``).

Transcript, SHA-512 reduced mod the group order:
  c = H("keyquorum/dleq/v1" ‖ len(label) ‖ label ‖ Y ‖ E ‖ D ‖ A1 ‖ A2)
Proof on the wire: c ‖ z (32 bytes each); the verifier recomputes A1 = z·G − c·Y and
A2 = z·E − c·D and checks the challenge.
"""

from __future__ import annotations

from .groups import Group

CHALLENGE_DST = b"keyquorum/dleq/v1"


class ProofError(ValueError):
    """A proof that is malformed or does not verify."""


def proof_len(group: Group) -> int:
    """Length of an encoded proof in ``group``."""
    return 64


def challenge(group: Group, y: bytes, e: bytes, d: bytes, a1: bytes, a2: bytes) -> int:
    return group.hash_to_scalar(CHALLENGE_DST, bytes([len(group.LABEL)]), group.LABEL, y, e, d, a1, a2)


def verify(group: Group, y: bytes, e: bytes, d: bytes, proof: bytes) -> None:
    """Checks ``proof`` for the statement (Y, E, D), all valid canonical points of ``group``;
    raises :class:`ProofError`."""
    if len(proof) != proof_len(group):
        raise ProofError(f"malformed DLEQ proof: {len(proof)} bytes, expected {proof_len(group)}")
    c, z = group.scalar(proof[:32]), group.scalar(proof[32:])
    if c is None or z is None:
        raise ProofError("malformed DLEQ proof: a scalar is not canonical")
    a1 = group.sub(group.mul_base(z), group.mul(y, c))
    a2 = group.sub(group.mul(e, z), group.mul(d, c))
    if challenge(group, y, e, d, a1, a2) != c:
        raise ProofError("the DLEQ proof does not verify")


def encode_proof(group: Group, a1: bytes, a2: bytes, c: int, z: int) -> bytes:
    """A proof on the wire from its parts (a prover's side: for tests of the checks)."""
    return group.scalar_bytes(c) + group.scalar_bytes(z)
