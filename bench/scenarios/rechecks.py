"""Do the operator's other calls slow Milvus's loads? One Milvus with a share of its collections loaded;
the rest loaded in blocks, 2 load calls in flight (the operator's share against Milvus before 2.5),
each block alone or with one kind of call made beside it, over the loaded collections, at the rate the
operator makes it in a burst of 1,000: get_load_state (re-checks), get_replicas by id (confirmations),
get_metrics (the memory guard's). The baseline is the blocks alone, in the same run.

    .venv/bin/python -m bench.scenarios.rechecks [--collections 1000] [--preload 600] [--block 25]
        [--rates get_load_state=40,get_replicas=15,get_metrics=5] [--continuous]

Blocks run in mirrored cycles (alone, A, B, C, C, B, A, alone, ...) so that Milvus changing from block to block
weighs on every kind alike. --continuous sends the rest's loads back to back instead,
as a burst sends them, and prints the load calls' medians per block.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from pymilvus import MilvusClient
from pymilvus.grpc_gen import milvus_pb2
from tests.testenv.milvus import Server

from bench.lib import report
from bench.lib.environment import environment
from bench.lib.quiet import milvus_idle
from bench.lib.report import Result, Row
from bench.lib.setup import create_collections

QUEUED = 2  # load calls in flight: the operator's share of queued calls against Milvus before 2.5
POLLERS = 6  # threads polling: the operator's call slots besides the queued share
LOAD_TIMEOUT = 600.0


ALONE = "alone"
METRICS = milvus_pb2.GetMetricsRequest(request=json.dumps({"metric_type": "system_info"}))


@dataclass(frozen=True)
class Block:
    beside: str  # the kind of call made beside the loads, or ALONE
    loaded_before: int  # collections Milvus held loaded when the block started
    calls: list[float]  # seconds each load call took
    seconds: float  # first load sent → every load of the block Loaded
    polls: int  # get_load_state calls made beside the block


def block_order(blocks: int, kinds: list[str]) -> list[str]:
    """What runs beside each block: mirrored cycles of ALONE and `kinds`, balanced against a steady drift."""
    cycle = [ALONE, *kinds]
    mirrored = cycle + cycle[::-1]
    return [mirrored[index % len(mirrored)] for index in range(blocks)]


def call(client: MilvusClient, kind: str, name: str, ids: dict[str, int]) -> None:
    """One call of `kind` about collection `name`, made the way the operator makes it."""
    if kind == "get_load_state":
        client.get_load_state(name)
    elif kind == "get_replicas":  # by id, as confirmations ask: GetReplicas alone, outside Milvus's DDL queue
        client._get_connection()._stub.GetReplicas(milvus_pb2.GetReplicasRequest(collectionID=ids[name]))
    elif kind == "get_metrics":  # the memory guard's system_info, before each load
        client._get_connection()._stub.GetMetrics(METRICS)
    else:
        raise ValueError(f"unknown kind of call: {kind}")


class Poller:
    """Calls of `kind` over `names` (read as it grows) at `rate` a second in all, on POLLERS threads."""

    def __init__(self, client: MilvusClient, kind: str, names: list[str], ids: dict[str, int], rate: float) -> None:
        self.client, self.kind, self.names, self.ids, self.rate = client, kind, names, ids, rate
        self.stopped = threading.Event()
        self.calls = itertools.count()
        self.made = 0
        self.threads = [threading.Thread(target=self._poll, args=(index,)) for index in range(POLLERS)]

    def _poll(self, offset: int) -> None:
        interval, due = POLLERS / self.rate, time.monotonic()
        for turn in itertools.count(offset, POLLERS):
            if self.stopped.wait(max(0.0, due - time.monotonic())):
                return
            due += interval
            call(self.client, self.kind, self.names[turn % len(self.names)], self.ids)
            next(self.calls)

    def __enter__(self) -> Poller:
        if self.rate > 0:
            for thread in self.threads:
                thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join()
        self.made = next(self.calls)


def load_and_wait(client: MilvusClient, names: list[str], width: int) -> list[float]:
    """Start every load `width` at a time, then poll until all are Loaded; the seconds of each load call."""

    def load(name: str) -> float:
        started = time.perf_counter()
        client.load_collection(name, _async=True, sync=False)
        return time.perf_counter() - started

    with ThreadPoolExecutor(width) as pool:
        calls = list(pool.map(load, names))
    deadline, pending = time.monotonic() + LOAD_TIMEOUT, list(names)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} collections not Loaded, e.g. {pending[:5]}")
        pending = [name for name in pending if client.get_load_state(name)["state"].name != "Loaded"]
        if pending:
            time.sleep(0.25)
    return calls


def run_blocks(milvus: Server, names: list[str], preload: int, size: int, rates: dict[str, float]) -> list[Block]:
    client = milvus.client(timeout=LOAD_TIMEOUT)
    try:
        ids = {name: int(client.describe_collection(name)["collection_id"]) for name in names}
        loaded = names[:preload]
        load_and_wait(client, loaded, width=8)
        rest = names[preload:]
        chunks = [rest[index : index + size] for index in range(0, len(rest) - size + 1, size)]
        blocks = []
        for beside, chunk in zip(block_order(len(chunks), list(rates)), chunks, strict=True):
            before, started = len(loaded), time.perf_counter()
            with Poller(client, beside, loaded, ids, rates.get(beside, 0.0)) as poller:
                calls = load_and_wait(client, chunk, width=QUEUED)
            blocks.append(Block(beside, before, calls, time.perf_counter() - started, poller.made))
            loaded.extend(chunk)
            print(describe(blocks[-1]), flush=True)
        return blocks
    finally:
        client.close()


def run_continuous(milvus: Server, names: list[str], preload: int, size: int) -> list[Block]:
    """The rest's loads sent without waiting for earlier ones to end, as a burst does; one Block per `size` calls
    (its `seconds`: those calls' durations added up, not a wall time)."""
    client = milvus.client(timeout=LOAD_TIMEOUT)
    try:
        load_and_wait(client, names[:preload], width=8)
        started = time.perf_counter()
        calls = load_and_wait(client, names[preload:], width=QUEUED)
        print(f"{len(calls)} loads sent without waiting, all Loaded after {time.perf_counter() - started:.1f}s")
        return [
            Block("continuous", preload + index, calls[index : index + size], sum(calls[index : index + size]), 0)
            for index in range(0, len(calls), size)
        ]
    finally:
        client.close()


def describe(block: Block) -> str:
    kind = ALONE if block.beside == ALONE else f"{block.polls / block.seconds:.0f} {block.beside}/s beside"
    return (
        f"block at {block.loaded_before} loaded, {kind}: {len(block.calls)} loads in {block.seconds:.1f}s, "
        f"load call median {statistics.median(block.calls):.3f}s, max {max(block.calls):.3f}s"
    )


def summarise(blocks: list[Block]) -> Result:
    """Each kind's median load call and block time against the blocks alone."""
    span = f"{blocks[0].loaded_before} to {blocks[-1].loaded_before + len(blocks[-1].calls)} loaded"
    size = len(blocks[0].calls)

    def medians(kind: str) -> tuple[float, float, float]:
        group = [block for block in blocks if block.beside == kind]
        rate = sum(b.polls for b in group) / sum(b.seconds for b in group)
        return statistics.median(c for b in group for c in b.calls), statistics.median(b.seconds for b in group), rate

    call_alone, block_alone, _ = medians(ALONE)
    parts, rows = [f"{span}, alone: load call median {call_alone:.3f}s, block of {size} {block_alone:.1f}s"], []
    for kind in dict.fromkeys(b.beside for b in blocks if b.beside != ALONE):
        call_time, block_time, rate = medians(kind)
        parts.append(
            f"{rate:.0f} {kind}/s beside: {call_time:.3f}s (ratio {call_time / call_alone:.2f}), "
            f"{block_time:.1f}s (ratio {block_time / block_alone:.2f})"
        )
        what = f"{span}, {QUEUED} in flight, {rate:.0f} {kind}/s beside"
        rows.append(
            Row(
                f"load call, {what}", f"{call_time:.3f} s", f"{call_alone:.3f} s alone", f"{call_time / call_alone:.2f}"
            )
        )
        rows.append(
            Row(
                f"block of {size} loads until Loaded, {what}",
                f"{block_time:.1f} s",
                f"{block_alone:.1f} s alone",
                f"{block_time / block_alone:.2f}",
            )
        )
    return Result("; ".join(parts), tuple(rows))


def rates_of(text: str) -> dict[str, float]:
    """`get_load_state=40,get_metrics=5` → {"get_load_state": 40.0, "get_metrics": 5.0}."""
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {kind.strip(): float(rate) for kind, rate in pairs}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--preload", type=int, default=600, help="collections loaded before the first block")
    parser.add_argument("--block", type=int, default=25, help="loads per block")
    parser.add_argument(
        "--rates",
        type=rates_of,
        default="get_load_state=40,get_replicas=15,get_metrics=5",
        help="kinds of call made beside the loads, and how many a second (the operator's in a burst of 1,000)",
    )
    parser.add_argument(
        "--continuous", action="store_true", help="send the rest's loads without waiting for each block to end"
    )
    args = parser.parse_args()
    if not args.continuous and (args.collections - args.preload) // args.block < 2 * (len(args.rates) + 1):
        parser.error("need two blocks of every kind: lower --preload or --block")
    with environment("rechecks") as env:
        with env.setup.measure(f"{args.collections} collections, then Milvus idle"):
            names = create_collections(env.milvus, args.collections, ["p"])
            milvus_idle()
        if args.continuous:
            for block in run_continuous(env.milvus, names, args.preload, args.block):
                print(
                    f"loads {block.loaded_before}-: call median {statistics.median(block.calls):.3f}s, "
                    f"max {max(block.calls):.3f}s, {block.seconds:.1f}s added up"
                )
            print(report.machine(env))
            return 0
        blocks = run_blocks(env.milvus, names, args.preload, args.block, args.rates)
        result = summarise(blocks)
        print(result.summary)
        print(report.machine(env))
    print("\n" + report.table(list(result.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
