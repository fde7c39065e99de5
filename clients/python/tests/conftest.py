"""A real 3-node cluster from the debug binary, shared by the whole session."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest
import requests

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import keyquorum  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("KEYQUORUM_BIN", PACKAGE / "../../target/debug/keyquorum")).resolve()
NODES = 3


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0, every: float = 0.1) -> None:
    """Polls ``check`` until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - remembered for the failure message
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")


def _ports_free(base: int) -> bool:
    for port in range(base, base + 2 * NODES):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Cluster:
    def __init__(self, directory: Path):
        self.dir = directory
        for _ in range(50):
            base = random.randrange(20000, 32000 - 2 * NODES, 2)
            if _ports_free(base):
                break
        else:
            raise RuntimeError("no free ports in 20000-32000")
        self.base = base
        self.urls = [f"http://127.0.0.1:{base + 2 * i}" for i in range(NODES)]
        self.admin_key = directory / "admin.key"
        self.procs: List[Optional[subprocess.Popen]] = [None] * NODES
        self.run("cluster", "init", "--nodes", str(NODES), "--dir", str(directory), "--base-port", str(base),
                 "--passphrase-files")
        self.token = (directory / "admin.token").read_text().strip()

    def run(self, *args: str, input: Optional[str] = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN), *args], input=input, capture_output=True, text=True, timeout=timeout)

    def cli(self, *args: str, node: int = 1, input: Optional[str] = None) -> subprocess.CompletedProcess:
        """A CLI command against node ``node`` (1-based), signed with the admin key."""
        return self.run(*args, "--url", self.urls[node - 1], "--client-key", str(self.admin_key), input=input)

    def passphrase(self, node: int) -> str:
        return (self.dir / f"node-{node}" / "passphrase").read_text().strip()

    def start(self, node: int) -> None:
        log = open(self.dir / f"node-{node}.log", "ab")
        self.procs[node - 1] = subprocess.Popen(
            [str(BIN), "serve", "--config", str(self.dir / f"node-{node}.toml")],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KEYQUORUM_LOG": "warn"},
        )

    def healthy(self, node: int) -> bool:
        try:
            r = requests.get(self.urls[node - 1] + "/v1/health", timeout=2)
            return r.status_code == 200 and r.json().get("status") == "ok"
        except requests.RequestException:
            return False

    def ready(self, node: int) -> bool:
        """Healthy and caught up on the admin log (serves key operations)."""
        if not self.healthy(node):
            return False
        r = requests.get(self.urls[node - 1] + "/v1/status", headers={"Authorization": f"Bearer {self.token}"}, timeout=2)
        return r.status_code == 200 and r.json().get("admin_caught_up", True) and not r.json()["sealed"]

    def wait_ready(self, node: int, timeout: float = 60) -> None:
        proc = self.procs[node - 1]
        def check() -> bool:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"node {node} exited: {(self.dir / f'node-{node}.log').read_text()[-2000:]}")
            return self.ready(node)
        wait_until(f"node {node} to be ready", check, timeout)

    def stop(self, node: int) -> None:
        proc = self.procs[node - 1]
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            self.procs[node - 1] = None
        wait_until(f"node {node} to stop answering", lambda: not self.healthy(node), 10)

    def restart(self, node: int) -> None:
        self.start(node)
        self.wait_ready(node)

    def unseal(self, node: int) -> None:
        admin = self.client(node)
        admin.unseal(self.passphrase(node))
        self.wait_ready(node)

    def client(self, *nodes: int, **kw) -> keyquorum.Client:
        urls = [self.urls[n - 1] for n in (nodes or range(1, NODES + 1))]
        kw.setdefault("client_key", self.admin_key)
        kw.setdefault("timeout", 30)
        return keyquorum.Client(urls, **kw)

    def new_client(self, name: str, roles=()) -> keyquorum.ClientKey:
        """Registers a fresh client key on every node and returns it (its file is DIR/NAME.key)."""
        key = keyquorum.ClientKey.generate(name)
        path = self.dir / f"{name}.key"
        path.write_text(key.to_file_text())
        path.chmod(0o600)
        self.client().add_client(name, key.public_hex, roles)
        return key

    def stop_all(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if not BIN.exists():
        pytest.fail(f"no keyquorum binary at {BIN}: build it (cargo build) or set KEYQUORUM_BIN")
    c = Cluster(tmp_path_factory.mktemp("cluster") / "c")
    try:
        for i in range(1, NODES + 1):
            c.start(i)
        for i in range(1, NODES + 1):
            c.wait_ready(i)
        yield c
    finally:
        c.stop_all()


@pytest.fixture()
def healthy_cluster(cluster: Cluster):
    """The cluster, every node up and unsealed before and after the test."""
    for i in range(1, NODES + 1):
        if cluster.procs[i - 1] is None:
            cluster.restart(i)
    yield cluster
    for i in range(1, NODES + 1):
        if cluster.procs[i - 1] is None:
            cluster.restart(i)
        elif not cluster.ready(i):
            try:
                cluster.unseal(i)
            except keyquorum.KeyquorumError:
                pass
            cluster.wait_ready(i)


_counter = [0]


def unique(prefix: str) -> str:
    _counter[0] += 1
    return f"{prefix}-{os.getpid()}-{_counter[0]}"
