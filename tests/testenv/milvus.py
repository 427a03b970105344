"""A real Milvus 2.3.5 standalone from the PyPI package `milvus`, in its own cached virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pymilvus import MilvusClient

from .cache import cache_root, locked
from .processes import Process, free_port, wait_until

MILVUS_VERSION = "2.3.5"
# the standalone's etcd session TTL (Milvus's default 30 s), as the cluster's: after a SIGKILL the restarted
# query coordinator waits for the killed sessions to expire before it reloads, so each kill cost ~30 s of it
SESSION_TTL_SECONDS = 10


MILVUS_LITE_VERSION = "3.2.2"
PYMILVUS_VERSION = "3.0.2"


def _venv(name: str, *requirements: str) -> Path:
    """A virtualenv of its own in the cache, made once per set of pinned requirements."""
    venv = cache_root() / name / "venv"
    ready = venv / ".installed"
    with locked(f"venv-{name}"):
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *requirements], check=True)
            ready.touch()
    return venv


def ensure_server_python() -> Path:
    """The Python of the venv that holds the PyPI package `milvus` (its `milvus-server` wrapper)."""
    return _venv(f"milvus-{MILVUS_VERSION}", f"milvus=={MILVUS_VERSION}") / "bin" / "python"


class Server:
    """A Milvus-speaking server process on a free loopback port; ready when a real client call answers."""

    name = "milvus"
    authorization = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    @property
    def root_token(self) -> str:
        return "root:Milvus"

    def client(self, timeout: float = 10) -> MilvusClient:
        """A pymilvus client with the root credentials (when authorization is on)."""
        return MilvusClient(uri=self.uri, token=self.root_token if self.authorization else "", timeout=timeout)

    def _launch(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = Process(self.name, argv, self.workdir / f"{self.name}.log", env=env)
        wait_until(self._ready, timeout, self.name, interval=0.5)

    def _ready(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"{self.name} exited:\n{self.process.log_tail()}")
        client = self.client(timeout=3)
        try:
            client.list_collections()
        finally:
            client.close()
        return True

    def stop(self, grace: float = 15) -> None:
        if self.process is not None:
            self.process.stop(grace=grace)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None


class MilvusServer(Server):
    """Milvus 2.3.5 standalone. Its embedded etcd gets free client and peer ports from an embed config
    (etcd's defaults, 2379 and 2380, are fixed), so several run side by side: one per test worker,
    beside a demo or a benchmark."""

    def __init__(self, workdir: Path, authorization: bool = True) -> None:
        super().__init__(workdir)
        self.authorization = authorization
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()

    def start(self, timeout: float = 180) -> None:
        """Start (or restart, on the same ports and data)."""
        python = ensure_server_python()
        # -P: the launcher's folder holds our own milvus.py, which must not shadow the wrapper package
        argv = [
            str(python),
            "-P",
            str(Path(__file__).with_name("milvus_launcher.py")),
            "--data",
            str(self.workdir / "data"),
        ]
        argv += ["--proxy-port", str(self.port), "--etcd-port", str(self.etcd_port)]
        if self.authorization:
            argv += ["--authorization-enabled", "true"]
        # Milvus reads a variable named like a config key: COMMON_SESSION_TTL is common.session.ttl
        env = {**os.environ, "ETCD_CONFIG_PATH": str(self._embed_etcd_config())}
        env.setdefault("COMMON_SESSION_TTL", str(SESSION_TTL_SECONDS))
        # the wrapper picks its components' ports by probing from fixed defaults: one start at a time
        with locked("milvus-standalone-start"):
            self._launch(argv, timeout, env=env)

    def _embed_etcd_config(self) -> Path:
        """Milvus reads ETCD_CONFIG_PATH as etcd.config.path: an etcd embed config for its in-process etcd."""
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.etcd_peer_port}"
        path = self.workdir / "embed-etcd.yaml"
        self.workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n"
        )
        return path


class MilvusLiteServer(Server):
    """Milvus Lite's gRPC server: a different engine that rejects partition-level load/release."""

    name = "milvus-lite"

    def start(self, timeout: float = 120) -> None:
        requirements = (f"milvus-lite=={MILVUS_LITE_VERSION}", f"pymilvus=={PYMILVUS_VERSION}")
        python = _venv(f"milvus-lite-{MILVUS_LITE_VERSION}", *requirements) / "bin" / "python"
        argv = [str(python), "-m", "milvus_lite", "server", "--data-dir", str(self.workdir / "data")]
        self._launch([*argv, "--host", "127.0.0.1", "--port", str(self.port)], timeout)
