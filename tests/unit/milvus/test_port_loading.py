"""A load's re-checks: one GetLoadingProgress each, where MilvusClient.get_load_state makes two while Loading."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pymilvus import MilvusException
from pymilvus.client.types import LoadState as MilvusLoadState

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import FailureError, Reason
from milvusops.core.model import LoadState
from milvusops.milvus import port as milvus_port
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort


class Client:
    """Milvus 2.3.5's answers: the state is derived from the loading percentage; not loaded is an error."""

    progress: int | None = 40  # None: the collection is not loaded (released, or its load failed)
    down = False  # the server cannot be reached
    asked: list[str] = []

    def __init__(self, **_: Any) -> None:
        pass

    def _get_connection(self) -> Client:
        return self

    def get_loading_progress(self, collection: str, partitions: Any, timeout: float) -> int:
        Client.asked.append("GetLoadingProgress")
        if Client.down:
            raise MilvusException(2, "Fail connecting to server on milvus:19530")
        if Client.progress is None:
            raise MilvusException(101, f"collection not loaded[collection={collection}]")
        return Client.progress

    def get_load_state(self, collection: str, partition: str, timeout: float) -> dict[str, Any]:
        Client.asked.append("GetLoadState")
        if Client.progress is None:
            return {"state": MilvusLoadState.NotLoad}
        return {"state": MilvusLoadState.Loading, "progress": Client.progress}


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[MilvusClientPort]:
    monkeypatch.setattr(milvus_port, "MilvusClient", Client)
    Client.asked, Client.down = [], False
    pool = ThreadPoolExecutor(2)
    yield MilvusClientPort(Endpoint("http://milvus:19530", "", 10.0), "default", pool, Slots(2))
    pool.shutdown(wait=True)


async def test_a_recheck_while_loading_is_one_call_with_its_progress(target: MilvusClientPort) -> None:
    Client.progress = 40
    report = await target.loading("c")
    assert (report.state, report.progress) == (LoadState.LOADING, 40)
    assert Client.asked == ["GetLoadingProgress"]


async def test_a_finished_load_is_loaded_from_the_same_one_call(target: MilvusClientPort) -> None:
    Client.progress = 100
    report = await target.loading("c")
    assert (report.state, report.progress) == (LoadState.LOADED, 100)
    assert Client.asked == ["GetLoadingProgress"]


async def test_a_collection_no_longer_loading_is_asked_its_state(target: MilvusClientPort) -> None:
    """Released meanwhile, or its load failed: get_load_state says which (NotLoad, or the failure's cause)."""
    Client.progress = None
    report = await target.loading("c")
    assert report.state == LoadState.NOT_LOAD
    assert Client.asked == ["GetLoadingProgress", "GetLoadState"]


async def test_an_unreachable_server_is_asked_once_per_recheck(target: MilvusClientPort) -> None:
    """get_load_state would fail the same way, after its own timeout: the re-check reports the first failure."""
    Client.down = True
    with pytest.raises(FailureError) as raised:
        await target.loading("c")
    assert raised.value.failure.reason == Reason.MILVUS_UNAVAILABLE
    assert Client.asked == ["GetLoadingProgress"]
