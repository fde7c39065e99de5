import pytest

import keyquorum
from conftest import unique


def test_fails_over_when_a_node_is_down(healthy_cluster):
    c = healthy_cluster.client(1, 2, 3)
    name = unique("fo")
    info = c.create_key(name, "frost-ed25519", 2)
    healthy_cluster.stop(1)
    # Reads and writes go to node 2; the key still signs with 2 of 3.
    assert c.key(name).public_key == info.public_key
    sig = c.sign(name, b"node 1 is down")
    assert keyquorum.verify_local(info, b"node 1 is down", sig)
    assert 1 not in sig.signers
    assert c.status().node == 2
    # A client of node 1 alone has nowhere to go.
    alone = healthy_cluster.client(1)
    with pytest.raises(keyquorum.TransportError):
        alone.key(name)
    with pytest.raises(keyquorum.TransportError):
        alone.health()


def test_all_nodes_down_is_no_node_available(healthy_cluster):
    c = healthy_cluster.client(1, 2)
    healthy_cluster.stop(1)
    healthy_cluster.stop(2)
    with pytest.raises(keyquorum.NoNodeAvailable) as e:
        c.status()
    assert len(e.value.errors) >= 2 and all(isinstance(x, keyquorum.TransportError) for x in e.value.errors)


def test_fails_over_from_a_sealed_node(healthy_cluster):
    name = unique("sealed")
    info = healthy_cluster.client().create_key(name, "frost-ed25519", 2)
    assert healthy_cluster.client(3).seal().sealed is True
    only3 = healthy_cluster.client(3)
    with pytest.raises(keyquorum.Sealed) as e:
        only3.sign(name, b"x")
    assert e.value.status == 503 and e.value.code == "sealed"
    # Public data is still served by the sealed node.
    assert only3.key(name).public_key == info.public_key
    # With node 1 listed after it, a sign request moves on.
    c = healthy_cluster.client(3, 1)
    sig = c.sign(name, b"moved on")
    assert keyquorum.verify_local(info, b"moved on", sig) and 3 not in sig.signers
    with pytest.raises(keyquorum.WrongPassphrase):
        only3.unseal("not the passphrase")
    assert only3.unseal(healthy_cluster.passphrase(3)).sealed is False
    assert only3.sign(name, b"unsealed").signature


def test_reads_are_retried(healthy_cluster, monkeypatch):
    """An idempotent read that times out is retried; a write that timed out is not."""
    import requests

    c = healthy_cluster.client(1, read_retries=2, retry_delay=0)
    c.health()  # the node id is known: only the calls below go through send
    real = c._http.send
    calls = {"n": 0}

    def flaky(prepared, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise requests.exceptions.ReadTimeout("simulated")
        return real(prepared, **kw)

    monkeypatch.setattr(c._http, "send", flaky)
    assert c.status().node == 1 and calls["n"] == 2
    calls["n"] = 0
    with pytest.raises(keyquorum.TransportError):
        c.sign("whatever", b"x")
    assert calls["n"] == 1
