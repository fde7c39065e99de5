import json

import pytest

import keyquorum
from conftest import unique


@pytest.fixture(scope="module")
def approved_key(cluster):
    """An HPKE key whose decryptions need two approvals from dpo1, dpo2, dpo3."""
    dpos = [cluster.new_client(unique("dpo")) for _ in range(3)]
    policy = {"sign": ["admin"], "decrypt": ["admin"], "read": ["*"], "manage": ["admin"],
              "approve": [d.name for d in dpos], "decrypt_approvals": 2}
    info = cluster.client().create_key(unique("reid-approved"), "hpke-x25519", 2, policy=policy)
    return info, dpos


def test_open_records_with_two_approvers(healthy_cluster, approved_key):
    info, dpos = approved_key
    c = healthy_cluster.client()
    records = [{"video": "v", "frame": i, "boxes": [[i, i, 4, 4]]} for i in range(5)]
    sealed = keyquorum.seal_records(info, records)
    with pytest.raises(keyquorum.ApprovalsRequired) as e:
        c.open_records(info.name, sealed)
    assert e.value.status == 403 and isinstance(e.value, keyquorum.Forbidden)
    with pytest.raises(keyquorum.ApprovalsRequired):
        c.open_records(info.name, sealed, approvals=[dpos[0]])
    results = c.open_records(info.name, sealed, approvals=dpos[:2], batch_size=2)  # 3 requests, 6 approvals
    assert [r.record for r in results] == records


def test_prepare_approve_send(healthy_cluster, approved_key):
    """The requester prepares, approvers sign (here via JSON, as on their own machines),
    the requester sends everything together."""
    info, dpos = approved_key
    c = healthy_cluster.client()
    record = {"video": "cam-9", "frame": 3, "boxes": [[1, 2, 3, 4]]}
    sealed = keyquorum.seal_records(info, [record])
    pending = c.prepare_decrypt(info.name, sealed)
    wire = pending.approval_request().to_json()
    approvals = [keyquorum.approve(dpos[i], keyquorum.ApprovalRequest.from_json(wire)) for i in (1, 2)]
    assert all(a.signature.node is None and "node=*" in a.header() for a in approvals)
    out = c.send_decrypt(pending, approvals)  # end to end: this client combines
    assert out.mode == "end_to_end"
    assert keyquorum.records.open_plaintext(sealed[0], out.results[0]) == record
    # A request is approved once: sending it again is a replay.
    with pytest.raises(keyquorum.ReplayedRequest):
        c.send(pending, approvals)


def test_an_approval_serves_only_its_request(healthy_cluster, approved_key):
    info, dpos = approved_key
    c = healthy_cluster.client()
    sealed = keyquorum.seal_records(info, [{"video": "v", "frame": 1}])
    first = c.prepare_decrypt(info.name, sealed)
    second = c.prepare_decrypt(info.name, sealed)
    approvals = [d.approve(first.approval_request()) for d in dpos[:2]]
    with pytest.raises(keyquorum.Unauthorized):  # the approvals name the first request's nonce
        c.send(second, approvals)
    # The same approver twice counts once.
    with pytest.raises(keyquorum.ApprovalsRequired):
        c.send(first, [dpos[0].approve(first.approval_request()), dpos[0].approve(first.approval_request())])


def test_approver_key_file_from_cli(healthy_cluster, approved_key, tmp_path):
    """Approvals from key files: the CLI's --approver-key opens what Python sealed."""
    info, dpos = approved_key
    path = tmp_path / "s.ndjson"
    record = {"video": "v", "frame": 2}
    path.write_text(json.dumps(keyquorum.seal_records(info, [record])[0]) + "\n")
    keys = [str(healthy_cluster.dir / f"{d.name}.key") for d in dpos[:2]]
    out = healthy_cluster.cli("decrypt", "--key", info.name, "--in", str(path),
                              "--approver-key", keys[0], "--approver-key", keys[1])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == record
    # keyquorum.approve also takes a key file path; the raw answer of the coordinator mode.
    c = healthy_cluster.client()
    pending = c.prepare_decrypt(info.name, keyquorum.seal_records(info, [record]), mode=keyquorum.CoordinatorCombines())
    answer = c.send(pending, [keyquorum.approve(k, pending.approval_request()) for k in keys])
    assert answer["mode"] == "coordinator" and answer["results"][0]["plaintext"]
