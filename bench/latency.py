"""One-partition load: kubectl-style create -> Ready=True through the operator, against a direct
pymilvus load-and-confirm of the same kind of partition, interleaved A B A B in the same run.

    .venv/bin/python -m bench.latency [--rounds 10]

Starts its own control plane, Milvus and operator (as `make test` does) and stops them at the end.
Its operator logs at DEBUG, so the slowest round's pass schedule is printed (why its end was seen
when it was) and the whole log is kept in bench/out/latency-operator.log.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import time

from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.milvus import Server

from bench.environment import Environment, environment
from bench.profiling import OUT
from bench.report import Result, Row


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def schedule(operator: OperatorProcess, resource: str) -> list[str]:
    """The operator's log lines about one resource: at DEBUG, each pass and when the next one was due."""
    mentions = re.compile(rf"resource={re.escape(resource)}(\s|$)")  # lat-1, not lat-10
    return [line for line in operator.log_path.read_text(errors="replace").splitlines() if mentions.search(line)]


def run(env: Environment, rounds: int, operator: OperatorProcess | None = None) -> Result:
    """Needs a running operator; leaves its MilvusCollections behind (lat-0, lat-1, ...)."""
    kube, milvus = env.kube, env.milvus
    direct(milvus)  # warm-up: first load in a fresh Milvus is slower
    ops, dirs = [], []
    for index in range(rounds):
        ops.append(through_operator(kube, milvus, env.namespace, index))
        dirs.append(direct(milvus))
        print(f"round {index}: operator {ops[-1]:.2f}s  direct {dirs[-1]:.2f}s", flush=True)
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
        f"difference p50 {statistics.median(diffs):.2f}s p95 {percentile(diffs, 0.95):.2f}s | "
        f"ratio p50 {statistics.median(ratios):.2f} p95 {percentile(ratios, 0.95):.2f} (n={rounds})"
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
    args = parser.parse_args()
    with environment("bench") as env:
        operator = env.start_operator(MILVUSOPS_LOG_LEVEL="DEBUG")
        print(run(env, args.rounds, operator).summary)
        return 0


if __name__ == "__main__":
    sys.exit(main())
