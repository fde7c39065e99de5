#!/usr/bin/env python3
"""An anonymisation pipeline with keyquorum, end to end.

1. A toy detector finds faces in a few frames of a video and blurs them.
2. The boxes (the re-identification data) are sealed offline to the cluster's HPKE key, each
   bound to its video and frame.
3. The dataset manifest (hashes of the sealed records and of the anonymised frames) is signed
   by a quorum (FROST, plain Ed25519 signature).
4. Later an investigator re-identifies one frame: two data-protection officers approve that one
   request, and the cluster decrypts it. Then the reviewed way: the investigator files a
   decryption request with a reason, each officer reads and approves it on their own client,
   and the investigator executes it once, end to end.
5. Anyone checks the manifest's signature with the public key alone.

Usage:
    python pipeline.py --url http://127.0.0.1:7100 [--url ...] --client-key cluster/admin.key [--out DIR]

The client key must be an admin's (it registers the two officers and creates the keys); the
URLs may also come from KEYQUORUM_URL (comma-separated) and the key from KEYQUORUM_CLIENT_KEY.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import keyquorum


def detect(video: str, frame: int) -> Dict[str, object]:
    """A toy face detector: deterministic boxes per frame."""
    rng = random.Random(f"{video}/{frame}")
    boxes = [[rng.randrange(0, 1800), rng.randrange(0, 1000), 64, 64] for _ in range(rng.randrange(1, 4))]
    return {"video": video, "frame": frame, "label": "face", "boxes": boxes, "score": round(rng.random(), 3)}


def anonymised_frame(video: str, frame: int, boxes: List[List[int]]) -> bytes:
    """Stands in for the blurred frame's bytes."""
    return f"{video}:{frame}:blurred:{json.dumps(boxes)}".encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", help="a node's client URL (repeat for failover)")
    parser.add_argument("--client-key", default=os.environ.get("KEYQUORUM_CLIENT_KEY"))
    parser.add_argument("--ca", default=os.environ.get("KEYQUORUM_CA"))
    parser.add_argument("--out", help="directory for the dataset (default: a new temporary one)")
    parser.add_argument("--frames", type=int, default=5)
    args = parser.parse_args()
    urls = args.url or [u for u in os.environ.get("KEYQUORUM_URL", "").split(",") if u]
    if not urls or not args.client_key:
        parser.error("give --url and --client-key (or KEYQUORUM_URL and KEYQUORUM_CLIENT_KEY)")
    out = Path(args.out or tempfile.mkdtemp(prefix="kq-pipeline-"))
    out.mkdir(parents=True, exist_ok=True)
    run = secrets.token_hex(3)
    kq = keyquorum.Client(urls, client_key=args.client_key, ca=args.ca)

    # Two data-protection officers, each with a key of their own.
    officers = []
    for who in ("dpo-a", "dpo-b"):
        key = keyquorum.ClientKey.generate(f"{who}-{run}")
        (out / f"{key.name}.key").write_text(key.to_file_text())
        kq.add_client(key.name, key.public_hex)
        officers.append(key)
    me = kq.client_key.name  # type: ignore[union-attr]
    manifests = kq.create_key(f"manifests-{run}", "frost-ed25519", 2)
    reid = kq.create_key(
        f"reid-{run}", "hpke-x25519", 2,
        policy={"sign": [], "decrypt": [me], "read": ["*"], "manage": [me],
                "approve": [o.name for o in officers], "decrypt_approvals": 2},
    )
    print(f"keys: {manifests.name} (signs manifests), {reid.name} (re-identification, 2 approvals)")

    # 1-2. Detect, blur, seal the boxes offline.
    video = f"cam-{run}"
    detections = [detect(video, f) for f in range(args.frames)]
    frames = [anonymised_frame(video, d["frame"], d["boxes"]) for d in detections]  # type: ignore[arg-type]
    sealed = keyquorum.seal_records(reid, detections)
    sealed_text = "".join(json.dumps(s) + "\n" for s in sealed)
    (out / "sealed.ndjson").write_text(sealed_text)
    print(f"sealed {len(sealed)} detection records -> {out / 'sealed.ndjson'}")

    # 3. Sign the dataset manifest.
    manifest = json.dumps({
        "video": video,
        "frames": [hashlib.sha256(f).hexdigest() for f in frames],
        "sealed_records_sha256": hashlib.sha256(sealed_text.encode()).hexdigest(),
        "reid_key": reid.name, "reid_public_key": reid.public_key,
    }, sort_keys=True).encode()
    (out / "manifest.json").write_bytes(manifest)
    signature = kq.sign(manifests.name, manifest)
    (out / "manifest.sig").write_text(signature.signature + "\n")
    print(f"manifest signed by nodes {signature.signers}")

    # 4. Later: re-identify frame 2, approved by both officers.
    wanted = min(2, args.frames - 1)
    record = [s for s in sealed if s["frame"] == wanted]
    try:
        kq.open_records(reid.name, record)
        print("error: the cluster decrypted without approvals", file=sys.stderr)
        return 1
    except keyquorum.ApprovalsRequired as e:
        print(f"without approvals: refused ({e.code})")
    [result] = kq.open_records(reid.name, record, approvals=officers)
    if not result.ok or result.record != detections[wanted]:
        print(f"error: frame {wanted} did not re-identify: {result.error}", file=sys.stderr)
        return 1
    assert result.record is not None
    print(f"re-identified frame {wanted} with approvals of {', '.join(o.name for o in officers)}: {result.record['boxes']}")

    # 4b. The reviewed way: a decryption request that officers read and approve, then execute.
    asked = [s for s in sealed if s["frame"] in (0, wanted)]
    created = kq.create_decrypt_request(reid.name, asked, "complaint 17: identify the person in two frames")
    for officer in officers:
        with keyquorum.Client(urls, client_key=officer, ca=args.ca) as dpo:
            shown = dpo.decrypt_request(created.id)
            frames_shown = [label.frame for label in shown.labels]
            dpo.approve_request(shown, f"{officer.name}: reason and frames {frames_shown} checked")
    opened = kq.execute_request(created.id)  # end to end: no node sees the records
    if [r.record for r in opened] != [d for d in detections if d["frame"] in (0, wanted)]:
        print(f"error: request {created.id} did not open: {[r.error for r in opened]}", file=sys.stderr)
        return 1
    print(f"request {created.id}: approved by both officers, executed end to end, {len(opened)} records opened")

    # 5. Anyone verifies the manifest with the public key alone (and the cluster agrees).
    manifest_on_disk = (out / "manifest.json").read_bytes()
    sig_on_disk = (out / "manifest.sig").read_text().strip()
    local = keyquorum.verify_local(manifests.public_key, manifest_on_disk, sig_on_disk)
    remote = kq.verify(manifests.name, manifest_on_disk, sig_on_disk)
    tampered = keyquorum.verify_local(manifests.public_key, manifest_on_disk + b" ", sig_on_disk)
    print(f"manifest signature: local {local}, cluster {remote}, tampered copy {tampered}")
    if not (local and remote and not tampered):
        return 1
    print("pipeline ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
