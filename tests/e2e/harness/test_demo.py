"""`python -m tests.testenv demo` stops everything it started, however it is ended.

The demo runs with --control-plane-only (etcd + kube-apiserver, the same code path without Milvus and the
operator) and stdout to a pipe, as in `make demo 2>&1 | tee demo.log`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import wait_for
from tests.testenv.processes import alive, descendants

ROOT = Path(__file__).resolve().parents[3]
READY = "Press Ctrl+C to stop everything."


def _read_until(stream: int, marker: str, timeout: float) -> str:
    """What the demo printed, up to the marker line; fails after timeout."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    output = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in output:
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            raise TimeoutError(f"no {marker!r} after {timeout:.0f}s; output so far:\n{output.decode()}")
        chunk = os.read(stream, 65536)
        if not chunk:
            raise RuntimeError(f"demo closed stdout before {marker!r}:\n{output.decode()}")
        output += chunk
    return output.decode()


@pytest.mark.parametrize(
    "ending",
    ["SIGINT", "SIGTERM", "SIGHUP", "stdout closed", "SIGINT with stdout closed", "SIGKILL"],
)
def test_demo_stops_every_child(ending: str, tmp_path: Path) -> None:
    # a terminal on stdin, as from an interactive shell or a script run in one: the demo waits for Ctrl+C
    terminal, terminal_peer = os.openpty()
    env = {**os.environ, "DEMO_DIR": str(tmp_path)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "tests.testenv", "demo", "--control-plane-only"],
        cwd=ROOT,
        env=env,
        stdin=terminal_peer,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("wb"),
        start_new_session=True,
    )
    os.close(terminal_peer)
    assert demo.stdout is not None
    children: list[int] = []
    try:
        _read_until(demo.stdout.fileno(), READY, timeout=180)
        children = descendants(demo.pid)
        assert len(children) >= 2, children  # etcd and kube-apiserver at least

        if "stdout closed" in ending:
            demo.stdout.close()  # as tee does when it is killed first
        if ending.startswith("SIG"):
            os.kill(demo.pid, signal.Signals[ending.split()[0]])
        wait_for(lambda: not any(alive(pid) for pid in children), 40, f"every child gone after {ending}")
        demo.wait(timeout=10)
    finally:
        os.close(terminal)
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        for pid in children:  # what a failed run left behind (each child leads its own process group)
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.killpg(pid, signal.SIGKILL)
    assert [pid for pid in children if alive(pid)] == []
