"""The MilvusAlias loop's bookkeeping: which aliases a MilvusCollection event wakes, and when passes are due."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from milvusops.core.failures import Reason
from milvusops.core.status import Verdict
from milvusops.kube.api import KubeApi
from milvusops.runtime.alias_reconcile import AliasResult
from milvusops.runtime.alias_worker import AliasWorker
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings


def _worker() -> AliasWorker:
    settings = Settings(_cli_parse_args=[], resync_seconds=30, loading_recheck_seconds=2)  # type: ignore[call-arg]
    return AliasWorker(settings, cast(KubeApi, None), cast(Connections, None))


def _alias(target: dict[str, Any]) -> Any:
    return {
        "metadata": {"namespace": "team", "name": "search", "generation": 1},
        "spec": {"alias": "a", "target": target},
    }


def _collection(name: str, ready: str = "False") -> Any:
    conditions = [{"type": "Ready", "status": ready, "reason": "InSync" if ready == "True" else "Loading"}]
    status = {"observedGeneration": 1, "collection": {"state": "Loaded"}, "conditions": conditions}
    return {
        "metadata": {"namespace": "team", "name": name, "generation": 1},
        "spec": {"state": "Loaded"},
        "status": status,
    }


@pytest.fixture(autouse=True)
def _fresh_followers() -> None:
    AliasWorker.by_target.clear()


def test_a_collection_event_wakes_only_the_aliases_following_it_and_only_on_change() -> None:
    async def scenario() -> list[bool]:
        worker = _worker()
        worker.notice(_alias({"collectionRef": {"name": "green"}}))
        worker.wakeup.clear()
        woken = []
        for body in (
            _collection("blue", "True"),
            _collection("green"),
            _collection("green"),
            _collection("green", "True"),
        ):
            AliasWorker.wake_followers(body)
            woken.append(worker.wakeup.is_set())
            worker.wakeup.clear()
        return woken

    # blue: not followed; green Loading: new; the same again: no pass; green Ready: a pass at once
    assert asyncio.run(scenario()) == [False, True, False, True]


def test_retargeting_and_retiring_stop_following() -> None:
    async def scenario() -> None:
        worker = _worker()
        worker.notice(_alias({"collectionRef": {"name": "green"}}))
        assert set(AliasWorker.by_target) == {("team", "green")}
        worker.notice(_alias({"collectionName": "blue"}))
        assert AliasWorker.by_target == {}
        worker.notice(_alias({"collectionRef": {"name": "red"}}))
        worker.retire(_alias({}))
        assert AliasWorker.by_target == {}

    asyncio.run(scenario())


def _result(reason: Reason, ready: bool = False, reconciling: bool = True, recheck: float | None = None) -> AliasResult:
    return AliasResult({}, Verdict(ready, reason, "", reconciling, not ready and not reconciling), (), recheck)


@pytest.mark.parametrize(
    ("following", "result", "delay"),
    [
        (True, _result(Reason.IN_SYNC, ready=True, reconciling=False), 30.0),
        (True, _result(Reason.IN_SYNC, ready=True, reconciling=False, recheck=3.0), 3.0),  # the drain window ends
        (True, _result(Reason.TARGET_NOT_READY), 30.0),  # woken by its MilvusCollection
        (False, _result(Reason.TARGET_NOT_READY), 2.0),  # a bare collection: looked at again soon
        (True, _result(Reason.INDEX_NOT_FOUND, reconciling=False), 30.0),
    ],
)
def test_the_next_pass_is_due(following: bool, result: AliasResult, delay: float) -> None:
    async def scenario() -> float:
        worker = _worker()
        worker.notice(_alias({"collectionRef": {"name": "green"}} if following else {"collectionName": "g"}))

        async def sync(*_: Any) -> AliasResult:
            return result

        worker.sync = sync  # type: ignore[method-assign,assignment]
        return await worker._pass(cast(Any, {}), {}, {})

    assert asyncio.run(scenario()) == delay


def test_failures_back_off_with_jitter_up_to_the_resync() -> None:
    async def scenario() -> list[float]:
        worker = _worker()

        async def sync(*_: Any) -> AliasResult:
            return _result(Reason.MILVUS_UNAVAILABLE)

        worker.sync = sync  # type: ignore[method-assign,assignment]
        return [await worker._pass(cast(Any, {}), {}, {}) for _ in range(6)]

    delays = asyncio.run(scenario())
    ceilings = [2, 4, 8, 16, 30, 30]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
