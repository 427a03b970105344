"""One reconcile pass against the in-memory Milvus, and the specs and readings the pass tests share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from milvusops.core.failures import Reason
from milvusops.core.model import CollectionSpec, ResourceRef
from milvusops.core.status import stamp
from milvusops.runtime.reconcile import Result, reconcile
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts

NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)


def make_spec(state: str = "Released", partitions: dict[str, str] | None = None, **extra: Any) -> CollectionSpec:
    listed = [{"name": name, "state": want} for name, want in (partitions or {}).items()]
    body = {"metadata": {"name": "products"}, "spec": {"state": state, "partitions": listed, **extra}}
    return CollectionSpec.from_body(body)


def make_ref(generation: int = 3, paused: bool = False) -> ResourceRef:
    return ResourceRef(namespace="shop", name="products", generation=generation, paused=paused)


HOT_SPEC = make_spec("Released", {"hot": "Loaded"})
IN_SYNC = {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED}


async def run(
    milvus: FakeMilvus,
    spec: CollectionSpec = HOT_SPEC,
    previous: Mapping[str, Any] | None = None,
    ref: ResourceRef | None = None,
    **kwargs: Any,
) -> Result:
    return await reconcile(spec, ref or make_ref(), previous or {}, FakePorts(milvus), NOW, **kwargs)


def ready(result: Result) -> tuple[bool, Reason, bool, bool]:
    return result.verdict.ready, result.verdict.reason, result.verdict.reconciling, result.verdict.stalled


def written(status: dict[str, Any]) -> dict[str, Any]:
    """The status as the worker writes it after a full observation."""
    return stamp(status, {}, NOW, observed_in_full=True, interval=30.0)
