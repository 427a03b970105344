"""What pymilvus and grpc raise or serve, made in-process: shared by the Milvus adapter's tests and the pool's."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus import MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    """What grpc raises: an RpcError that is also a Call with code() and details()."""

    def __init__(self, status: grpc.StatusCode, details: str) -> None:
        super().__init__()
        self._status = status
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._status

    def details(self) -> str:
        return self._details


def server_status(code: int, reason: str, *, retriable: bool = False, input_error: bool = False) -> MilvusException:
    """A MilvusException exactly as pymilvus 3.0.2 builds it from a failed server Status."""
    extra = {"is_input_error": "true"} if input_error else {}
    status = common_pb2.Status(code=code, reason=reason, retriable=retriable, extra_info=extra)
    return MilvusException.from_status(status)


class PlaintextMilvus(milvus_pb2_grpc.MilvusServiceServicer):  # type: ignore[misc]
    """Answers the two calls a connect and a version check make."""

    def Connect(self, request: Any, context: Any) -> Any:
        return milvus_pb2.ConnectResponse(identifier=1)

    def GetVersion(self, request: Any, context: Any) -> Any:
        return milvus_pb2.GetVersionResponse(version="v-plaintext")
