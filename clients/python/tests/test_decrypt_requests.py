"""Decryption requests from Python: create, review, execute (end to end by default), and each
rule's refusal as its own exception class."""

import pytest

import keyquorum
from conftest import unique, wait_until


@pytest.fixture(scope="module")
def workflow(cluster):
    """An HPKE key whose requests need two approvals from three approvers; the analyst may
    decrypt (and so ask), the approvers may approve."""
    analyst = cluster.new_client(unique("analyst"))
    other = cluster.new_client(unique("other-analyst"))
    dpos = [cluster.new_client(unique("dpo")) for _ in range(3)]
    policy = {"sign": [], "decrypt": [analyst.name, other.name], "read": ["*"], "manage": ["admin"],
              "approve": [d.name for d in dpos], "decrypt_approvals": 2}
    info = cluster.client().create_key(unique("reid-requests"), "hpke-x25519", 2, policy=policy)
    return info, analyst, other, dpos


def _as(cluster, key):
    return cluster.client(client_key=key)


def _create(cluster, workflow, frames=(1, 2, 3), reason="court order 2026/117"):
    info, analyst, _, _ = workflow
    records = [{"video": "cam-7", "frame": f, "boxes": [[f, f, 8, 8]]} for f in frames]
    sealed = keyquorum.seal_records(info, records)
    created = _as(cluster, analyst).create_decrypt_request(info.name, sealed, reason)
    return created, records


def test_full_flow_two_approvals_then_end_to_end_execute(healthy_cluster, workflow):
    info, analyst, _, dpos = workflow
    assert info.policy.deny_closes is True and info.policy.request_ttl_seconds == 86400
    created, records = _create(healthy_cluster, workflow)
    assert isinstance(created, keyquorum.DecryptRequestCreated)
    assert created.state == "pending" and created.approvals_needed == 2 and len(created.content_sha256) == 64

    dpo1 = _as(healthy_cluster, dpos[0])
    shown = dpo1.decrypt_request(created.id)
    assert (shown.key, shown.requester, shown.reason) == (info.name, analyst.name, "court order 2026/117")
    assert shown.records == 3 and len(shown.ciphertexts) == 3
    assert [(label.video, label.frame) for label in shown.labels] == [("cam-7", 1), ("cam-7", 2), ("cam-7", 3)]
    assert shown.content_sha256 == created.content_sha256 and set(shown.approvers) == {d.name for d in dpos}
    assert created.id in [r.id for r in dpo1.decrypt_requests(state="pending")]
    assert created.id not in [r.id for r in dpo1.decrypt_requests(state="executed")]

    after = dpo1.approve_request(shown, "order checked")
    assert after.state == "pending" and [a.client for a in after.approvals] == [dpos[0].name]
    assert after.approvals[0].comment == "order checked" and after.approvals[0].at
    after = _as(healthy_cluster, dpos[1]).approve_request(created.id, "second look")
    assert after.state == "approved" and {a.comment for a in after.approvals} == {"order checked", "second look"}

    requester = _as(healthy_cluster, analyst)
    results = requester.execute_request(created.id)
    assert [r.record for r in results] == records and all(r.ok for r in results)
    assert [r.sealed["frame"] for r in results] == [1, 2, 3]
    done = requester.decrypt_request(created.id)
    assert done.state == "executed" and done.executed_at


def test_execute_reports_end_to_end_mode(healthy_cluster, workflow):
    """The default execution is end to end (this client combined), and coordinator-combine
    works on request."""
    _, analyst, _, dpos = workflow
    for combine_on_node, mode in ((False, "end_to_end"), (True, "coordinator")):
        created, records = _create(healthy_cluster, workflow, frames=(9,))
        for d in dpos[:2]:
            _as(healthy_cluster, d).approve_request(created.id, "ok")
        requester = _as(healthy_cluster, analyst)
        if combine_on_node:
            assert [r.record for r in requester.execute_request(created.id, combine_on_node=True)] == records
        else:
            _, out = requester.execute_request_items(created.id)
            assert out.mode == mode and out.culprits == [] and len(out.contributors) >= 2
            assert keyquorum.records.open_plaintext(
                {"video": "cam-7", "frame": 9, "algorithm": "hpke-x25519"}, out.results[0]) == records[0]


def test_self_approval(healthy_cluster, workflow):
    _, analyst, _, _ = workflow
    created, _ = _create(healthy_cluster, workflow)
    with pytest.raises(keyquorum.SelfApproval) as e:
        _as(healthy_cluster, analyst).approve_request(created.id, "mine")
    assert e.value.status == 403 and isinstance(e.value, keyquorum.Forbidden)


def test_duplicate_approval(healthy_cluster, workflow):
    _, _, _, dpos = workflow
    created, _ = _create(healthy_cluster, workflow)
    dpo = _as(healthy_cluster, dpos[0])
    dpo.approve_request(created.id, "once")
    with pytest.raises(keyquorum.DuplicateApproval) as e:
        dpo.approve_request(created.id, "twice")
    assert e.value.status == 409 and isinstance(e.value, keyquorum.Conflict)


def test_non_approver(healthy_cluster, workflow):
    _, _, other, _ = workflow
    created, _ = _create(healthy_cluster, workflow)
    with pytest.raises(keyquorum.NotAnApprover) as e:
        _as(healthy_cluster, other).approve_request(created.id, "not mine to judge")
    assert e.value.status == 403


def test_content_mismatch(healthy_cluster, workflow):
    """An approval counts only for the content the approver read."""
    _, _, _, dpos = workflow
    first, _ = _create(healthy_cluster, workflow)
    second, _ = _create(healthy_cluster, workflow, frames=(4,))
    dpo = _as(healthy_cluster, dpos[0])
    read = dpo.decrypt_request(first.id)
    read.id = second.id  # the first request's content, offered for the second
    with pytest.raises(keyquorum.ContentMismatch):
        dpo.approve_request(read, "ok")


def test_execute_before_approval_and_twice_and_by_another(healthy_cluster, workflow):
    _, analyst, other, dpos = workflow
    created, records = _create(healthy_cluster, workflow)
    requester = _as(healthy_cluster, analyst)
    with pytest.raises(keyquorum.NotApproved) as e:
        requester.execute_request(created.id)
    assert e.value.status == 409
    _as(healthy_cluster, dpos[0]).approve_request(created.id, "ok")
    with pytest.raises(keyquorum.NotApproved):  # one of two
        requester.execute_request(created.id)
    _as(healthy_cluster, dpos[2]).approve_request(created.id, "ok")
    with pytest.raises(keyquorum.NotRequester) as e:
        _as(healthy_cluster, other).execute_request(created.id)
    assert e.value.status == 403
    assert [r.record for r in requester.execute_request(created.id)] == records
    with pytest.raises(keyquorum.AlreadyExecuted) as e:
        requester.execute_request(created.id)
    assert e.value.status == 409


def test_deny_closes(healthy_cluster, workflow):
    _, analyst, _, dpos = workflow
    created, _ = _create(healthy_cluster, workflow)
    after = _as(healthy_cluster, dpos[0]).deny_request(created.id, "no legal basis")
    assert after.state == "denied" and [(r.client, r.comment) for r in after.refusals] == [(dpos[0].name, "no legal basis")]
    with pytest.raises(keyquorum.RequestDenied):
        _as(healthy_cluster, dpos[1]).approve_request(created.id, "too late")
    with pytest.raises(keyquorum.RequestDenied):
        _as(healthy_cluster, analyst).execute_request(created.id)
    assert created.id in [r.id for r in _as(healthy_cluster, dpos[2]).decrypt_requests("denied")]


def test_no_such_request_and_bad_state(healthy_cluster, workflow):
    _, analyst, _, _ = workflow
    c = _as(healthy_cluster, analyst)
    # An unknown id is 404 `no_such_request` for reads and steps alike; NoSuchRequest derives
    # from NotFound, so `except NotFound` covers it too.
    with pytest.raises(keyquorum.NoSuchRequest) as e:
        c.decrypt_request("0" * 32)
    assert e.value.status == 404
    ghost = keyquorum.DecryptRequestInfo(id="0" * 32, content_sha256="0" * 64)
    with pytest.raises(keyquorum.NoSuchRequest):
        _as(healthy_cluster, workflow[3][0]).approve_request(ghost, "who?")
    e = keyquorum.errors.from_response(404, {"error": "no_such_request", "message": "m"}, None, "u")
    assert type(e) is keyquorum.NoSuchRequest and isinstance(e, keyquorum.NotFound)
    with pytest.raises(ValueError):
        c.decrypt_requests("nearly")


def test_policy_fields_round_trip(healthy_cluster, workflow):
    info, _, _, dpos = workflow
    admin = healthy_cluster.client()
    name = unique("reid-open-deny")
    policy = keyquorum.KeyPolicy(decrypt=["admin"], read=["*"], manage=["admin"], approve=[d.name for d in dpos],
                                 decrypt_approvals=1, deny_closes=False, request_ttl_seconds=600)
    created = admin.create_key(name, "hpke-x25519", 2, policy=policy)
    assert created.policy.deny_closes is False and created.policy.request_ttl_seconds == 600
    # With deny_closes false a refusal is recorded and an approval still counts.
    sealed = keyquorum.seal_records(created, [{"video": "v", "frame": 1}])
    req = admin.create_decrypt_request(name, sealed, "audit sample")
    assert _as(healthy_cluster, dpos[0]).deny_request(req.id, "no").state == "pending"
    assert _as(healthy_cluster, dpos[1]).approve_request(req.id, "yes").state == "approved"
    assert [r.record for r in admin.execute_request(req.id)] == [{"video": "v", "frame": 1}]


def test_request_expired(healthy_cluster, workflow):
    _, _, _, dpos = workflow
    admin = healthy_cluster.client()
    name = unique("reid-short-lived")
    policy = keyquorum.KeyPolicy(decrypt=["admin"], read=["*"], manage=["admin"], approve=[d.name for d in dpos],
                                 decrypt_approvals=1, request_ttl_seconds=1)
    info = admin.create_key(name, "hpke-x25519", 2, policy=policy)
    req = admin.create_decrypt_request(name, keyquorum.seal_records(info, [{"video": "v", "frame": 1}]), "late")
    dpo = _as(healthy_cluster, dpos[0])
    wait_until("the request to expire", lambda: dpo.decrypt_request(req.id).state == "expired", timeout=30, every=0.2)
    with pytest.raises(keyquorum.RequestExpired) as e:
        dpo.approve_request(req.id, "too late")
    assert e.value.status == 409
    assert req.id in [r.id for r in dpo.decrypt_requests("expired")]


def test_items_without_labels(healthy_cluster, workflow):
    """API items (no video or frame) go as they are; they open to index and base64 plaintext."""
    info, analyst, _, dpos = workflow
    sealed = keyquorum.seal_records(info, [{"video": "raw", "frame": 5}])
    item = keyquorum.records.ciphertext_item(sealed[0])
    created = _as(healthy_cluster, analyst).create_decrypt_request(info.name, [item], "raw item")
    shown = _as(healthy_cluster, dpos[0]).decrypt_request(created.id)
    assert shown.labels[0].video is None and shown.labels[0].frame is None and shown.labels[0].sha256
    for d in dpos[1:]:
        _as(healthy_cluster, d).approve_request(created.id, "ok")
    [result] = _as(healthy_cluster, analyst).execute_request(created.id)
    assert result.ok and result.record["index"] == 0
    opened = keyquorum.records.open_plaintext(sealed[0], keyquorum.records.unb64(result.record["plaintext"]))
    assert opened == {"video": "raw", "frame": 5}
