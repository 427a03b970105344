"""Memory per resource: the operator's RSS before the first resource, at N1 and at N2 MilvusCollections.

    .venv/bin/python -m bench.scenarios.memory --first 1000 --second 3000 [--tracemalloc 1] [--setting KEY=VALUE ...]

Against the scale stand-in (bench/standin, NOT a Milvus) on the real kube-apiserver, as bench.scenarios.scale10k: one
collection with one partition per resource, `state: Loaded`. After each step every resource is Ready and the
operator has run `--settle` seconds more (at least one resync of each). Reports VmRSS and VmHWM and the growth
per resource between N1 and N2. With `--tracemalloc F` (frames per traceback) the operator runs tracemalloc
from the first reading to the second (slower, more memory: the figures are then for attribution only), and
what that span allocated and still holds is printed, largest first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from tests.e2e.helpers import Kube, OperatorProcess

from bench.lib import report
from bench.lib.environment import environment
from bench.lib.process import Usage, usage
from bench.lib.resources import CREATE_WIDTH, wait_ready
from bench.standin import direct
from bench.standin.process import StandInServer

HOOK = Path(__file__).parents[1] / "memhook"  # bench/memhook: the folder put on the operator's PYTHONPATH
MB = 1024 * 1024


def create(kube: Kube, namespace: str, indices: range) -> list[str]:
    def one(index: int) -> str:
        for attempt in range(5):
            try:
                kube.create(namespace, f"r-{index}", {"collectionName": f"op_{index}", "state": "Loaded"})
                break
            except ApiException as exc:
                if exc.status == 409:  # an earlier attempt timed out after all but created it
                    break
                if exc.status not in (429, 500, 503, 504) or attempt == 4:
                    raise
                time.sleep(1 + attempt)  # an API server overloaded by the burst (or by other work on the machine)
        return f"r-{index}"

    with ThreadPoolExecutor(CREATE_WIDTH) as pool:
        return list(pool.map(one, indices))


def ready(kube: Kube, namespace: str, names: list[str], timeout: float) -> float:
    """Seconds until all are Ready, through the API server's own timeouts when the machine is loaded."""
    started = time.monotonic()
    while True:
        try:
            wait_ready(kube, namespace, names, timeout=max(1.0, timeout - (time.monotonic() - started)))
            return time.monotonic() - started
        except ApiException as exc:
            if exc.status not in (429, 500, 503, 504) or time.monotonic() - started > timeout:
                raise


def signal_and_wait(operator: OperatorProcess, done: Path) -> None:
    """SIGUSR2 to the operator (bench/memhook): the first starts tracemalloc, the second dumps a snapshot."""
    assert operator.process is not None
    os.kill(operator.process.popen.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 600
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator did not write {done}")
        time.sleep(0.5)


def describe(label: str, reading: Usage) -> str:
    return f"{label}: RSS {reading.rss_bytes / MB:.1f} MB, peak (VmHWM) {reading.peak_rss_bytes / MB:.1f} MB"


def operator_settings(given: list[str], frames: int, out: Path) -> dict[str, str]:
    """The operator's environment: production limits, then `--setting KEY=VALUE`, then the tracemalloc hook."""
    settings = {"MILVUSOPS_MAX_CONCURRENT_CALLS": "8", "MILVUSOPS_RESYNC_SECONDS": "30"}
    settings.update(dict(item.split("=", 1) for item in given))
    if frames:
        # the hook first, then a PYTHONPATH given by --setting (e.g. another checkout's operator, for a before run)
        path = os.pathsep.join(filter(None, (str(HOOK), settings.get("PYTHONPATH"))))
        settings |= {"PYTHONPATH": path, "MILVUSOPS_BENCH_SNAPSHOTS": str(out)}
        settings["MILVUSOPS_BENCH_TRACEMALLOC_FRAMES"] = str(frames)
    return settings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=1000, help="resources at the first reading")
    parser.add_argument("--second", type=int, default=3000, help="resources at the second reading")
    parser.add_argument("--settle", type=float, default=45, help="seconds after all Ready before each reading")
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames per traceback; 0: off")
    parser.add_argument("--setting", action="append", default=[], help="KEY=VALUE for the operator's environment")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="milvusops-snapshots-"))
    settings = operator_settings(args.setting, args.tracemalloc, out)
    lines: list[str] = []
    with environment("memory", server=StandInServer) as env:
        address, token = env.milvus.uri.removeprefix("http://"), env.milvus.root_token
        with env.setup.measure(f"{args.second} collections in the stand-in"):
            asyncio.run(direct.create(address, token, [f"op_{i}" for i in range(args.second)]))
        operator = env.start_operator(**settings)
        assert operator.process is not None
        group = operator.process.pgid
        time.sleep(args.settle / 3)
        empty = usage(group)
        lines.append(describe("no resources", empty))
        print(lines[-1], flush=True)
        readings = []
        for start, stop in ((0, args.first), (args.first, args.second)):
            names = create(env.kube, env.namespace, range(start, stop))
            took = ready(env.kube, env.namespace, names, timeout=300 + 0.3 * (stop - start))
            time.sleep(args.settle)
            readings.append(usage(group))
            label = f"{stop} resources (Ready after {took:.0f} s, then {args.settle:.0f} s)"
            lines.append(describe(label, readings[-1]))
            print(lines[-1], flush=True)
            if args.tracemalloc:  # traced from the first reading to the second: what the added resources hold
                signal_and_wait(operator, out / ("snapshot.done" if readings[1:] else "started"))
        span = args.second - args.first
        growth = (readings[1].rss_bytes - readings[0].rss_bytes) / span / 1024
        lines.append(f"growth {args.first} -> {args.second}: {growth:.1f} KB per resource (VmRSS)")
        first = (readings[0].rss_bytes - empty.rss_bytes) / args.first / 1024
        lines.append(f"growth 0 -> {args.first}: {first:.1f} KB per resource (VmRSS)")
        if args.tracemalloc:
            held = tracemalloc.Snapshot.load(str(out / "snapshot.pickle"))
            total = sum(stat.size for stat in held.statistics("filename"))
            lines.append(f"allocated after {args.first}, held at {args.second}: {total / span:.0f} bytes per resource")
            for key in ("traceback" if args.tracemalloc > 1 else "lineno", "filename"):
                lines.append(f"top by {key}, bytes per added resource:")
                for stat in held.statistics(key)[: args.top]:
                    where = "\n      ".join(stat.traceback.format()[-2 * min(args.tracemalloc, 6) :])
                    lines.append(f"  {stat.size / span:8.0f}  {where}")
        lines.append(report.machine(env))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
