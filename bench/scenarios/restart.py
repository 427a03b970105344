"""Restart: with every resource in sync, stop the operator (SIGTERM) and start it again: load/release
calls made (target 0), Kubernetes writes, and the time until every resource has been observed again,
against a direct script making the same observation calls at the same concurrency, in the same run.

    .venv/bin/python -m bench.scenarios.restart [--resources 20]

"Observed" means the resource's first reconcile in the new process has finished: Milvus was asked
(observe), the plan made and the status decided. The operator's `milvusops_resources` gauge counts
each resource once from that moment, so it reaching N means every one was; the reconcile counter
would not (one resource's second pass could count for another's first).
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.e2e.helpers import OperatorProcess

from bench.lib.apiwrites import describe, split_writes, write_counts
from bench.lib.baselines import direct_observation
from bench.lib.environment import Environment, environment
from bench.lib.operator_metrics import calls_by_method, load_release_calls, resources_seen
from bench.lib.process import frozen
from bench.lib.report import Result, Row
from bench.lib.resources import NotReadyError, listing, wait_ready
from bench.lib.setup import resources_in_sync


def wait_observed(operator: OperatorProcess, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = resources_seen(operator.metrics())
        if seen >= count:
            return
        time.sleep(0.25)
    tail = "\n".join(operator.log().splitlines()[-30:])
    raise NotReadyError(f"restarted operator observed {seen} of {count} resources in {timeout:.0f}s; log:\n{tail}")


def run(
    env: Environment, operator: OperatorProcess, settings: dict[str, str], concurrency: int
) -> tuple[Result, OperatorProcess]:
    """Restarts `operator` with the same `settings`; returns the new one."""
    items = listing(env.kube, env.namespace)
    count = len(items)
    wait_ready(env.kube, env.namespace, [item["metadata"]["name"] for item in items], timeout=60)
    before = write_counts(env.kube)
    started = time.perf_counter()
    operator.stop()
    stop_seconds = time.perf_counter() - started
    started = time.perf_counter()
    restarted = env.start_operator(**settings)
    up_seconds = time.perf_counter() - started  # Python, imports and Kopf's start: the same at any N
    wait_observed(restarted, count, timeout=120 + 0.5 * count)
    observed_seconds = time.perf_counter() - started
    loads = load_release_calls(calls_by_method(restarted.metrics()))
    ours, _ = split_writes(before, write_counts(env.kube))
    collections = [item["spec"]["collectionName"] for item in items]
    with frozen([restarted.process.pgid] if restarted.process is not None else []):
        direct_seconds = direct_observation(env.milvus, collections, concurrency)
    observing = observed_seconds - up_seconds
    ratio = observing / direct_seconds
    summary = (
        f"restart: {count} resources in sync: SIGTERM -> exit {stop_seconds:.1f}s | start -> every resource "
        f"observed {observed_seconds:.1f}s ({up_seconds:.1f}s until the process serves metrics, then "
        f"{observing:.2f}s observing; the same observation calls made directly, {concurrency} at a time, "
        f"{direct_seconds:.2f}s: ratio {ratio:.2f}) | load/release calls {loads} (target 0) | "
        f"Kubernetes writes {int(sum(ours.values()))} ({describe(ours)})"
    )
    what = f"restart, {count} resources in sync"
    rows = (
        Row(
            f"{what}: start → all observed (process up, then observing)",
            f"{observed_seconds:.1f} s ({up_seconds:.1f} + {observing:.2f})",
            f"{direct_seconds:.2f} s same calls, direct",
            f"{ratio:.2f} (observing part)",
        ),
        Row(f"{what}: load/release calls", str(loads), ratio="target 0"),
        Row(f"{what}: Kubernetes writes", str(int(sum(ours.values()))), ratio="target 0"),
    )
    return Result(summary, rows), restarted


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = {"MILVUSOPS_MAX_CONCURRENT_CALLS": str(args.concurrency)}
    with environment("restart") as env:
        operator = env.start_operator(**settings)
        resources_in_sync(env, args.resources)
        print(run(env, operator, settings, args.concurrency)[0].summary)
        return 0


if __name__ == "__main__":
    sys.exit(main())
