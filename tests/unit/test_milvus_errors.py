"""Error mapping in one place: Milvus error code / gRPC status / OS error -> reason + helpful message."""

from __future__ import annotations

import grpc
import pytest
from pymilvus import MilvusException

from milvusops.failures import Failure, FailureError, Reason
from milvusops.milvus import classify


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


@pytest.mark.parametrize(
    ("code", "message", "reason", "hints"),
    [
        pytest.param(100, "collection not found[collection=products]", Reason.COLLECTION_NOT_FOUND, [], id="100"),
        pytest.param(200, "partition not found[partition=hot]", Reason.PARTITION_NOT_FOUND, [], id="200"),
        pytest.param(
            700,
            "index not found[collection=products]",
            Reason.INDEX_NOT_FOUND,
            ["create a vector index before loading"],
            id="700",
        ),
        pytest.param(
            1100,
            "invalid parameter[expected=can't change the replica number for loaded partitions][actual=2]",
            Reason.INVALID_LOAD_OPTIONS,
            ["release them first", "replicas"],
            id="1100",
        ),
        pytest.param(
            65535,
            "failed to spawn replica for collection: nodes not enough[rg=__default_resource_group]",
            Reason.INSUFFICIENT_RESOURCES,
            [],
            id="65535-nodes-not-enough",
        ),
        pytest.param(
            2,
            "Fail connecting to server on 127.0.0.1:19530, illegal connection params or server unavailable",
            Reason.MILVUS_UNAVAILABLE,
            ["cannot reach Milvus", "credentials"],
            id="2-fail-connecting",
        ),
        pytest.param(
            1,
            "<_InactiveRpcError of RPC that terminated with: status = StatusCode.UNIMPLEMENTED details = "
            '"Method not found!">',
            Reason.UNSUPPORTED,
            ["partition-level load is not supported"],
            id="unimplemented-message",
        ),
        pytest.param(4242, "something odd happened", Reason.MILVUS_ERROR, ["code 4242"], id="unknown-code"),
    ],
)
def test_milvus_exception(code: int, message: str, reason: Reason, hints: list[str]) -> None:
    failure = classify(MilvusException(code=code, message=message))
    assert failure.reason == reason
    assert message in failure.message  # Milvus's own words are kept
    for hint in hints:
        assert hint in failure.message


def test_65535_without_capacity_words_is_a_plain_error() -> None:
    failure = classify(MilvusException(code=65535, message="unexpected internal error"))
    assert failure == Failure(Reason.MILVUS_ERROR, "code 65535: unexpected internal error")


def test_fail_connecting_without_code_2() -> None:
    failure = classify(MilvusException(code=1, message="Fail connecting to server on milvus:19530, timeout"))
    assert failure.reason == Reason.MILVUS_UNAVAILABLE
    assert "credentials" in failure.message


def test_grpc_unimplemented_is_unsupported() -> None:
    failure = classify(FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"))
    assert failure.reason == Reason.UNSUPPORTED
    assert "Milvus Lite" in failure.message


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_grpc_other_statuses_are_unavailable(status: grpc.StatusCode) -> None:
    failure = classify(FakeRpcError(status, "failed to connect to all addresses"))
    assert failure.reason == Reason.MILVUS_UNAVAILABLE
    assert status.name in failure.message
    assert "failed to connect to all addresses" in failure.message
    assert "credentials" in failure.message


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(TimeoutError("timed out after 10s"), id="timeout"),
        pytest.param(ConnectionRefusedError("refused"), id="connection-refused"),
        pytest.param(OSError("network unreachable"), id="oserror"),
    ],
)
def test_os_level_errors_are_unavailable(exc: BaseException) -> None:
    failure = classify(exc)
    assert failure.reason == Reason.MILVUS_UNAVAILABLE
    assert type(exc).__name__ in failure.message
    assert str(exc) in failure.message
    assert "credentials" in failure.message


def test_already_classified_failure_passes_through() -> None:
    failure = Failure(Reason.SECRET_NOT_FOUND, "Secret ns/creds not found")
    assert classify(FailureError(failure)) is failure


def test_anything_else_is_a_milvus_error() -> None:
    assert classify(ValueError("bad")) == Failure(Reason.MILVUS_ERROR, "ValueError: bad")


def test_unavailable_is_retried_not_stalled() -> None:
    assert not classify(TimeoutError("t")).stalled
    assert classify(MilvusException(code=700, message="index not found")).stalled
