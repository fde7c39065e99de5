"""The two prime-order groups of threshold decryption (DESIGN.md §6), with the point arithmetic
of well-kept libraries: libsodium through PyNaCl for Edwards25519, libsecp256k1 through
coincurve for secp256k1. Scalars are Python ints mod the group order; points travel as their
canonical encodings, as in the node's transcripts (``keyshares/src/decrypt/{x25519,secp256k1}.rs``).

Everything here works on public values (verifying shares, ephemeral points, proofs) except the
partials and their sum, which this client may learn: it is the requester.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import coincurve
from nacl import bindings as sodium
from nacl.exceptions import CryptoError


class PointError(ValueError):
    """An encoding that is not an acceptable point of the group (it names what and why)."""


class Group:
    """A prime-order group: the operations the DLEQ check and the Lagrange combination need."""

    #: Names the group inside Fiat-Shamir transcripts.
    LABEL: bytes = b""
    #: The group order.
    ORDER: int = 0
    #: Length of a canonical point encoding.
    POINT_LEN: int = 0

    def decode(self, data: bytes, what: str) -> bytes:
        """The canonical encoding of a valid point other than the identity (prime-order
        subgroup only), or :class:`PointError`."""
        raise NotImplementedError

    def decode_commitment(self, data: bytes) -> bytes:
        """A DLEQ proof commitment: the canonical encoding of a curve point, which may have a
        small-order component (the proof's equations are checked after clearing the
        cofactor, so it changes nothing), or :class:`PointError`."""
        raise NotImplementedError

    def clear_cofactor(self, point: bytes) -> bytes:
        """The point times the cofactor."""
        raise NotImplementedError

    def is_identity(self, point: bytes) -> bool:
        raise NotImplementedError

    def mul(self, point: bytes, k: int) -> bytes:
        raise NotImplementedError

    def mul_base(self, k: int) -> bytes:
        raise NotImplementedError

    def add(self, p: bytes, q: bytes) -> bytes:
        raise NotImplementedError

    def sub(self, p: bytes, q: bytes) -> bytes:
        return self.add(p, self.mul(q, self.ORDER - 1))

    def scalar_from_wide(self, wide: bytes) -> int:
        """64 bytes of hash output reduced mod the order, as the node reduces them."""
        raise NotImplementedError

    def scalar(self, data: bytes) -> Optional[int]:
        """A canonical 32-byte scalar, or ``None`` (non-canonical encodings make proofs
        malleable, so they are refused)."""
        raise NotImplementedError

    def scalar_bytes(self, k: int) -> bytes:
        """The canonical 32-byte encoding of a scalar."""
        raise NotImplementedError

    def hash_to_scalar(self, *parts: bytes) -> int:
        h = hashlib.sha512()
        for part in parts:
            h.update(part)
        return self.scalar_from_wide(h.digest())


class Ed25519(Group):
    """The prime-order subgroup of Edwards25519 behind threshold X25519 (libsodium)."""

    LABEL = b"hpke-x25519"
    ORDER = 2**252 + 27742317777372353535851937790883648493
    POINT_LEN = 32
    IDENTITY = b"\x01" + bytes(31)
    #: The field prime 2^255 - 19, for the Montgomery -> Edwards map only.
    FIELD = 2**255 - 19

    def decode(self, data: bytes, what: str) -> bytes:
        if len(data) != 32:
            raise PointError(f"{what}: expected 32 bytes, got {len(data)}")
        # libsodium's check: canonical, on the curve, not of small order, in the prime-order
        # subgroup; a torsion component would let a cheating node pass a proof (DESIGN.md §6).
        if not sodium.crypto_core_ed25519_is_valid_point(bytes(data)):
            raise PointError(f"{what} is not a canonical Edwards25519 point of prime order")
        return bytes(data)

    def decode_commitment(self, data: bytes) -> bytes:
        if len(data) != 32:
            raise PointError(f"proof commitment: expected 32 bytes, got {len(data)}")
        # libsodium reads y mod p and takes a sign bit on x = 0; one byte string per point
        # (no malleable proofs) means y < p, and no sign bit on y = ±1 where x = 0.
        y, sign = int.from_bytes(data, "little") & (2**255 - 1), data[31] >> 7
        if y >= self.FIELD or (sign and y in (1, self.FIELD - 1)):
            raise PointError("proof commitment is not a canonical Edwards25519 encoding")
        try:  # libsodium's addition decodes its inputs and refuses points off the curve
            sodium.crypto_core_ed25519_add(bytes(data), self.IDENTITY)
        except CryptoError:
            raise PointError("proof commitment is not a point of Edwards25519") from None
        return bytes(data)

    def clear_cofactor(self, point: bytes) -> bytes:
        for _ in range(3):  # 8·P by doublings: libsodium's scalar multiplication refuses
            point = self.add(point, point)  # small-order points, the ones this must map to 0
        return point

    def is_identity(self, point: bytes) -> bool:
        return point == self.IDENTITY

    def mul(self, point: bytes, k: int) -> bytes:
        k %= self.ORDER
        if k == 0 or point == self.IDENTITY:
            return self.IDENTITY
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), point))

    def mul_base(self, k: int) -> bytes:
        k %= self.ORDER
        if k == 0:
            return self.IDENTITY
        return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(k.to_bytes(32, "little")))

    def add(self, p: bytes, q: bytes) -> bytes:
        return bytes(sodium.crypto_core_ed25519_add(p, q))

    def sub(self, p: bytes, q: bytes) -> bytes:
        return bytes(sodium.crypto_core_ed25519_sub(p, q))

    def scalar_from_wide(self, wide: bytes) -> int:
        return int.from_bytes(sodium.crypto_core_ed25519_scalar_reduce(wide), "little")

    def scalar(self, data: bytes) -> Optional[int]:
        if len(data) != 32:
            return None
        k = int.from_bytes(data, "little")
        return k if k < self.ORDER else None

    def scalar_bytes(self, k: int) -> bytes:
        return (k % self.ORDER).to_bytes(32, "little")

    def lift_enc(self, enc: bytes) -> bytes:
        """The Edwards point a node multiplies by its share for an X25519 ``enc`` (a
        Montgomery u): the birational map y = (u - 1) / (u + 1) with sign 0, as
        curve25519-dalek's ``to_edwards(0)`` (RFC 7748 §4.1). Refuses what every holder
        refuses: u not canonical, on the twist, u = -1, small order, a torsion component."""
        if len(enc) != 32:
            raise PointError(f"enc: expected 32 bytes, got {len(enc)}")
        u = int.from_bytes(enc, "little")
        p = self.FIELD
        if u >= p:
            raise PointError("enc is not a canonical X25519 public key")
        if u == p - 1:
            raise PointError("enc is not an X25519 point on Curve25519")
        y = (u - 1) * pow(u + 1, p - 2, p) % p
        point = y.to_bytes(32, "little")
        if not sodium.crypto_core_ed25519_is_valid_point(point):
            raise PointError("enc is not an X25519 point of the prime-order subgroup (twist, small order or torsion)")
        return point

    def to_x25519(self, point: bytes, what: str) -> bytes:
        """The X25519 u-coordinate of an Edwards point (libsodium's Edwards -> Montgomery map)."""
        try:
            return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(point))
        except CryptoError:
            raise PointError(f"{what} has no X25519 form (identity or small order)") from None


class Secp256k1(Group):
    """secp256k1 behind threshold ECIES (libsecp256k1). Cofactor 1: every curve point but the
    identity is acceptable. The identity, which libsecp256k1 cannot hold, is ``b"\\x00"``
    (SEC1's encoding of it)."""

    LABEL = b"ecies-secp256k1"
    ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    POINT_LEN = 33
    IDENTITY = b"\x00"

    def decode(self, data: bytes, what: str) -> bytes:
        # Only the two standard SEC1 forms, as the node (libsecp256k1 also takes hybrid ones).
        expected = {2: 33, 3: 33, 4: 65}.get(data[0] if data else -1)
        if expected is None:
            raise PointError(f"{what}: SEC1 prefix must be 0x02 or 0x03 (compressed) or 0x04 (uncompressed)")
        if len(data) != expected:
            raise PointError(f"{what}: expected {expected} bytes, got {len(data)}")
        try:
            return bytes(coincurve.PublicKey(bytes(data)).format(compressed=True))
        except ValueError:
            raise PointError(f"{what} is not a point on secp256k1") from None

    def decode_commitment(self, data: bytes) -> bytes:
        if len(data) != 33:
            raise PointError(f"proof commitment: expected 33 bytes, got {len(data)}")
        return self.decode(data, "proof commitment")

    def clear_cofactor(self, point: bytes) -> bytes:
        return point  # cofactor 1

    def is_identity(self, point: bytes) -> bool:
        return point == self.IDENTITY

    def mul(self, point: bytes, k: int) -> bytes:
        k %= self.ORDER
        if k == 0 or point == self.IDENTITY:
            return self.IDENTITY
        return bytes(coincurve.PublicKey(point).multiply(k.to_bytes(32, "big")).format(compressed=True))

    def mul_base(self, k: int) -> bytes:
        k %= self.ORDER
        if k == 0:
            return self.IDENTITY
        return bytes(coincurve.PrivateKey(k.to_bytes(32, "big")).public_key.format(compressed=True))

    def add(self, p: bytes, q: bytes) -> bytes:
        if p == self.IDENTITY:
            return q
        if q == self.IDENTITY:
            return p
        try:
            total = coincurve.PublicKey.combine_keys([coincurve.PublicKey(p), coincurve.PublicKey(q)])
        except ValueError:  # P + (-P): the identity
            return self.IDENTITY
        return bytes(total.format(compressed=True))

    def scalar_from_wide(self, wide: bytes) -> int:
        # k256 reduces the 64 bytes read big-endian (Reduce<U512>::reduce_bytes).
        return int.from_bytes(wide, "big") % self.ORDER

    def scalar(self, data: bytes) -> Optional[int]:
        if len(data) != 32:
            return None
        k = int.from_bytes(data, "big")
        return k if k < self.ORDER else None

    def scalar_bytes(self, k: int) -> bytes:
        return (k % self.ORDER).to_bytes(32, "big")

    def uncompressed(self, point: bytes, what: str) -> bytes:
        """The 65-byte SEC1 form eciespy's KDF wants."""
        if point == self.IDENTITY:
            raise PointError(f"{what} is the identity")
        return bytes(coincurve.PublicKey(point).format(compressed=False))


ED25519 = Ed25519()
SECP256K1 = Secp256k1()
