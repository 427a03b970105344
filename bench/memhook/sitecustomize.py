"""Bench only (`bench.memory --tracemalloc`): on SIGUSR2, dump a tracemalloc snapshot of this process.

Put on PYTHONPATH of the operator process by the bench; never shipped, never imported by the operator.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

_OUT = os.environ.get("MILVUSOPS_BENCH_SNAPSHOTS", "")


def _dump(signum: int, frame: FrameType | None) -> None:
    count = len(list(Path(_OUT).glob("snapshot-*.pickle")))
    tracemalloc.take_snapshot().dump(str(Path(_OUT) / f"snapshot-{count}.pickle"))
    (Path(_OUT) / f"snapshot-{count}.done").touch()  # the bench waits for this, not for a half-written pickle


if _OUT and tracemalloc.is_tracing():
    signal.signal(signal.SIGUSR2, _dump)
