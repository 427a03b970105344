"""Start servers in their own process group and stop every process of that group, always."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

# the signals that end a session: Ctrl+C, kill or systemd, a terminal closed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _live_processes() -> list[tuple[int, list[str]]]:
    """(pid, /proc/<pid>/stat fields from the state on) of every process that is not a zombie."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z":
            found.append((int(entry.name), fields))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid, read from /proc."""
    return [pid for pid, fields in _live_processes() if int(fields[2]) == pgid]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie holds no port and no memory)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Live children of pid, their children, and so on, read from /proc."""
    parents: dict[int, list[int]] = {}
    for child, fields in _live_processes():
        parents.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec that has the kernel SIGKILL the child when this process dies, even by SIGKILL (Linux)."""
    # the kernel ties PDEATHSIG to the thread that forks: a worker thread's end would kill the child
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would stop this child
            os._exit(1)

    return preexec


class Process:
    """A child started with its own session; stop() signals the whole group, and it dies with its parent."""

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
            preexec_fn=_die_with_parent(),  # only prctl runs in the child: no lock a thread could hold
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


class Stopped(BaseException):
    """A signal or a closed stdout ends the session; like KeyboardInterrupt, no `except Exception` stops it."""


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null: later prints, and the flush at exit, must not fail on a closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Session(contextlib.ExitStack):
    """Runs every callback() on leaving, whatever ends it: a return, an error, SIGINT, SIGTERM, SIGHUP or a
    closed stdout (`make demo | tee log` and Ctrl+C: tee dies first, then any print fails with EPIPE)."""

    def __init__(self, farewell: str = "") -> None:
        super().__init__()
        self.farewell = farewell
        self.stopped_by = ""
        self._closing = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def __enter__(self) -> Session:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        super().__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        self._closing = True
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl+C must not cut the cleanup short
        try:
            if self.farewell:
                self.say(self.farewell)
            suppressed = super().__exit__(exc_type, exc, traceback)
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        return suppressed or isinstance(exc, Stopped)

    def _stop(self, why: str) -> None:
        if not self._closing:
            self.stopped_by = why
            raise Stopped(why)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        self._stop(signal.Signals(signum).name)

    def say(self, text: str = "", end: str = "\n") -> None:
        """print() and flush at once (a pipe buffers); a reader gone ends the session, never its cleanup."""
        try:
            print(text, end=end, flush=True)
        except BrokenPipeError:
            _discard_stdout()
            self._stop("stdout closed")

    def wait(self) -> None:
        """Until a stop signal, or until stdout's reader goes away or its terminal hangs up."""
        poller = select.poll()
        # event mask 0: poll still reports POLLERR (a pipe's reader closed) and POLLHUP (a terminal hung up)
        poller.register(sys.stdout.fileno(), 0)
        while True:
            events = [mask for _, mask in poller.poll()]
            if any(mask & (select.POLLERR | select.POLLHUP) for mask in events):
                _discard_stdout()
                self._stop("stdout closed")
            if any(mask & select.POLLNVAL for mask in events):
                while True:  # no stdout to watch: only a signal ends the wait
                    signal.pause()
