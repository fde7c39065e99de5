"""The end-to-end requester's checks without a cluster: a threshold key simulated here (Shamir
shares of a secret, holders' partials and DLEQ proofs sealed to the reply key as the nodes
seal them), standard encryptors (pyhpke, eciespy) for the ciphertexts, then tampering with
what a holder or relay sends. The live tests (test_end_to_end.py) cover the node's side."""

from __future__ import annotations

import secrets
from typing import Dict, List

import ecies
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from keyquorum import dleq
from keyquorum.combine import Ciphertext, OpenError, ephemeral_point, lagrange_at_zero, open_hpke, parse_item
from keyquorum.e2e import KeyView, RelayError, ReplyKey, open_answers, reply_context
from keyquorum.groups import ED25519, SECP256K1, Group, PointError
from keyquorum.records import ECIES, HPKE, b64
from keyquorum.types import CiphertextItem, HolderPartials, SealedItem

KEY, CLIENT, NONCE = "reid", "analyst", "0123456789abcdef0123456789abcdef"


def prove(group: Group, s: int, y: bytes, e: bytes, d: bytes) -> bytes:
    """A holder's proof that log_G(Y) = log_E(D), as keyshares/src/decrypt/dleq.rs makes it."""
    k = secrets.randbelow(group.ORDER - 1) + 1
    a1, a2 = group.mul_base(k), group.mul(e, k)
    c = dleq.challenge(group, y, e, d, a1, a2)
    return dleq.encode_proof(group, a1, a2, (k + c * s) % group.ORDER)


class SimulatedKey:
    """t-of-n Shamir shares of a random secret, as a DKG leaves them (holder i has f(i))."""

    def __init__(self, algorithm: str, t: int = 2, n: int = 3):
        self.algorithm, self.t = algorithm, t
        self.group: Group = ED25519 if algorithm == HPKE else SECP256K1
        q = self.group.ORDER
        coeffs = [secrets.randbelow(q - 1) + 1 for _ in range(t)]
        self.shares = {i: sum(c * i**k for k, c in enumerate(coeffs)) % q for i in range(1, n + 1)}
        self.group_key = self.group.mul_base(coeffs[0])
        self.view = KeyView(algorithm, self.group_key, t,
                            {i: self.group.mul_base(s) for i, s in self.shares.items()})

    def public_key(self) -> bytes:
        """The standard public key a sender encrypts to."""
        return ED25519.to_x25519(self.group_key, "group key") if self.algorithm == HPKE else self.group_key

    def encrypt(self, plaintext: bytes, info: bytes = b"", aad: bytes = b"") -> CiphertextItem:
        if self.algorithm == HPKE:
            suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
            enc, sender = suite.create_sender_context(suite.kem.deserialize_public_key(self.public_key()), info=info)
            return CiphertextItem(ciphertext=b64(sender.seal(plaintext, aad=aad)), enc=b64(enc),
                                  info=b64(info), aad=b64(aad))
        return CiphertextItem(ciphertext=b64(ecies.encrypt(self.public_key().hex(), plaintext)))

    def partial(self, node: int, e: bytes) -> bytes:
        """proof ‖ D for holder ``node``: the plaintext of its sealed reply."""
        s = self.shares[node]
        d = self.group.mul(e, s)
        return prove(self.group, s, self.view.verifying_shares[node], e, d) + d

    def answers(self, reply: ReplyKey, cts: List[Ciphertext], nodes=(1, 2, 3), tamper=None) -> List[HolderPartials]:
        out = []
        for node in nodes:
            items = []
            for i, ct in enumerate(cts):
                plain = self.partial(node, ephemeral_point(ct))
                if tamper is not None:
                    plain = tamper(node, i, plain)
                items.append(SealedItem(sealed=b64(reply.seal(reply_context(KEY, CLIENT, NONCE, node, i), plain))))
            out.append(HolderPartials(node, items))
        return out


@pytest.fixture(params=[HPKE, ECIES])
def key(request) -> SimulatedKey:
    return SimulatedKey(request.param)


def parsed(key: SimulatedKey, items: List[CiphertextItem]) -> List[Ciphertext]:
    cts = [parse_item(key.algorithm, item) for item in items]
    assert all(isinstance(ct, Ciphertext) for ct in cts), cts
    return cts  # type: ignore[return-value]


def test_honest_holders_open_every_item(key):
    items = [key.encrypt(b"face %d" % i, info=b"cam-1" if key.algorithm == HPKE else b"") for i in range(3)]
    cts, reply = parsed(key, items), ReplyKey()
    opened = open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, key.answers(reply, cts))
    assert opened.results == [b"face 0", b"face 1", b"face 2"]
    assert opened.culprits == {} and not opened.short and opened.contributors == [1, 2]


def test_a_partial_sealed_for_another_request_or_item_names_its_holder(key):
    cts, reply = parsed(key, [key.encrypt(b"x"), key.encrypt(b"y")]), ReplyKey()
    answers = key.answers(reply, cts)
    answers[1].items[0], answers[1].items[1] = answers[1].items[1], answers[1].items[0]  # moved between items
    opened = open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, answers)
    assert set(opened.culprits) == {2} and "does not open" in opened.culprits[2]
    assert opened.results == [b"x", b"y"]  # holders 1 and 3 suffice
    # The whole answer read under another nonce (a replay into another request): nothing opens.
    other = open_answers(key.view, KEY, CLIENT, "another-nonce", reply, cts, key.answers(reply, cts))
    assert set(other.culprits) == {1, 2, 3} and other.short


@pytest.mark.parametrize("where", ["proof-first", "proof-last", "point"])
def test_a_bad_proof_or_point_names_its_holder(key, where):
    cts, reply = parsed(key, [key.encrypt(b"plate AB-123")]), ReplyKey()
    group, n = key.group, dleq.proof_len(key.group)

    def tamper(node, i, plain):
        if node != 3:
            return plain
        if where == "point":  # another valid point: D + G
            return plain[:n] + group.add(plain[n:], group.mul_base(1))
        at = 0 if where == "proof-first" else n - 1
        return plain[:at] + bytes([plain[at] ^ 1]) + plain[at + 1:]

    opened = open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, key.answers(reply, cts, tamper=tamper))
    assert list(opened.culprits) == [3]
    assert "invalid partial decryption" in opened.culprits[3] or "does not verify" in opened.culprits[3]
    assert opened.results == [b"plate AB-123"] and not opened.short


def test_two_bad_holders_leave_the_item_short(key):
    cts, reply = parsed(key, [key.encrypt(b"z")]), ReplyKey()
    group = key.group
    n = dleq.proof_len(group)

    def tamper(node, i, plain):
        return plain if node == 1 else plain[:n] + group.add(plain[n:], group.mul_base(1))

    opened = open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, key.answers(reply, cts, tamper=tamper))
    assert set(opened.culprits) == {2, 3} and opened.short
    assert isinstance(opened.results[0], str) and "only 1 of the 2" in opened.results[0]


def test_a_refused_valid_item_is_blamed_an_invalid_one_is_not(key):
    cts, reply = parsed(key, [key.encrypt(b"ok")]), ReplyKey()
    answers = key.answers(reply, cts)
    answers[0].items[0] = SealedItem(error="not today")
    opened = open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, answers)
    assert list(opened.culprits) == [1] and "refused item 0" in opened.culprits[1]
    assert opened.results == [b"ok"]


def test_invalid_ephemeral_points_blame_nobody():
    key = SimulatedKey(HPKE)
    # u = 0 is of small order, u = 2 lies on the twist: every honest holder refuses them.
    for u in (bytes(32), (2).to_bytes(32, "little"), (2**255 - 20).to_bytes(32, "little")):
        item = CiphertextItem(ciphertext=b64(bytes(20)), enc=b64(u))
        ct = parse_item(HPKE, item)
        assert isinstance(ct, Ciphertext)
        with pytest.raises(PointError):
            ephemeral_point(ct)
        answers = [HolderPartials(n, [SealedItem(error="enc rejected")]) for n in (1, 2)]
        opened = open_answers(key.view, KEY, CLIENT, NONCE, ReplyKey(), [ct], answers)
        assert opened.culprits == {} and isinstance(opened.results[0], str)


def test_a_malformed_relay_is_refused_as_a_whole(key):
    cts, reply = parsed(key, [key.encrypt(b"r")]), ReplyKey()
    answers = key.answers(reply, cts)
    with pytest.raises(RelayError, match="twice"):
        open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, answers + answers[:1])
    with pytest.raises(RelayError, match="holds no share"):
        open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, [HolderPartials(9, answers[0].items)])
    with pytest.raises(RelayError, match="items for 1 ciphertexts"):
        open_answers(key.view, KEY, CLIENT, NONCE, reply, cts, [HolderPartials(1, answers[0].items * 2)])


def test_lagrange_recombines_the_secret():
    q = ED25519.ORDER
    coeffs = [secrets.randbelow(q) for _ in range(3)]
    f: Dict[int, int] = {i: sum(c * i**k for k, c in enumerate(coeffs)) % q for i in (2, 5, 7, 65535)}
    for ids in ([2, 5, 7], [7, 65535, 2]):
        assert sum(lam * f[i] for lam, i in zip(lagrange_at_zero(ids, q), ids)) % q == coeffs[0]
    with pytest.raises(ValueError):
        lagrange_at_zero([1, 1], q)


def test_lift_enc_inverts_the_montgomery_map():
    for k in (1, 7, 12345, secrets.randbelow(ED25519.ORDER - 1) + 1):
        p = ED25519.mul_base(k)
        u = ED25519.to_x25519(p, "p")
        lifted = ED25519.lift_enc(u)
        assert lifted in (p, ED25519.mul(p, ED25519.ORDER - 1))
        assert ED25519.to_x25519(lifted, "lifted") == u


def test_hpke_schedule_matches_rfc9180_a11():
    """RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base):
    the DH output from skRm, then the schedule and the first message."""
    enc = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
    sk_r = X25519PrivateKey.from_private_bytes(
        bytes.fromhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"))
    pk_r = sk_r.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert pk_r.hex() == "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    ct = Ciphertext(HPKE, enc, bytes.fromhex(
        "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"),
        info=bytes.fromhex("4f6465206f6e2061204772656369616e2055726e"), aad=b"Count-0")
    assert open_hpke(dh, pk_r, ct) == b"Beauty is truth, truth beauty"
    with pytest.raises(OpenError):
        open_hpke(dh, pk_r, Ciphertext(HPKE, enc, ct.body, info=ct.info, aad=b"Count-1"))
    with pytest.raises(OpenError, match="degenerate"):
        open_hpke(bytes(32), pk_r, ct)


def test_proofs_refuse_non_canonical_scalars(key):
    """z + order encodes the same residue; a strict verifier refuses it (no malleable proofs)."""
    group = key.group
    e = group.mul_base(secrets.randbelow(group.ORDER - 1) + 1)
    s = key.shares[1]
    y, d = key.view.verifying_shares[1], group.mul(e, s)
    proof = prove(group, s, y, e, d)
    dleq.verify(group, y, e, d, proof)
    z = group.scalar(proof[-32:])
    assert z is not None
    big = z + group.ORDER
    if big < 2**256:
        raw = big.to_bytes(32, "little" if group is ED25519 else "big")
        with pytest.raises(dleq.ProofError, match="canonical"):
            dleq.verify(group, y, e, d, proof[:-32] + raw)


# An Edwards25519 point of order 8 (the encoding in RFC 8032 test suites of small-order points).
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def test_order_8_point_is_what_the_torsion_tests_need():
    from nacl.bindings import crypto_core_ed25519_is_valid_point

    assert not crypto_core_ed25519_is_valid_point(ORDER_8)
    assert ED25519.clear_cofactor(ORDER_8) == ED25519.IDENTITY
    assert ED25519.add(ED25519.add(ORDER_8, ORDER_8), ED25519.add(ORDER_8, ORDER_8)) != ED25519.IDENTITY


def test_a_commitment_with_a_torsion_part_passes_as_on_the_nodes():
    """The cofactored check (keyshares/src/decrypt/dleq.rs): A1 + T for T of small order is
    bound into c before z is chosen, so the node accepts it and so does this client."""
    key = SimulatedKey(HPKE)
    group, s = ED25519, key.shares[1]
    e = group.mul_base(secrets.randbelow(group.ORDER - 1) + 1)
    y, d = key.view.verifying_shares[1], group.mul(e, s)
    k = secrets.randbelow(group.ORDER - 1) + 1
    a1, a2 = group.add(group.mul_base(k), ORDER_8), group.mul(e, k)
    c = dleq.challenge(group, y, e, d, a1, a2)
    dleq.verify(group, y, e, d, dleq.encode_proof(group, a1, a2, (k + c * s) % group.ORDER))
    # A torsion part on D itself is another matter: D must be of prime order.
    with pytest.raises(PointError):
        group.decode(group.add(d, ORDER_8), "D")


def test_commitments_must_be_canonical_curve_points(key):
    group = key.group
    e = group.mul_base(secrets.randbelow(group.ORDER - 1) + 1)
    s = key.shares[2]
    y, d = key.view.verifying_shares[2], group.mul(e, s)
    proof = prove(group, s, y, e, d)
    dleq.verify(group, y, e, d, proof)
    n = group.POINT_LEN
    if group is ED25519:
        p = ED25519.FIELD
        bad = [(p + 1).to_bytes(32, "little"),                         # y = 1 written as p + 1
               bytes([1] + [0] * 30 + [0x80]),                          # x = 0 with a sign bit
               (2).to_bytes(32, "little")]                              # y = 2: not on the curve
    else:
        bad = [b"\x04" + proof[1:n], b"\x02" + bytes(32), b"\x05" + proof[1:n]]
    for commitment in bad:
        for at in (0, n):
            with pytest.raises(dleq.ProofError, match="malformed"):
                dleq.verify(group, y, e, d, proof[:at] + commitment + proof[at + n:])
    # Every byte matters: A1, A2 and z.
    for i in (0, n - 1, n, 2 * n - 1, 2 * n, len(proof) - 1):
        with pytest.raises(dleq.ProofError):
            dleq.verify(group, y, e, d, proof[:i] + bytes([proof[i] ^ 1]) + proof[i + 1:])
    with pytest.raises(dleq.ProofError, match="malformed"):
        dleq.verify(group, y, e, d, proof[:-1])
    assert len(proof) == (96 if group is ED25519 else 98)
