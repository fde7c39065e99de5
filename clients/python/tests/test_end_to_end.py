"""End-to-end decryption against the real cluster (DESIGN.md §6): holders seal their partials
and proofs to this client's reply key, the client checks and combines, no node sees a
plaintext. Records sealed by Python and by the CLI; a key whose policy demands end to end;
a holder whose proof or partial is bad is named and reported; coordinator-combine on request."""

from __future__ import annotations

import json
import re

import ecies
import pytest

import keyquorum
from keyquorum import dleq
from keyquorum.combine import group_of
from keyquorum.e2e import reply_context
from keyquorum.records import b64, unb64
from conftest import unique


def detections(video="e2e", frames=range(3)):
    return [{"video": video, "frame": f, "boxes": [[f, 2, 3, 4]], "label": "face"} for f in frames]


@pytest.fixture(scope="module")
def hpke_key(cluster):
    return cluster.client().create_key(unique("e2e-hpke"), "hpke-x25519", 2)


@pytest.fixture(scope="module")
def ecies_key(cluster):
    return cluster.client().create_key(unique("e2e-ecies"), "ecies-secp256k1", 2)


@pytest.fixture(params=["hpke", "ecies"])
def key(request, hpke_key, ecies_key):
    return hpke_key if request.param == "hpke" else ecies_key


class Recorder(keyquorum.EndToEnd):
    """End to end, keeping each round (its reply key) for the tamperer below."""

    def __init__(self):
        self.rounds = []

    def begin(self, key, items, client, exclude=()):
        r = super().begin(key, items, client, exclude)
        self.rounds.append(r)
        return r


class Tamperer:
    """Rewrites the relayed answers on their way to the client, as a compromised holder or
    relay would send them: ``change(node, item, plaintext) -> plaintext`` for the opened
    partial, resealed under the same binding. Also records the decrypt reports and answers."""

    def __init__(self, client, mode, key, change, nodes):
        self.client, self.mode, self.key, self.change, self.nodes = client, mode, key, change, set(nodes)
        self.reports, self.requests = [], []
        self.original = client._exchange
        client._exchange = self

    def __call__(self, url, method, path, body, authorization, approvals=()):
        answer = self.original(url, method, path, body, authorization, approvals)
        if path.endswith("/decrypt/report"):
            self.reports.append((json.loads(body), answer))
        elif path.endswith("/decrypt") and answer.get("sealed_partials"):
            self.requests.append(json.loads(body))
            nonce = re.search(r"nonce=([^,]+)", authorization).group(1)
            reply = self.mode.rounds[-1].reply
            for holder in answer["sealed_partials"]:
                if holder["node"] not in self.nodes:
                    continue
                for i, item in enumerate(holder["items"]):
                    context = reply_context(self.key.name, self.client.client_key.name, nonce, holder["node"], i)
                    plain = reply.open(context, unb64(item["sealed"]))
                    assert plain is not None, "the node's sealed partial opens with the reply key"
                    item["sealed"] = b64(reply.seal(context, self.change(plain)))
        return answer


def test_python_sealed_records_open_end_to_end(healthy_cluster, key):
    c = healthy_cluster.client()
    records = detections()
    sealed = keyquorum.seal_records(key, records)
    out = c.decrypt_items(key.name, [keyquorum.records.ciphertext_item(s) for s in sealed])
    assert out.mode == "end_to_end" and len(out.contributors) == 2 and out.culprits == []
    assert [keyquorum.records.open_plaintext(s, p) for s, p in zip(sealed, out.results)] == records
    # open_records goes end to end by default too.
    assert [r.record for r in c.open_records(key.name, sealed)] == records


@pytest.mark.parametrize("aead", ["aes-256-gcm", "chacha20-poly1305"])
def test_every_hpke_aead_opens_end_to_end(healthy_cluster, hpke_key, aead):
    records = detections("aead", range(2))
    sealed = keyquorum.seal_records(hpke_key, records, aead=aead)
    out = healthy_cluster.client().decrypt_items(hpke_key.name, [keyquorum.records.ciphertext_item(s) for s in sealed])
    assert out.mode == "end_to_end"
    assert [json.loads(p) for p in out.results] == records


def test_cli_sealed_records_open_end_to_end(healthy_cluster, key):
    records = detections("cli-e2e")
    out = healthy_cluster.run("encrypt", "--public-key", key.public_key,
                              input="".join(json.dumps(r) + "\n" for r in records))
    assert out.returncode == 0, out.stderr
    sealed = [json.loads(line) for line in out.stdout.splitlines()]
    results = healthy_cluster.client().open_records(key.name, sealed, mode=keyquorum.EndToEnd())
    assert [r.record for r in results] == records


def test_raw_items_with_info_and_aad_open_end_to_end(healthy_cluster, hpke_key, ecies_key):
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId

    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    enc, sender = suite.create_sender_context(
        suite.kem.deserialize_public_key(bytes.fromhex(hpke_key.public_key)), info=b"ctx")
    ct = sender.seal(b"plate AB-123", aad=b"crop")
    good = {"enc": b64(enc), "ciphertext": b64(ct), "info": b64(b"ctx"), "aad": b64(b"crop")}
    c = healthy_cluster.client()
    out = c.decrypt_items(hpke_key.name, [good, dict(good, aad=b64(b"other")), dict(good, enc=b64(bytes(32)))],
                          mode=keyquorum.EndToEnd())
    assert out.results[0] == b"plate AB-123"
    assert "does not open" in out.results[1]
    assert isinstance(out.results[2], str) and out.culprits == []  # a small-order enc: nobody to blame
    blob = ecies.encrypt(ecies_key.public_key, b"ZZ-999")
    assert c.decrypt(ecies_key.name, [{"ciphertext": b64(blob)}], mode=keyquorum.EndToEnd()) == [b"ZZ-999"]


def test_a_key_whose_policy_demands_end_to_end_opens_from_python(healthy_cluster):
    c = healthy_cluster.client()
    info = c.create_key(unique("e2e-only"), "hpke-x25519", 2,
                        policy={"decrypt": ["*"], "read": ["*"], "decrypt_mode": "end_to_end"})
    assert c.key(info.name).policy.decrypt_mode == "end_to_end"
    records = detections("strict")
    sealed = keyquorum.seal_records(info, records)
    assert [r.record for r in c.open_records(info.name, sealed)] == records
    with pytest.raises(keyquorum.Forbidden, match="end-to-end"):
        c.open_records(info.name, sealed, mode=keyquorum.CoordinatorCombines())


def test_coordinator_combine_on_request(healthy_cluster, key):
    c = healthy_cluster.client()
    records = detections("coord")
    sealed = keyquorum.seal_records(key, records)
    out = c.decrypt_items(key.name, [keyquorum.records.ciphertext_item(s) for s in sealed],
                          mode=keyquorum.CoordinatorCombines())
    assert out.mode == "coordinator" and len(out.contributors) >= 2
    assert [keyquorum.records.open_plaintext(s, p) for s, p in zip(sealed, out.results)] == records
    results = c.open_records(key.name, sealed, mode=keyquorum.CoordinatorCombines())
    assert [r.record for r in results] == records


def test_a_bearer_token_client_falls_back_to_the_coordinator_mode():
    """Without a client key nothing can bind the seals: Auto picks coordinator-combine."""
    info = keyquorum.KeyInfo(name="k", algorithm="hpke-x25519", threshold=2, participants=[1, 2],
                             group_verifying_key="aa" * 32,
                             verifying_shares=[keyquorum.types.VerifyingShare(n, "bb" * 32) for n in (1, 2)])
    item = keyquorum.types.CiphertextItem(ciphertext="")
    assert "reply_to" not in keyquorum.Auto().begin(info, [item], None).body
    assert "reply_to" in keyquorum.Auto().begin(info, [item], "analyst").body
    old_node = keyquorum.KeyInfo(name="k", algorithm="hpke-x25519", threshold=2, participants=[1, 2])
    assert "reply_to" not in keyquorum.Auto().begin(old_node, [item], "analyst").body


@pytest.mark.parametrize("what", ["proof", "point", "short"])
def test_a_bad_partial_names_its_node_and_is_reported(healthy_cluster, key, what):
    c = healthy_cluster.client()
    mode = Recorder()
    group = group_of(key.algorithm)
    n = dleq.proof_len(group)

    def change(plain):
        if what == "proof":
            return plain[: n - 1] + bytes([plain[n - 1] ^ 1]) + plain[n:]
        if what == "point":  # another valid point, D + G
            return plain[:n] + group.add(group.decode(plain[n:], "D"), group.mul_base(1))
        return plain[:n]  # a holder that sends no point: too short to hold one

    bad = 3
    tamper = Tamperer(c, mode, key, change, [bad])
    records = detections("tamper")
    sealed = keyquorum.seal_records(key, records)
    excluded = []
    results = c.open_records(key.name, sealed, mode=mode, on_excluded=excluded.extend)
    # Three holders answer (t = 2, one spare): the two good ones still open every record.
    assert [r.record for r in results] == records
    assert [e.node for e in excluded] == [bad]
    reason = excluded[0].reason
    assert reason.startswith("item 0: ")
    assert ("too short" if what == "short" else "DLEQ proof does not verify") in reason, reason
    # The node accepted a report naming the culprit for that request's nonce.
    assert len(tamper.reports) == 1
    report, accepted = tamper.reports[0]
    assert [r["node"] for r in report["culprits"]] == [bad] and accepted == {"recorded": True}


def test_too_many_bad_holders_ask_again_without_them(healthy_cluster, hpke_key):
    """Two bad holders of three leave every item short of t: the client asks again without
    them, and then only one holder is left, so the cluster answers quorum_unavailable."""
    c = healthy_cluster.client()
    mode = Recorder()
    group = group_of(hpke_key.algorithm)
    n = dleq.proof_len(group)
    tamper = Tamperer(c, mode, hpke_key, lambda p: p[:n] + group.add(p[n:], group.mul_base(1)), [2, 3])
    sealed = keyquorum.seal_records(hpke_key, detections("short", range(1)))
    with pytest.raises(keyquorum.QuorumUnavailable):
        c.open_records(hpke_key.name, sealed, mode=mode)
    assert len(tamper.requests) == 1 and "exclude" not in tamper.requests[0]
    assert len(mode.rounds) == 2 and mode.rounds[1].body["exclude"] == [2, 3]
    assert sorted(c["node"] for c in tamper.reports[0][0]["culprits"]) == [2, 3]


def test_approved_end_to_end_decryption_with_prepare_and_send(healthy_cluster):
    c = healthy_cluster.client()
    dpos = [healthy_cluster.new_client(unique("dpo")) for _ in range(2)]
    info = c.create_key(unique("e2e-approved"), "ecies-secp256k1", 2, policy={
        "decrypt": ["*"], "read": ["*"], "decrypt_approvals": 2, "approve": [d.name for d in dpos]})
    record = {"video": "cam-2", "frame": 8, "boxes": []}
    sealed = keyquorum.seal_records(info, [record])
    pending = c.prepare_decrypt(info.name, sealed)
    assert "reply_to" in json.loads(pending.body)
    out = c.send_decrypt(pending, [keyquorum.approve(d, pending.approval_request()) for d in dpos])
    assert out.mode == "end_to_end"
    assert keyquorum.records.open_plaintext(sealed[0], out.results[0]) == record


def test_partials_of_refreshed_shares_are_checked_against_the_new_verifying_shares(healthy_cluster):
    """The key is read when the request is prepared; a refresh before it is sent gives every
    holder new shares. Nobody is blamed: the client re-reads the key before naming anyone."""
    c = healthy_cluster.client()
    info = c.create_key(unique("e2e-refresh"), "hpke-x25519", 2)
    record = {"video": "r", "frame": 1}
    sealed = keyquorum.seal_records(info, [record])
    pending = c.prepare_decrypt(info.name, sealed)
    refreshed = c.refresh(info.name)
    assert refreshed.verifying_shares != info.verifying_shares
    out = c.send_decrypt(pending)
    assert out.culprits == [] and out.mode == "end_to_end"
    assert keyquorum.records.open_plaintext(sealed[0], out.results[0]) == record


def test_a_relay_that_duplicates_a_holder_is_refused(healthy_cluster, hpke_key):
    c = healthy_cluster.client()
    original = c._exchange

    def duplicating(url, method, path, body, authorization, approvals=()):
        answer = original(url, method, path, body, authorization, approvals)
        if path.endswith("/decrypt"):
            answer["sealed_partials"].append(answer["sealed_partials"][0])
        return answer

    c._exchange = duplicating
    with pytest.raises(keyquorum.RelayError, match="twice"):
        c.decrypt_items(hpke_key.name, [keyquorum.records.ciphertext_item(s)
                                        for s in keyquorum.seal_records(hpke_key, detections("dup", range(1)))])
