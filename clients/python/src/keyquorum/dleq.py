"""The check of a holder's Chaum-Pedersen proof that log_G(Y) = log_E(D) (DESIGN.md §6,
"Verifiable partials"; ``keyshares/src/decrypt/dleq.rs``).

Proof on the wire: A1 ‖ A2 ‖ z (the commitments k·G and k·E as canonical points, then the
response; 96 bytes on Edwards25519, 98 on secp256k1). The verifier recomputes the challenge,
SHA-512 reduced mod the group order,
  c = H("keyquorum/dleq/v1" ‖ len(label) ‖ label ‖ Y ‖ E ‖ D ‖ A1 ‖ A2),
and checks z·G = A1 + c·Y and z·E = A2 + c·D after clearing the cofactor: Y, E and D are
prime-order points (the callers decode them so), and a small-order part of a commitment is
bound into c before z is chosen, so it cannot help a prover.
"""

from __future__ import annotations

from .groups import Group, PointError

CHALLENGE_DST = b"keyquorum/dleq/v1"


class ProofError(ValueError):
    """A proof that is malformed or does not verify."""


def proof_len(group: Group) -> int:
    """Length of an encoded proof in ``group``: A1 ‖ A2 ‖ z."""
    return 2 * group.POINT_LEN + 32


def challenge(group: Group, y: bytes, e: bytes, d: bytes, a1: bytes, a2: bytes) -> int:
    """The Fiat-Shamir challenge over the statement and the commitments as encoded."""
    return group.hash_to_scalar(CHALLENGE_DST, bytes([len(group.LABEL)]), group.LABEL, y, e, d, a1, a2)


def verify(group: Group, y: bytes, e: bytes, d: bytes, proof: bytes) -> None:
    """Checks ``proof`` for the statement (Y, E, D), all valid canonical points of ``group``;
    raises :class:`ProofError`."""
    n = group.POINT_LEN
    if len(proof) != proof_len(group):
        raise ProofError(f"malformed DLEQ proof: {len(proof)} bytes, expected {proof_len(group)}")
    a1_bytes, a2_bytes, z_bytes = proof[:n], proof[n : 2 * n], proof[2 * n :]
    try:
        a1, a2 = group.decode_commitment(a1_bytes), group.decode_commitment(a2_bytes)
    except PointError as err:
        raise ProofError(f"malformed DLEQ proof: {err}") from None
    z = group.scalar(z_bytes)
    if z is None:
        raise ProofError("malformed DLEQ proof: the response is not a canonical scalar")
    c = challenge(group, y, e, d, a1_bytes, a2_bytes)
    # z·G − c·Y − A1 and z·E − c·D − A2 must vanish (up to a small-order component).
    r1 = group.sub(group.sub(group.mul_base(z), group.mul(y, c)), a1)
    r2 = group.sub(group.sub(group.mul(e, z), group.mul(d, c)), a2)
    if not (group.is_identity(group.clear_cofactor(r1)) and group.is_identity(group.clear_cofactor(r2))):
        raise ProofError("the DLEQ proof does not verify")


def encode_proof(group: Group, a1: bytes, a2: bytes, z: int) -> bytes:
    """A proof on the wire from its parts (a prover's side: for tests of the checks)."""
    return a1 + a2 + group.scalar_bytes(z)
