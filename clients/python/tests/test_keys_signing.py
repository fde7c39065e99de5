import pytest

import keyquorum
from conftest import unique


def test_key_lifecycle(healthy_cluster):
    c = healthy_cluster.client()
    name = unique("k")
    info = c.create_key(name, "frost-ed25519", 2)
    assert info.name == name and info.algorithm == "frost-ed25519" and info.purpose == "sign"
    assert info.threshold == 2 and info.participants == [1, 2, 3] and len(bytes.fromhex(info.public_key)) == 32
    assert info.ceremony is not None and info.policy.sign  # the creator may sign
    assert c.key(name).public_key == info.public_key
    assert name in [k.name for k in c.keys()]

    refreshed = c.refresh(name)
    assert refreshed.public_key == info.public_key and refreshed.generation == info.generation + 1

    policy = keyquorum.KeyPolicy(sign=["admin"], decrypt=[], read=["*"], manage=["admin"], approve=[])
    changed = c.set_policy(name, policy)
    assert changed.policy.read == ["*"] and c.key(name).policy.read == ["*"]

    sig = c.sign(name, b"after refresh")
    assert c.verify(name, b"after refresh", sig)

    retired = c.retire(name)
    assert retired.state == "retired" and retired.retired_at
    assert c.verify(name, b"after refresh", sig), "a retired key still verifies"
    with pytest.raises(keyquorum.KeyRetired) as e:
        c.sign(name, b"no more")
    assert isinstance(e.value, keyquorum.Conflict) and e.value.status == 409


def test_keys_follows_the_paging_cursor(healthy_cluster, monkeypatch):
    c = healthy_cluster.client()
    names = {unique("page") for _ in range(3)}
    for n in names:
        c.create_key(n, "frost-ed25519", 2)
    queries = []
    real = c._call

    def spy(method, path, body=None, **kw):
        if path == "/v1/keys" and method == "GET":
            queries.append(kw.get("query"))
        return real(method, path, body, **kw)

    monkeypatch.setattr(c, "_call", spy)
    listed = [k.name for k in c.keys(page_size=2)]
    assert names <= set(listed)
    assert len(listed) == len(set(listed)), "no key twice"
    assert len(listed) >= 4 and len(queries) >= 2 and any("after=" in q for q in queries), queries
    assert listed == sorted(listed)


def test_sign_verify_remote_and_local(healthy_cluster):
    c = healthy_cluster.client()
    name = unique("sig")
    info = c.create_key(name, "frost-ed25519", 2)
    sig = c.sign(name, b"manifest v1")
    assert len(sig.bytes) == 64 and len(sig.signers) == 2 and set(sig.signers) <= {1, 2, 3}
    assert isinstance(sig.excluded, list)
    assert c.verify(name, b"manifest v1", sig) is True
    assert c.verify(name, b"manifest v2", sig) is False
    # Local: no round trip, cryptography's Ed25519 against the published key.
    assert keyquorum.verify_local(info, b"manifest v1", sig)
    assert keyquorum.verify_local(info.public_key, b"manifest v1", sig.signature)
    assert not keyquorum.verify_local(info, b"manifest v2", sig)
    assert c.verify(info, b"manifest v1", sig, local=True)
    assert not c.verify(info, b"tampered", sig, local=True)
    forged = bytearray(sig.bytes)
    forged[5] ^= 1
    assert not c.verify(name, b"manifest v1", bytes(forged), local=True)
    assert not c.verify(name, b"manifest v1", bytes(forged))


def test_sign_batch(healthy_cluster):
    c = healthy_cluster.client()
    name = unique("batch")
    info = c.create_key(name, "frost-ed25519", 2)
    messages = [f"frame {i}".encode() for i in range(5)]
    sigs = c.sign_batch(name, messages)
    assert len(sigs) == 5
    for m, s in zip(messages, sigs):
        assert isinstance(s, keyquorum.Signature) and keyquorum.verify_local(info, m, s)
    assert not keyquorum.verify_local(info, messages[0], sigs[1])


def test_bearer_token_reads(healthy_cluster):
    c = keyquorum.Client(healthy_cluster.urls[0], token=healthy_cluster.token)
    assert c.status().node == 1
    assert isinstance(c.keys(), list)
    with pytest.raises(keyquorum.MalformedSignature) as e:
        c.sign("anything", b"x")  # signing needs a signed request, a token is refused
    assert isinstance(e.value, keyquorum.Unauthorized) and e.value.status == 401


def test_client_registry(healthy_cluster):
    c = healthy_cluster.client()
    key = keyquorum.ClientKey.generate(unique("reg"))
    applied = c.add_client(key.name, key.public_hex, ["auditor"])
    assert sorted(applied.nodes) == [1, 2, 3] and applied.admin_seq > 0
    listed = {x.name: x for x in c.clients().clients}
    assert listed[key.name].public_key == key.public_hex and listed[key.name].roles == ["auditor"]
    c.remove_client(key.name)
    assert key.name not in {x.name for x in c.clients().clients}
    with pytest.raises(keyquorum.UnknownClient):
        healthy_cluster.client(client_key=key).status()
