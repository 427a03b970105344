"""Bench only (`bench.scenarios.memory --tracemalloc`): SIGUSR2 starts tracemalloc, the next SIGUSR2 dumps a snapshot.

Put on PYTHONPATH of the operator process by the bench; never shipped, never imported by the operator.
Tracing starts late on purpose: from the start it makes the imports minutes slower, and the bench wants
only what was allocated between two numbers of resources and is still held.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

_OUT = os.environ.get("MILVUSOPS_BENCH_SNAPSHOTS", "")
_FRAMES = int(os.environ.get("MILVUSOPS_BENCH_TRACEMALLOC_FRAMES", "1"))


def _toggle(signum: int, frame: FrameType | None) -> None:
    if not tracemalloc.is_tracing():
        tracemalloc.start(_FRAMES)
        (Path(_OUT) / "started").touch()
        return
    tracemalloc.take_snapshot().dump(str(Path(_OUT) / "snapshot.pickle"))
    tracemalloc.stop()
    (Path(_OUT) / "snapshot.done").touch()  # the bench waits for this, not for a half-written pickle


if _OUT:
    signal.signal(signal.SIGUSR2, _toggle)
