"""A real Milvus 2.3.5 standalone from the PyPI package `milvus`, in its own cached virtualenv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pymilvus import MilvusClient

from .cache import cache_root
from .processes import Process, free_port, wait_until

MILVUS_VERSION = "2.3.5"


def ensure_server_command() -> Path:
    """The `milvus-server` wrapper, installed once per version into a venv of its own."""
    venv = cache_root() / f"milvus-{MILVUS_VERSION}" / "venv"
    command = venv / "bin" / "milvus-server"
    if not command.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"milvus=={MILVUS_VERSION}"],
            check=True,
        )
    return command


class MilvusServer:
    def __init__(self, workdir: Path, authorization: bool = True) -> None:
        self.workdir = workdir
        self.authorization = authorization
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    @property
    def root_token(self) -> str:
        return "root:Milvus"

    def start(self, timeout: float = 180) -> None:
        command = ensure_server_command()
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(command),
            "--data",
            str(self.workdir / "data"),
            "--proxy-port",
            str(self.port),
            "--etcd-port",
            str(free_port()),
        ]
        if self.authorization:
            argv += ["--authorization-enabled", "true"]
        self.process = Process("milvus", argv, self.workdir / "milvus.log")
        wait_until(self._ready, timeout, "milvus", interval=0.5)

    def client(self, timeout: float = 10) -> MilvusClient:
        """A pymilvus client with the root credentials (when authorization is on)."""
        return MilvusClient(uri=self.uri, token=self.root_token if self.authorization else "", timeout=timeout)

    def _ready(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"milvus exited:\n{self.process.log_tail()}")
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
