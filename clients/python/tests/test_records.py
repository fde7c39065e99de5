import json

import pytest

import keyquorum
from conftest import unique


def detections(video="cam-1", frames=range(4)):
    return [{"video": video, "frame": f, "boxes": [[10 * f, 20, 64, 64]], "label": "face", "id": f"p{f}"} for f in frames]


@pytest.fixture(scope="module")
def hpke_key(cluster):
    return cluster.client().create_key(unique("reid-hpke"), "hpke-x25519", 2)


@pytest.fixture(scope="module")
def ecies_key(cluster):
    return cluster.client().create_key(unique("reid-ecies"), "ecies-secp256k1", 2)


@pytest.mark.parametrize("aead", ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"])
def test_hpke_records_round_trip(healthy_cluster, hpke_key, aead):
    c = healthy_cluster.client()
    records = detections()
    sealed = keyquorum.seal_records(hpke_key, records, aead=aead)
    assert [s["frame"] for s in sealed] == [0, 1, 2, 3] and all(s["aead"] == aead for s in sealed)
    assert all("boxes" not in json.dumps(s) for s in sealed)
    seen = []
    results = c.open_records(hpke_key.name, sealed, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert [r.record for r in results] == records
    assert seen == [(3, 4), (4, 4)]


def test_ecies_records_round_trip(healthy_cluster, ecies_key):
    c = healthy_cluster.client()
    records = detections("plates", range(3))
    sealed = keyquorum.seal_records(ecies_key.public_key, records)  # bare hex: 33 bytes -> ECIES
    assert all(s["algorithm"] == "ecies-secp256k1" and "enc" not in s for s in sealed)
    assert [r.record for r in c.open_records(ecies_key.name, sealed)] == records


@pytest.mark.parametrize("which", ["hpke", "ecies"])
def test_one_bad_record_does_not_fail_the_batch(healthy_cluster, hpke_key, ecies_key, which):
    key = hpke_key if which == "hpke" else ecies_key
    c = healthy_cluster.client()
    records = detections(frames=range(6))
    sealed = keyquorum.seal_records(key, records)
    moved = dict(sealed[1], frame=99)                      # moved to another frame
    garbage = dict(sealed[2], ciphertext="%%%not-base64")  # malformed
    other_key = keyquorum.seal_records(ecies_key if which == "hpke" else hpke_key, records[3:4])[0]
    truncated = dict(sealed[4], ciphertext=sealed[4]["ciphertext"][:-8])  # tag broken
    batch = [sealed[0], moved, garbage, other_key, truncated, sealed[5]]
    results = c.open_records(key.name, batch, batch_size=10)
    assert [r.ok for r in results] == [True, False, False, False, False, True]
    assert results[0].record == records[0] and results[5].record == records[5]
    assert all(r.error for r in results[1:5]), [r.error for r in results]
    assert "base64" in results[2].error and "sealed for" in results[3].error


def test_records_need_their_place():
    with pytest.raises(keyquorum.RecordError):
        keyquorum.seal_records("11" * 32, [{"video": "v"}])
    with pytest.raises(keyquorum.RecordError):
        keyquorum.seal_records("11" * 32, [{"video": "v", "frame": -1}])
    with pytest.raises(keyquorum.RecordError):
        keyquorum.seal_records("11" * 20, [{"video": "v", "frame": 1}])
    assert keyquorum.binding("cam-1", 12) != keyquorum.binding("cam-11", 2)


def ndjson(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("which", ["hpke", "ecies"])
def test_python_sealed_records_open_with_the_cli(healthy_cluster, hpke_key, ecies_key, which, tmp_path):
    key = hpke_key if which == "hpke" else ecies_key
    records = detections("cli-in", range(3))
    path = tmp_path / "sealed.ndjson"
    path.write_text(ndjson(keyquorum.seal_records(key, records)))
    out = healthy_cluster.cli("decrypt", "--key", key.name, "--in", str(path))
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == records
    # And a record moved to another frame does not open there (exit code 1).
    moved = dict(keyquorum.seal_records(key, records[:1])[0], frame=7)
    path.write_text(ndjson([moved]))
    out = healthy_cluster.cli("decrypt", "--key", key.name, "--in", str(path))
    assert out.returncode == 1 and out.stdout.strip() == ""


@pytest.mark.parametrize("which", ["hpke", "ecies"])
def test_cli_sealed_records_open_in_python(healthy_cluster, hpke_key, ecies_key, which):
    key = hpke_key if which == "hpke" else ecies_key
    records = detections("cli-out", range(3))
    out = healthy_cluster.run("encrypt", "--public-key", key.public_key, input=ndjson(records))
    assert out.returncode == 0, out.stderr
    sealed = [json.loads(line) for line in out.stdout.splitlines()]
    assert [s["algorithm"] for s in sealed] == [key.algorithm] * 3
    # Same shape as what Python seals: {"video", "frame", "algorithm", "enc"?, "ciphertext", "aead"?}.
    assert set(sealed[0]) == set(keyquorum.seal_records(key, records[:1])[0])
    results = healthy_cluster.client().open_records(key.name, sealed)
    assert [r.error for r in results] == [None] * 3
    assert [r.record for r in results] == records


def test_decrypt_raw_items_with_info_and_aad(healthy_cluster, hpke_key, ecies_key):
    """``decrypt`` takes the API's own items: any info and aad, as other HPKE senders use them."""
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId
    import ecies

    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
    enc, sender = suite.create_sender_context(suite.kem.deserialize_public_key(bytes.fromhex(hpke_key.public_key)),
                                              info=b"ctx")
    ct = sender.seal(b"plate AB-123", aad=b"crop")
    b64 = keyquorum.records.b64
    items = [
        {"enc": b64(enc), "ciphertext": b64(ct), "info": b64(b"ctx"), "aad": b64(b"crop"), "aead": "chacha20-poly1305"},
        {"enc": b64(enc), "ciphertext": b64(ct), "info": b64(b"other"), "aad": b64(b"crop"), "aead": "chacha20-poly1305"},
    ]
    out = healthy_cluster.client().decrypt(hpke_key.name, items)
    assert out[0] == b"plate AB-123" and isinstance(out[1], str) and out[1]
    blob = ecies.encrypt(ecies_key.public_key, b"ZZ-999")
    assert healthy_cluster.client().decrypt(ecies_key.name, [{"ciphertext": b64(blob)}]) == [b"ZZ-999"]
