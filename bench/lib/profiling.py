"""`--profile`: py-spy attached to each operator process, one flame graph (or raw stacks) per process in bench/out/."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).parents[1] / "out"  # bench/out/, as before the move (.gitignore, docs/design/performance.md)


class Profiler:
    def __init__(self, outdir: Path = OUT, raw: bool = False) -> None:
        self.outdir = outdir
        self.raw = raw  # collapsed stacks (`profile_summary` reads them) instead of a flame graph
        self.outputs: list[Path] = []
        self.count = 0
        self.py_spy = Path(sys.executable).parent / "py-spy"
        if not self.py_spy.exists():
            raise SystemExit(f"--profile needs py-spy ({self.py_spy}): .venv/bin/pip install -e '.[test]'")

    def attach(self, pid: int) -> Callable[[], None]:
        """Start recording `pid`; the returned function stops and writes bench/out/profile-operator-<n>.svg|.txt."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.count += 1
        output = self.outdir / f"profile-operator-{self.count}.{'txt' if self.raw else 'svg'}"
        self.outputs.append(output)
        log = open(self.outdir / f"py-spy-{self.count}.log", "wb")  # noqa: SIM115 - closed by stop()
        # --nonblocking: never pause the operator to sample it, so the figures stay close to an unprofiled run
        argv = [str(self.py_spy), "record", "--pid", str(pid), "--output", str(output), "--nonblocking"]
        argv += ["--format", "raw"] if self.raw else []
        recorder = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1)
        if recorder.poll() is not None:
            log.close()
            failure = (self.outdir / f"py-spy-{self.count}.log").read_text(errors="replace")
            raise SystemExit(f"py-spy could not attach to the operator (pid {pid}):\n{failure}")
        print(f"profiling the operator (pid {pid}) into {output}", flush=True)

        def stop() -> None:
            # SIGINT makes py-spy write the flame graph; it also ends by itself when the operator exits
            with contextlib.suppress(ProcessLookupError):
                recorder.send_signal(signal.SIGINT)
            try:
                recorder.wait(timeout=120)
            except subprocess.TimeoutExpired:
                recorder.kill()
            log.close()

        return stop
