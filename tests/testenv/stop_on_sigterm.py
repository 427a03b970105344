"""A pytest plugin: SIGTERM ends a run as Ctrl+C does, so session fixtures still stop what they started.

Without it pytest dies at once: the kernel takes its direct children along (PR_SET_PDEATHSIG), but not
theirs, so a Milvus standalone under its `milvus-server` wrapper lived on, holding port 2380 (seen when
a CI run was stopped with `kill`).
"""

from __future__ import annotations

import signal
from types import FrameType

import pytest


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")
