"""bench.lib.process.frozen: a baseline measured beside the operators does not share Milvus with them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.lib.process import frozen


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_for(pid: int, wanted: set[str]) -> str:
    deadline = time.monotonic() + 5
    while (now := state(pid)) not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    return now


def test_frozen_stops_the_process_group_inside_and_continues_it_after() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"], start_new_session=True
    )
    try:
        with frozen([child.pid]):
            assert wait_for(child.pid, {"T"}) == "T"
        assert wait_for(child.pid, {"S", "R"}) in {"S", "R"}
    finally:
        child.kill()
        child.wait()
