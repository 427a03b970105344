"""An API server that does not answer in time makes a deletion wait, like an unreachable Milvus, not give up."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest

from milvusops.core.failures import Failure, Reason
from milvusops.kube.api import KubeApi
from milvusops.runtime.collection_worker import CollectionWorker, finalize_collection
from milvusops.runtime.connections import Connections
from milvusops.runtime.settings import Settings
from tests.unit.fake_milvus import FakeMilvus, FakePorts


def releasing_body() -> kopf.Body:
    meta: dict[str, Any] = {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1}
    spec = {"state": "Loaded", "deletionPolicy": "Release", "connectionRef": {"name": "main"}}
    return cast(kopf.Body, {"metadata": meta, "spec": spec})


async def test_deletion_waits_when_the_connection_cannot_be_read_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    posted: list[str] = []
    monkeypatch.setattr(kopf, "event", lambda body, type, reason, message: posted.append(reason))
    silent = Failure(Reason.API_SERVER_UNAVAILABLE, "no answer from the Kubernetes API server within 10 s")
    pool = cast(Connections, FakePorts(FakeMilvus(None), failure=silent))
    settings = Settings(_cli_parse_args=[])  # type: ignore[call-arg]
    worker = CollectionWorker(settings, cast(KubeApi, None), pool)
    with pytest.raises(kopf.TemporaryError) as caught:
        await finalize_collection(releasing_body(), worker, {}, runtime_seconds=1.0, reported=set())
    assert "no answer from the Kubernetes API server" in str(caught.value)
    assert posted == ["ReleasePending"]
