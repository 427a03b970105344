"""A local OCI registry for the release tests: go-containerregistry's `crane registry serve`, in memory, on loopback."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from . import gobins
from .processes import Process, free_port, wait_until


class Registry:
    """Plain HTTP on 127.0.0.1 (clients need --tls-verify=false / --plain-http / --insecure, loopback only)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self, timeout: float = 30) -> None:
        crane = gobins.build("crane")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(crane), "registry", "serve", "--address", self.address]
        self.process = Process("registry", argv, self.workdir / "registry.log")
        wait_until(self._serving, timeout, "crane registry serve")

    def _serving(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"crane registry exited:\n{self.process.log_tail()}")
        try:  # the distribution API's base endpoint answers 200 once it serves
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def crane(self, *args: str) -> str:
        """A crane client command against this registry (plain HTTP)."""
        argv = [str(gobins.build("crane")), *args, "--insecure"]
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)
