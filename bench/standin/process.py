"""The scale stand-in (not a Milvus) as a process of its own, started and stopped like the real server."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.testenv.milvus import Server


class StandInServer(Server):
    name = "standin"
    authorization = True  # clients send a token as to the real server; the stand-in accepts any

    def __init__(self, workdir: Path, seed: int = 1, ddl_concurrency: int = 1) -> None:
        super().__init__(workdir)
        self.seed = seed
        self.ddl_concurrency = ddl_concurrency  # 1: one DDL request at a time, as Milvus 2.3.5

    def start(self, timeout: float = 30) -> None:
        argv = [sys.executable, "-m", "bench.standin.server", "--port", str(self.port), "--seed", str(self.seed)]
        self._launch([*argv, "--ddl-concurrency", str(self.ddl_concurrency)], timeout)
