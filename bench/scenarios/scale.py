"""Steady state and restart at N resources that start in sync, then Milvus's own capacity for N loads.

Written when a 1,000-collection burst in `bench.all` did not finish (Milvus then held 3,000
collections; bursts now create each side's collections just before it runs). This runs steady
state and restart at N in a fresh Milvus, with resources whose desired state Milvus already has
(every collection Released), and then asks Milvus directly for the same N loads (all started, then
polled), printing how many are Loaded as time goes by, to tell whether the limit is Milvus or the operator.

    .venv/bin/python -m bench.scenarios.scale [--resources 1000] [--steady-seconds 300] [--load-seconds 600]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pymilvus import MilvusClient

from bench.lib import report
from bench.lib.environment import environment
from bench.lib.resources import create_all, wait_ready
from bench.lib.setup import create_collections
from bench.scenarios import restart, steady


def direct_loads(client: MilvusClient, collections: list[str], concurrency: int, seconds: float) -> str:
    """Start every load (`concurrency` at a time), then count Loaded collections every 30 s until all or `seconds`."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda name: client.load_collection(name, _async=True, sync=False), collections))
        issued = time.perf_counter() - started
        pending, report_at = list(collections), 30.0
        while pending and time.perf_counter() - started < seconds:
            states = list(pool.map(lambda name: client.get_load_state(name)["state"].name, pending))
            pending = [name for name, state in zip(pending, states, strict=True) if state != "Loaded"]
            elapsed = time.perf_counter() - started
            if elapsed >= report_at:
                print(
                    f"direct loads: {len(collections) - len(pending)}/{len(collections)} Loaded at {elapsed:.0f}s",
                    flush=True,
                )
                report_at += 30
            time.sleep(1)
    elapsed = time.perf_counter() - started
    done = len(collections) - len(pending)
    return (
        f"{done}/{len(collections)} Loaded after {elapsed:.0f}s (all {len(collections)} loads issued in {issued:.0f}s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=float, default=300)
    parser.add_argument("--resync-seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load-seconds", type=float, default=600)
    args = parser.parse_args()
    settings = {
        "MILVUSOPS_MAX_CONCURRENT_CALLS": str(args.concurrency),
        "MILVUSOPS_RESYNC_SECONDS": str(args.resync_seconds),
    }
    with environment("scale") as env:
        with env.setup.measure(f"{args.resources} collections"):
            collections = create_collections(env.milvus, args.resources, ["p"])
        operator = env.start_operator(**settings)
        specs = {f"s-{i}": {"collectionName": name, "state": "Released"} for i, name in enumerate(collections)}
        started = time.perf_counter()
        create_all(env.kube, env.namespace, specs)
        seconds = wait_ready(env.kube, env.namespace, specs, timeout=120 + 0.5 * args.resources)
        print(
            f"in sync: {args.resources} resources created (Released, as Milvus has them) → all Ready in "
            f"{time.perf_counter() - started:.1f}s (wait {seconds:.1f}s)",
            flush=True,
        )
        results = [steady.run(env, operator, args.resync_seconds, args.steady_seconds)] if args.steady_seconds else []
        if results:
            print(results[-1].summary, flush=True)
        restarted, operator = restart.run(env, operator, settings, args.concurrency)
        results.append(restarted)
        print(restarted.summary, flush=True)
        operator.stop()  # Milvus alone from here: its own capacity for the burst's loads
        client = env.milvus.client(timeout=120)
        print("direct loads: " + direct_loads(client, collections, args.concurrency, args.load_seconds), flush=True)
        client.close()
        machine = report.machine(env)
    print("\n" + machine + "\n\n" + report.table([row for result in results for row in result.rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
