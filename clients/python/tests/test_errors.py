import time

import pytest
import requests

import keyquorum
from conftest import unique, wait_until


@pytest.fixture(scope="module")
def sign_key(cluster):
    return cluster.client().create_key(unique("errs"), "frost-ed25519", 2)


def test_not_found_and_conflict(healthy_cluster, sign_key):
    c = healthy_cluster.client()
    with pytest.raises(keyquorum.NotFound) as e:
        c.key("no-such-key")
    assert e.value.status == 404 and e.value.culprits == []
    with pytest.raises(keyquorum.Conflict) as e:
        c.create_key(sign_key.name, "frost-ed25519", 2)
    assert e.value.status == 409


def test_invalid_request(healthy_cluster, sign_key):
    c = healthy_cluster.client()
    hpke = c.create_key(unique("purpose"), "hpke-x25519", 2)
    with pytest.raises(keyquorum.InvalidRequest) as e:
        c.sign(hpke.name, b"a decryption key does not sign")
    assert e.value.status == 400
    with pytest.raises(keyquorum.InvalidRequest):
        c.create_key(unique("bad"), "frost-ed25519", 7)


def test_forbidden(healthy_cluster, sign_key):
    outsider = healthy_cluster.new_client(unique("outsider"))
    c = healthy_cluster.client(client_key=outsider)
    with pytest.raises(keyquorum.Forbidden) as e:
        c.sign(sign_key.name, b"not mine")
    assert e.value.code == "forbidden" and e.value.status == 403
    with pytest.raises(keyquorum.Forbidden):
        c.create_key(unique("nope"), "frost-ed25519", 2)  # no key-creator role


def test_authentication_errors(healthy_cluster, sign_key):
    c = healthy_cluster.client(1)
    with pytest.raises(keyquorum.UnknownClient):
        healthy_cluster.client(1, client_key=keyquorum.ClientKey.generate("ghost")).sign(sign_key.name, b"x")
    with pytest.raises(keyquorum.BadSignature):  # the admin's name, another key
        healthy_cluster.client(1, client_key=keyquorum.ClientKey.generate("admin")).sign(sign_key.name, b"x")
    body = {"message": "eA=="}
    path = f"/v1/keys/{sign_key.name}/sign"
    pending = c.prepare("POST", path, body)
    c.send(pending)
    with pytest.raises(keyquorum.ReplayedRequest):
        c.send(pending)
    # Addressed to node 1, sent to node 2.
    pending = c.prepare("POST", path, body)
    pending.node_url = healthy_cluster.urls[1]
    with pytest.raises(keyquorum.MisaddressedRequest):
        c.send(pending)
    # Signed ten minutes ago.
    key = keyquorum.ClientKey.load(healthy_cluster.admin_key)
    raw = b'{"message":"eA=="}'
    old = key.sign_request(1, "POST", path, raw, timestamp_ms=keyquorum.auth.now_ms() - 600_000)
    stale = keyquorum.PreparedRequest("POST", path, raw, healthy_cluster.urls[0], 1, old)
    with pytest.raises(keyquorum.StaleRequest) as e:
        c.send(stale)
    assert e.value.status == 401 and isinstance(e.value, keyquorum.Unauthorized)


def test_quorum_unavailable_names_the_culprits(healthy_cluster, sign_key):
    healthy_cluster.client(2).seal()
    healthy_cluster.client(3).seal()
    with pytest.raises(keyquorum.QuorumUnavailable) as e:
        healthy_cluster.client(1).sign(sign_key.name, b"alone")
    assert e.value.status == 503
    assert {c.node for c in e.value.culprits} == {2, 3}, e.value.culprits
    assert all(c.reason for c in e.value.culprits)
    healthy_cluster.unseal(2)
    healthy_cluster.unseal(3)


def test_rate_limited_carries_retry_after(healthy_cluster, sign_key):
    """Requests that fail authentication drain the source's bucket (burst 50, 2/s): 429."""
    ghost = healthy_cluster.client(3, client_key=keyquorum.ClientKey.generate("ghost"))
    limited = None
    for _ in range(200):
        try:
            ghost.key(sign_key.name)
        except keyquorum.RateLimited as e:
            limited = e
            break
        except keyquorum.UnknownClient:
            continue
    assert limited is not None, "never rate limited"
    assert limited.status == 429 and limited.retry_after is not None and limited.retry_after >= 1
    # The bucket refills: the node serves this source again.
    ok = healthy_cluster.client(3)
    wait_until("the rate limit to lift", lambda: ok.key(sign_key.name) is not None, timeout=30, every=0.5)


def test_every_error_code_has_a_class():
    for code, cls in keyquorum.ERRORS.items():
        assert cls.code == code and issubclass(cls, keyquorum.ApiError)
    e = keyquorum.errors.from_response(
        503, {"error": "sealed", "message": "m", "culprits": [{"node": 2, "reason": "sealed"}]}, None, "u")
    assert isinstance(e, keyquorum.Sealed) and e.culprits == [keyquorum.Culprit(2, "sealed")]
    e = keyquorum.errors.from_response(429, {"error": "rate_limited", "message": ""}, "3", "u")
    assert isinstance(e, keyquorum.RateLimited) and e.retry_after == 3
    e = keyquorum.errors.from_response(418, {"error": "teapot", "message": ""}, None, "u")
    assert type(e) is keyquorum.ApiError and e.code == "teapot"


def test_error_codes_cover_the_node():
    """Every code the node's source names has a class (grep of src/)."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[3] / "src"
    text = "\n".join(p.read_text() for p in src.rglob("*.rs"))
    codes = set(re.findall(r'StatusCode::[A-Z_]+,\s*"([a-z_]+)"', text))
    codes |= set(re.findall(r'AuthError::\w+\(_\)\s*=>\s*"([a-z_]+)"', text))
    codes |= set(re.findall(r'ApiError::new\(\s*[^,]+,\s*"([a-z_]+)"', text))
    codes |= {"sealed", "catching_up", "halted", "retry"} & set(re.findall(r'"([a-z_]+)"', text))
    # Refusals of the decryption-request rules (src/state/decrypt_requests.rs and the holders').
    codes |= set(re.findall(r'(?<![.\w])refuse\(\s*"([a-z_]+)"', text))
    codes |= set(re.findall(r'\bcode:\s*"([a-z_]+)"', text))
    # And every code the README documents with its status ("| 409 `not_approved` |").
    readme = (src.parent / "README.md").read_text()
    documented = set(re.findall(r'\b[45]\d\d `([a-z_]+)`', readme))
    assert {"not_an_approver", "self_approval", "no_such_request", "request_denied"} <= documented, documented
    codes |= documented
    assert {"forbidden", "approvals_required", "quorum_unavailable", "rate_limited", "sealed"} <= codes, codes
    assert {"duplicate_approval", "content_mismatch", "not_requester", "already_executed", "not_executed",
            "request_expired", "not_approved"} <= codes, codes
    missing = codes - set(keyquorum.ERRORS)
    assert not missing, f"error codes without a class: {missing}"


def test_payload_too_large(healthy_cluster, sign_key):
    c = healthy_cluster.client(1)
    with pytest.raises(keyquorum.PayloadTooLarge) as e:
        c.sign(sign_key.name, b"\0" * (13 * 1024 * 1024))  # 17.3 MB of base64, over the 16 MiB limit
    assert e.value.status == 413
