"""One-partition load: kubectl-style create -> Ready=True through the operator, against a direct
pymilvus load-and-confirm of the same kind of partition, interleaved A B A B in the same run.

    .venv/bin/python -m bench.scenarios.latency [--rounds 10] [--calls]

--calls adds two sides to each round, to tell whether the operator's own Milvus calls change how long
Milvus takes to load, apart from what Kubernetes and Kopf add: "started" starts the load and asks
get_load_state every 0.1 s (how the operator waits, without its other calls); "operator's calls"
makes the operator's calls for such a resource through its own adapter (milvusops' observe, the
memory guard's two reads, the load, a re-check of it 0.5 s later and then every 0.1 s, and the
confirmation at its end).

Starts its own control plane, Milvus and operator (as `make test` does) and stops them at the end.
Its operator logs at DEBUG, so the slowest round's pass schedule is printed (why its end was seen
when it was) and the whole log is kept in bench/out/latency-operator.log.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.milvus import Server

from bench.lib.environment import Environment, environment
from bench.lib.profiling import OUT
from bench.lib.report import Result, Row
from milvusops.core import plan
from milvusops.core.endpoint import Endpoint
from milvusops.core.model import LoadOptions, LoadState
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort
from milvusops.runtime import observe


def through_operator(kube: Kube, milvus: Server, namespace: str, index: int) -> float:
    collection = new_collection(milvus, ["hot", "cold"], rows=2000)
    name = f"lat-{index}"
    started = time.perf_counter()
    kube.create(namespace, name, {"collectionName": collection, "partitions": [{"name": "hot", "state": "Loaded"}]})

    def in_sync() -> bool:
        ready = kube.condition(namespace, name)
        return ready.get("status") == "True" and ready.get("observedGeneration") == 1

    wait_for(in_sync, timeout=120, what=f"{name} Ready", interval=0.02)
    return time.perf_counter() - started


def direct(milvus: Server) -> float:
    collection = new_collection(milvus, ["hot", "cold"], rows=2000)
    client = milvus.client()
    try:
        started = time.perf_counter()
        client.load_partitions(collection, ["hot"])  # blocks until pymilvus sees progress 100
        while client.get_load_state(collection, "hot")["state"].name != "Loaded":
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        client.close()


def started(milvus: Server) -> float:
    collection = new_collection(milvus, ["hot", "cold"], rows=2000)
    client = milvus.client()
    try:
        began = time.perf_counter()
        client.load_partitions(collection, ["hot"], _async=True, sync=False)
        while client.get_load_state(collection, "hot")["state"].name != "Loaded":
            time.sleep(0.1)
        return time.perf_counter() - began
    finally:
        client.close()


async def _as_the_operator(port: MilvusClientPort, collection: str) -> float:
    await port.server_version()  # connected before the clock starts, as the other sides' clients are
    started = time.perf_counter()
    seen = await observe.observe(port, collection)
    await asyncio.gather(port.shape(collection, sorted(seen.partitions), seen.fields), port.query_node_memory())
    load = plan.LoadPartitions(("hot",))
    await port.load_partitions(collection, list(load.partitions), LoadOptions())
    seen = plan.started(seen, (load,)) or seen  # the operator re-checks what its load started, 0.5 s later
    await asyncio.sleep(0.5)
    seen = await observe.recheck(port, collection, seen)
    while seen.partitions["hot"].state != LoadState.LOADED:
        await asyncio.sleep(0.1)  # its finest re-check step
        seen = await observe.recheck(port, collection, seen)
    return time.perf_counter() - started


def operators_calls(milvus: Server) -> float:
    """The operator's Milvus calls for one new resource, made directly (see --calls above)."""
    collection = new_collection(milvus, ["hot", "cold"], rows=2000)
    with ThreadPoolExecutor(8) as executor:
        port = MilvusClientPort(Endpoint(milvus.uri, milvus.root_token), "default", executor, Slots(8))
        try:
            return asyncio.run(_as_the_operator(port, collection))
        finally:
            port.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def schedule(operator: OperatorProcess, resource: str) -> list[str]:
    """The operator's log lines about one resource: at DEBUG, each pass and when the next one was due."""
    mentions = re.compile(rf"resource={re.escape(resource)}(\s|$)")  # lat-1, not lat-10
    return [line for line in operator.log_path.read_text(errors="replace").splitlines() if mentions.search(line)]


EXTRA = {"started": started, "operator's calls": operators_calls}  # --calls


def run(env: Environment, rounds: int, operator: OperatorProcess | None = None, calls: bool = False) -> Result:
    """Needs a running operator; leaves its MilvusCollections behind (lat-0, lat-1, ...)."""
    kube, milvus = env.kube, env.milvus
    direct(milvus)  # warm-up: first load in a fresh Milvus is slower
    ops, dirs = [], []
    extra: dict[str, list[float]] = {side: [] for side in EXTRA} if calls else {}
    for index in range(rounds):
        ops.append(through_operator(kube, milvus, env.namespace, index))
        dirs.append(direct(milvus))
        for side, values in extra.items():
            values.append(EXTRA[side](milvus))
        also = "".join(f"  {side} {values[-1]:.2f}s" for side, values in extra.items())
        print(f"round {index}: operator {ops[-1]:.2f}s  direct {dirs[-1]:.2f}s{also}", flush=True)
    diffs = [o - d for o, d in zip(ops, dirs, strict=True)]
    if operator is not None:  # the slowest round's passes say whether the end of its load was looked for late
        slowest = max(range(rounds), key=lambda i: diffs[i])
        print(f"round {slowest} lagged most ({diffs[slowest]:+.2f}s); the operator's lines about it:", flush=True)
        for line in schedule(operator, f"{env.namespace}/lat-{slowest}"):
            print(f"  {line}", flush=True)
        OUT.mkdir(exist_ok=True)
        shutil.copyfile(operator.log_path, OUT / "latency-operator.log")
    ratios = [o / d for o, d in zip(ops, dirs, strict=True)]
    summary = (
        f"latency: operator p50 {statistics.median(ops):.2f}s p95 {percentile(ops, 0.95):.2f}s | "
        f"direct p50 {statistics.median(dirs):.2f}s p95 {percentile(dirs, 0.95):.2f}s | "
        f"difference p50 {statistics.median(diffs):.2f}s p95 {percentile(diffs, 0.95):.2f}s "
        f"(the p95s apart: {percentile(ops, 0.95) - percentile(dirs, 0.95):.2f}s) | "
        f"ratio p50 {statistics.median(ratios):.2f} p95 {percentile(ratios, 0.95):.2f} (n={rounds})"
    )
    for side, values in extra.items():  # its difference to direct, round by round: what two scripts differ by
        paired = [v - d for v, d in zip(values, dirs, strict=True)]
        summary += (
            f" | {side} p50 {statistics.median(values):.2f}s p95 {percentile(values, 0.95):.2f}s,"
            f" difference to direct p50 {statistics.median(paired):.2f}s p95 {percentile(paired, 0.95):.2f}s"
        )
    row = Row(
        f"one-partition load latency, p50 (n={rounds})",
        f"{statistics.median(ops):.2f} s",
        f"{statistics.median(dirs):.2f} s direct load + confirm",
        f"{statistics.median(ratios):.2f} (p95 {percentile(ratios, 0.95):.2f})",
    )
    return Result(summary, (row,))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", action="store_true", help="add the started and operator's-calls sides")
    args = parser.parse_args()
    with environment("bench") as env:
        operator = env.start_operator(MILVUSOPS_LOG_LEVEL="DEBUG")
        print(run(env, args.rounds, operator, args.calls).summary)
        return 0


if __name__ == "__main__":
    sys.exit(main())
