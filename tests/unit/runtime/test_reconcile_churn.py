"""Issue 29 item 9: a lasting refusal is one event and one status write, not one of each per resync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import kopf
import pytest

from milvusops.core.failures import Reason
from milvusops.core.memory_estimate import GuardSettings, NodeMemory
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.kube.api import KubeApi
from milvusops.runtime.capacity_guard import MemoryGuard
from milvusops.runtime.reconcile import reconcile
from milvusops.runtime.settings import Settings
from milvusops.runtime.worker import Worker
from tests.unit.fake_loop import Loop
from tests.unit.fake_milvus import NOT_LOAD, FakeMilvus, FakePorts

MiB = 2**20
SPEC = CollectionSpec.model_validate({"collectionName": "c", "partitions": [{"name": "big", "state": "Loaded"}]})
REF = ResourceRef(namespace="ns", name="r", uid="u1", generation=1, created="2026-01-01T00:00:00Z")


def _refused_milvus() -> FakeMilvus:
    milvus = FakeMilvus({"_default": LoadState.NOT_LOAD, "big": LoadState.NOT_LOAD})
    milvus.rows = {"big": 10_000_000}  # 560 MB
    milvus.nodes = (NodeMemory(1, 512 * MiB, 50 * MiB),)
    return milvus


async def test_a_refusal_says_the_same_while_free_memory_only_wobbles() -> None:
    """The query node's use moves by a few KiB between passes: the condition message must not."""
    milvus = _refused_milvus()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    messages = []
    for used in (50 * MiB, 50 * MiB + 123_456, 51 * MiB):
        milvus.nodes = (NodeMemory(1, 512 * MiB, used),)
        result = await reconcile(SPEC, REF, {}, FakePorts(milvus), now, memory=MemoryGuard(GuardSettings(True, 10)))
        assert result.verdict.reason == Reason.INSUFFICIENT_MEMORY
        messages.append(result.verdict.message)
    assert len(set(messages)) == 1, messages
    assert "(560000000 B)" in messages[0]  # the bytes needed stay exact: they move only with the data


def _worker(monkeypatch: pytest.MonkeyPatch, posted: list[tuple[str, str, str]]) -> Worker:
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: posted.append((type, reason, message)))
    return Worker(Settings(_cli_parse_args=[]), cast(KubeApi, None))  # type: ignore[call-arg]


def test_one_event_for_two_passes_with_the_same_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[tuple[str, str, str]] = []
    worker, body = _worker(monkeypatch, posted), cast(kopf.Body, {"metadata": {"name": "m", "namespace": "ns"}})
    worker.post(body, [("Warning", "InsufficientMemory", "needs 1.0 GiB, 200 MiB free")])
    worker.post(body, [("Warning", "InsufficientMemory", "needs 1.0 GiB, 190 MiB free")])
    assert [reason for _, reason, _ in posted] == ["InsufficientMemory"]
    worker.post(body, [("Warning", "MilvusUnavailable", "cannot reach Milvus")])  # a changed reason is news
    worker.post(body, [("Warning", "InsufficientMemory", "needs 1.0 GiB, 190 MiB free")])  # and so is its return
    assert [reason for _, reason, _ in posted] == ["InsufficientMemory", "MilvusUnavailable", "InsufficientMemory"]


def test_distinct_actions_of_one_reason_are_each_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Normal events say what was done: two loads of different partitions are two events."""
    posted: list[tuple[str, str, str]] = []
    worker, body = _worker(monkeypatch, posted), cast(kopf.Body, {"metadata": {"name": "m", "namespace": "ns"}})
    worker.post(body, [("Normal", "Loading", "load_partitions a")])
    worker.post(body, [("Normal", "Loading", "load_partitions b")])
    assert [message for _, _, message in posted] == ["load_partitions a", "load_partitions b"]


async def test_a_lasting_refusal_is_one_status_write_and_one_event(monkeypatch: pytest.MonkeyPatch) -> None:
    milvus = _refused_milvus()
    loop = Loop(milvus, {"partitions": [{"name": "big", "state": "Loaded"}]}, monkeypatch)

    def wobble(passes: int) -> None:
        milvus.nodes = (NodeMemory(1, 512 * MiB, 50 * MiB + passes * 4096),)  # free memory moves every pass

    await loop.run(4, wobble)
    assert milvus.mutating_calls == []
    refusals = [event for event in loop.events if event[1] == Reason.INSUFFICIENT_MEMORY.value]
    assert len(refusals) == 1, refusals
    assert len(loop.kube.patches) == 1, [_ready(patch) for patch in loop.kube.patches]
    assert milvus.states["big"] == NOT_LOAD


def _ready(patch: dict[str, Any]) -> str:
    return next((c.get("message", "") for c in patch.get("conditions") or [] if c.get("type") == "Ready"), "")
