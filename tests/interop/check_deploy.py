"""Checks the deployment files under deploy/ with PyYAML (no Docker or Kubernetes needed):
every file parses, every Kubernetes object names its apiVersion, kind and name, and the
patterns the README promises are there. Exits non-zero with the reason otherwise.

usage: python3 check_deploy.py DEPLOY_DIR
"""
import pathlib
import sys

import yaml

root = pathlib.Path(sys.argv[1])
failures = []


def check(cond, message):
    if not cond:
        failures.append(message)


files = sorted(list(root.rglob("*.yml")) + list(root.rglob("*.yaml")))
check(files, f"no YAML files under {root}")
docs = {}
for path in files:
    try:
        docs[path.relative_to(root).as_posix()] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as e:
        failures.append(f"{path}: {e}")

compose = docs.get("docker-compose.yml", [{}])[0]
services = compose.get("services", {})
check({"init", "node-1", "node-2", "node-3"} <= set(services), f"compose services: {sorted(services)}")
for name in ("node-1", "node-2", "node-3"):
    svc = services.get(name, {})
    check(svc.get("depends_on", {}).get("init", {}).get("condition") == "service_completed_successfully",
          f"compose {name} must wait for init")
    check(any(str(v).endswith(":/var/lib/keyquorum") for v in svc.get("volumes", [])),
          f"compose {name} must mount the data volume")
check("cluster init" in " ".join(map(str, services.get("init", {}).get("command", []))),
      "compose init must run `keyquorum cluster init`")

objects = []
for name, items in docs.items():
    if name.startswith("kubernetes/"):
        for obj in items:
            for field in ("apiVersion", "kind"):
                check(field in obj, f"{name}: an object lacks {field}")
            check(obj.get("metadata", {}).get("name"), f"{name}: a {obj.get('kind')} has no name")
            objects.append((name, obj))


def of_kind(kind, file):
    return [o for n, o in objects if o.get("kind") == kind and n == file]


# (a) sidecar: a Deployment whose pod has the app and keyquorum, its own PVC, a Secret.
deployments = of_kind("Deployment", "kubernetes/sidecar.yaml")
check(len(deployments) == 1, "sidecar.yaml: one Deployment")
pvcs = {o["metadata"]["name"] for o in of_kind("PersistentVolumeClaim", "kubernetes/sidecar.yaml")}
for d in deployments:
    pod = d["spec"]["template"]["spec"]
    containers = pod["containers"]
    check(len(containers) >= 2, "sidecar: app and keyquorum containers")
    kq = [c for c in containers if c["name"] == "keyquorum"]
    check(kq, "sidecar: a container named keyquorum")
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    check(claims and claims <= pvcs, f"sidecar: the pod's claims {claims} must be defined ({pvcs})")
    check(any("secret" in v for v in pod["volumes"]), "sidecar: identity from a Secret")
    env = {e["name"]: e for c in kq for e in c.get("env", [])}
    check("secretKeyRef" in env.get("KEYQUORUM_PASSPHRASE", {}).get("valueFrom", {}),
          "sidecar: KEYQUORUM_PASSPHRASE from a Secret")
    check(d["spec"].get("strategy", {}).get("type") == "Recreate", "sidecar: Recreate strategy")

# (b) StatefulSet with a headless Service and volumeClaimTemplates.
sets = of_kind("StatefulSet", "kubernetes/statefulset.yaml")
check(len(sets) == 1, "statefulset.yaml: one StatefulSet")
headless = {o["metadata"]["name"] for o in of_kind("Service", "kubernetes/statefulset.yaml")
            if o["spec"].get("clusterIP") == "None"}
for s in sets:
    check(s["spec"]["serviceName"] in headless, "StatefulSet serviceName must be a headless Service")
    check(s["spec"].get("volumeClaimTemplates"), "StatefulSet needs volumeClaimTemplates")

if failures:
    sys.exit("\n".join(failures))
print(f"{len(files)} YAML files, {len(objects)} Kubernetes objects: ok")
