"""The port over a fake MilvusClient: each module patches `milvus.port.MilvusClient` in its own `server` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from milvusops.core.endpoint import Endpoint
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort


@pytest.fixture
def port(server: Any) -> Iterator[MilvusClientPort]:
    """`server`: the module's fake, already patched in (requested first so the port builds its clients)."""
    executor = ThreadPoolExecutor(2)
    yield MilvusClientPort(Endpoint("http://milvus:19530"), "default", executor, Slots(2))
    executor.shutdown(wait=True)
