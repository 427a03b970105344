"""The scale stand-in's pure parts (bench/standin): the lognormal fit and sampling, the load-state machine."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import pytest
from bench.standin.fit import LogNormal, fit, fit_all, percentile
from bench.standin.server import Latencies, StandIn
from bench.standin.state import State, Store, UnknownError
from pymilvus.grpc_gen import milvus_pb2


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([1.0], 0.9, 1.0), ([1.0, 2.0, 3.0], 0.5, 2.0), ([0.0, 10.0], 0.9, 9.0), ([3.0, 1.0, 2.0], 1.0, 3.0)],
)
def test_percentile_interpolates_between_ranks(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == pytest.approx(expected)


def test_fit_keeps_median_and_p90() -> None:
    fitted = fit([0.01 * i for i in range(1, 11)])
    assert fitted.median == pytest.approx(0.055)
    assert fitted.p90 == pytest.approx(0.091)


def test_fit_of_constant_samples_has_no_spread() -> None:
    fitted = fit([0.02] * 5)
    assert fitted.sigma == 0
    assert fitted.sample(random.Random(1)) == pytest.approx(0.02)  # noqa: S311 - a simulation


def test_fit_floors_zero_samples() -> None:
    assert fit([0.0, 0.0]).median > 0


def test_samples_reproduce_the_fitted_median_and_p90() -> None:
    fitted = LogNormal(median=0.05, p90=0.2)
    rng = random.Random(7)  # noqa: S311 - a simulation, not security
    samples = [fitted.sample(rng) for _ in range(20000)]
    assert statistics.median(samples) == pytest.approx(0.05, rel=0.05)
    assert percentile(samples, 0.9) == pytest.approx(0.2, rel=0.05)


def test_fit_all_skips_progress_readings() -> None:
    document = {"seconds": {"GetLoadState": [0.001, 0.002], "progress_while_loading": [0.0, 0.0]}}
    assert set(fit_all(document)) == {"GetLoadState"}


def store_with(partitions: list[str]) -> Store:
    store = Store()
    store.create_collection("c", b"")
    for partition in partitions:
        store.create_partition("c", partition)
    return store


def test_load_collection_is_loading_until_its_end_then_loaded() -> None:
    store = store_with(["p"])
    store.load("c", [], replicas=1, ends=10.0)
    collection = store.get("c")
    assert [collection.state(9.9), collection.progress(9.9)] == [State.LOADING, 0]
    assert [collection.state(10.0), collection.progress(10.0)] == [State.LOADED, 100]
    assert collection.state(10.0, "p") == collection.state(10.0, "_default") == State.LOADED


def test_load_partitions_leaves_the_others_released() -> None:
    store = store_with(["p", "q"])
    store.load("c", ["p"], replicas=2, ends=1.0)
    collection = store.get("c")
    assert [collection.state(2.0, name) for name in ("p", "q", "_default")] == [
        State.LOADED,
        State.NOT_LOAD,
        State.NOT_LOAD,
    ]
    assert collection.state(2.0) == State.LOADED  # as 2.3.5: the collection says Loaded once a partition is
    assert collection.replicas == 2
    assert collection.loaded_partition_ids(2.0) == [collection.partitions["p"].id]


def test_collection_is_loading_while_any_partition_loads() -> None:
    store = store_with(["p", "q"])
    store.load("c", ["p"], replicas=1, ends=1.0)
    store.load("c", ["q"], replicas=1, ends=5.0)
    assert store.get("c").state(2.0) == State.LOADING


def test_a_second_load_does_not_restart_a_running_one() -> None:
    store = store_with(["p"])
    store.load("c", ["p"], replicas=1, ends=1.0)
    store.load("c", ["p"], replicas=1, ends=9.0)
    assert store.get("c").state(1.0, "p") == State.LOADED


def test_release_makes_not_load() -> None:
    store = store_with(["p", "q"])
    store.load("c", [], replicas=1, ends=0.0)
    store.release("c", ["p"])
    assert [store.get("c").state(1.0, name) for name in ("p", "q")] == [State.NOT_LOAD, State.LOADED]
    store.release("c", [])
    assert store.get("c").state(1.0) == State.NOT_LOAD


@pytest.mark.parametrize(("collection", "partitions", "code"), [("missing", [], 100), ("c", ["missing"], 200)])
def test_unknown_names_fail_with_milvus_codes(collection: str, partitions: list[str], code: int) -> None:
    store = store_with(["p"])
    with pytest.raises(UnknownError) as raised:
        store.load(collection, partitions, replicas=1, ends=0.0)
    assert raised.value.code == code


def test_unknown_partition_state_is_not_exist() -> None:
    assert store_with([]).get("c").state(0.0, "nope") == State.NOT_EXIST


def standin(ddl_concurrency: int) -> StandIn:
    constant = LogNormal(median=0.05, p90=0.05)
    fitted = {"DescribeCollection": constant, "GetLoadState": constant}
    server = StandIn(Latencies(fitted, seed=1), store_with(["p"]), ddl_concurrency=ddl_concurrency)
    return server


async def timed_answers(server: StandIn) -> tuple[float, float]:
    """Three DescribeCollection at once beside one GetLoadState: when each kind is answered."""
    started = time.perf_counter()
    describe = milvus_pb2.DescribeCollectionRequest(collection_name="c")
    describes = asyncio.gather(*(server.DescribeCollection(describe, None) for _ in range(3)))
    await server.GetLoadState(milvus_pb2.GetLoadStateRequest(collection_name="c"), None)
    state_at = time.perf_counter() - started
    await describes
    return time.perf_counter() - started, state_at


async def test_the_standin_runs_ddl_requests_one_at_a_time_as_milvus_2_3_5() -> None:
    server = standin(1)
    describes_at, state_at = await timed_answers(server)
    assert describes_at >= 0.15  # 3 x 50 ms, one after another
    assert state_at < 0.1  # GetLoadState bypasses the queue
    assert server.version == "v2.3.5"


async def test_the_standin_with_a_ddl_pool_answers_as_the_milvus_that_has_one() -> None:
    server = standin(4)
    describes_at, _ = await timed_answers(server)
    assert describes_at < 0.1
    assert server.version == "v2.5.0"
