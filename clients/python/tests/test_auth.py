"""The signed-request scheme of the README, byte for byte (no cluster needed)."""

import hashlib

import pytest

import keyquorum
from keyquorum import auth


def test_canonical_request_is_the_readme_s_eight_lines():
    body = b'{"message":"aGk="}'
    got = auth.canonical_request("analyst", 2, "post", "/v1/keys/k/sign", body, 1700000000000, "0123456789abcdef")
    assert got == (
        "KQ-REQUEST-V2\nanalyst\n2\nPOST\n/v1/keys/k/sign\n" + hashlib.sha256(body).hexdigest()
        + "\n1700000000000\n0123456789abcdef"
    ).encode()
    assert not got.endswith(b"\n")
    empty = auth.canonical_request("a", 1, "GET", "/v1/keys", b"", 1, "0123456789abcdef").split(b"\n")[5]
    assert empty == b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_canonical_approval_is_the_readme_s_nine_lines():
    got = auth.canonical_approval("dpo", "analyst", "req-nonce-000001", "post", "/v1/keys/k/decrypt", b"{}", 5,
                                  "appr-nonce-00001")
    lines = got.decode().split("\n")
    assert lines == ["KQ-APPROVAL-V1", "dpo", "analyst", "req-nonce-000001", "POST", "/v1/keys/k/decrypt",
                     hashlib.sha256(b"{}").hexdigest(), "5", "appr-nonce-00001"]


def test_signatures_and_headers():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = keyquorum.ClientKey.generate("analyst")
    sig = key.sign_request(3, "POST", "/p", b"x")
    header = sig.to_header()
    assert header.startswith("KQ-Ed25519 client=analyst,node=3,ts=") and ",sig=" in header
    assert keyquorum.RequestSignature.from_header(header) == sig
    assert 16 <= len(sig.nonce) <= 64 and len(bytes.fromhex(sig.signature)) == 64
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_hex))
    public.verify(bytes.fromhex(sig.signature),
                  auth.canonical_request("analyst", 3, "POST", "/p", b"x", sig.timestamp_ms, sig.nonce))
    approval = key.approve(keyquorum.ApprovalRequest("req", "n" * 16, "POST", "/p", b"x"))
    assert ",node=*," in approval.header() and approval.approver == "analyst"
    public.verify(bytes.fromhex(approval.signature.signature),
                  auth.canonical_approval("analyst", "req", "n" * 16, "POST", "/p", b"x",
                                          approval.signature.timestamp_ms, approval.signature.nonce))
    assert key.sign_request(3, "POST", "/p", b"x").nonce != sig.nonce


def test_key_files_round_trip_and_refuse_mismatched_halves(tmp_path):
    key = keyquorum.ClientKey.generate("ops")
    path = tmp_path / "ops.key"
    path.write_text(key.to_file_text())
    back = keyquorum.ClientKey.load(path)
    assert back.name == "ops" and back.public_hex == key.public_hex
    other = keyquorum.ClientKey.generate("ops")
    text = key.to_file_text().replace(key.public_hex, other.public_hex)
    with pytest.raises(ValueError, match="does not match"):
        keyquorum.ClientKey.from_file_text(text)
    with pytest.raises(ValueError):
        keyquorum.ClientKey.from_file_text("{}")
