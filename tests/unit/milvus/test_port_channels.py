"""Real pymilvus against a tiny plaintext gRPC Milvus: a connection's TLS settings are never dropped."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from pymilvus.client.connection_manager import ConnectionManager
from pymilvus.grpc_gen import milvus_pb2_grpc

from milvusops.core.endpoint import Endpoint
from milvusops.core.failures import FailureError, Reason
from milvusops.milvus.call_slots import Slots
from milvusops.milvus.port import MilvusClientPort
from tests.unit.fake_grpc import PlaintextMilvus


@pytest.fixture
def plaintext_milvus() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(PlaintextMilvus(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)
    ConnectionManager._reset_instance()  # pymilvus keeps its channels process-wide


@pytest.fixture
def ca(tmp_path: Path) -> str:
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca"]
    subprocess.run([*argv, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert)


async def test_tls_connection_never_rides_a_plaintext_channel(plaintext_milvus: int, ca: str) -> None:
    executor = ThreadPoolExecutor(2)
    plain = Endpoint(f"http://127.0.0.1:{plaintext_milvus}", "root:Milvus", 2.0)
    secure = Endpoint(f"https://127.0.0.1:{plaintext_milvus}", "root:Milvus", 2.0, ca_pem_path=ca)
    first = MilvusClientPort(plain, "default", executor, Slots(2))
    second = MilvusClientPort(secure, "default", executor, Slots(2))
    try:
        assert await first.server_version() == "v-plaintext"
        # same address and token: pymilvus's shared channel would answer in plaintext
        with pytest.raises(FailureError) as caught:
            await second.server_version()
        assert caught.value.failure.reason == Reason.MILVUS_UNAVAILABLE
        assert "tls.caSecretRef" in caught.value.failure.message
    finally:
        first.close()
        second.close()
        await asyncio.to_thread(executor.shutdown)
