import keyquorum
from conftest import unique


def test_health_and_status(healthy_cluster):
    c = healthy_cluster.client()
    h = c.health()
    assert h.status == "ok" and h.node == 1
    s = c.status()
    assert s.node == 1 and not s.sealed and len(s.peers) == 2
