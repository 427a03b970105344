"""Start servers in their own process group and stop every process of that group, always."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class Process:
    """A child started with its own session; stop() signals the whole group."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, **popen: object) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen,  # type: ignore[call-overload]
        )
        self.pgid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after grace, then check that nothing of it is left."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_members(self.pgid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        if group_members(self.pgid):
            self._signal(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while group_members(self.pgid) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
        self._reap()
        self._log.close()
        left = group_members(self.pgid)
        if left:
            raise RuntimeError(f"{self.name}: processes {left} survived SIGKILL")

    def kill(self) -> None:
        """SIGKILL the whole group at once (fault injection)."""
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=0)

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - readiness probes fail in many ways until ready
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last_error})")
