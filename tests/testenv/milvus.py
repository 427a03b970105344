"""A real Milvus 2.3.5 standalone from the PyPI package `milvus`, in its own cached virtualenv."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path
from typing import IO

from pymilvus import MilvusClient

from .cache import cache_root
from .processes import Process, free_port, wait_until

MILVUS_VERSION = "2.3.5"


MILVUS_LITE_VERSION = "3.2.2"
PYMILVUS_VERSION = "3.0.2"


def _venv(name: str, *requirements: str) -> Path:
    """A virtualenv of its own in the cache, made once per set of pinned requirements."""
    venv = cache_root() / name / "venv"
    ready = venv / ".installed"
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

    def _launch(self, argv: list[str], timeout: float) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = Process(self.name, argv, self.workdir / f"{self.name}.log")
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

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None


class MilvusServer(Server):
    """Milvus 2.3.5 standalone; its embedded etcd's peer port 2380 is fixed, so one runs at a time."""

    def __init__(self, workdir: Path, authorization: bool = True) -> None:
        super().__init__(workdir)
        self.authorization = authorization
        self.etcd_port = free_port()
        self._slot: IO[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        """Start (or restart, on the same port and data) once this process holds the machine's Milvus slot."""
        self._take_slot()
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
        self._launch(argv, timeout)

    def _take_slot(self) -> None:
        """Wait for any other Milvus 2.3.5 of this machine (tests, demo, bench) to stop: port 2380 is fixed."""
        if self._slot is not None:
            return
        path = cache_root() / "milvus-2380.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        slot = open(path, "wb")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another Milvus 2.3.5 on this machine to stop ({path})", file=sys.stderr, flush=True)
            fcntl.flock(slot, fcntl.LOCK_EX)
        self._slot = slot

    def release(self) -> None:
        """Stop the server and give the machine's Milvus slot to whoever waits for it."""
        self.stop()
        if self._slot is not None:
            self._slot.close()
            self._slot = None


class MilvusLiteServer(Server):
    """Milvus Lite's gRPC server: a different engine that rejects partition-level load/release."""

    name = "milvus-lite"

    def start(self, timeout: float = 120) -> None:
        requirements = (f"milvus-lite=={MILVUS_LITE_VERSION}", f"pymilvus=={PYMILVUS_VERSION}")
        python = _venv(f"milvus-lite-{MILVUS_LITE_VERSION}", *requirements) / "bin" / "python"
        argv = [str(python), "-m", "milvus_lite", "server", "--data-dir", str(self.workdir / "data")]
        self._launch([*argv, "--host", "127.0.0.1", "--port", str(self.port)], timeout)
