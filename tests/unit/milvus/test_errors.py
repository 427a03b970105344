"""Error mapping in one place: Milvus error code / gRPC status / OS error -> reason + helpful message."""

from __future__ import annotations

import grpc
import pytest
from pymilvus import MilvusException

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.milvus.errors import classify
from tests.unit.fake_grpc import FakeRpcError, server_status


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
            401,
            "no available nodes in replica: replica not available[replica=470807354396901378]",
            Reason.REPLICA_UNAVAILABLE,
            ["replica not available[replica=470807354396901378]"],
            id="401-replica-not-available",  # Milvus 2.3.5's describe_replica with a query node killed (e2e)
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
            ["cannot reach Milvus"],
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
        pytest.param(
            8,
            "[load_collection] Retry timeout: 10s, message=rate limit exceeded[rate=0.1]",
            Reason.RATE_LIMITED,
            ["retried later"],
            id="8-rate-limit",
        ),
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


FAIL_CONNECTING = "Fail connecting to server on 127.0.0.1:19530, illegal connection params or server unavailable"


def connect_failure(cause: BaseException | None) -> MilvusException:
    """How pymilvus 3.0.2 reports any failed connect: code 2, with the gRPC error as its cause."""
    exc = MilvusException(code=2, message=FAIL_CONNECTING)
    exc.__cause__ = cause
    return exc


def test_wrong_credentials_at_connect_are_unauthenticated() -> None:
    # seen on Milvus 2.3.5: a wrong password or unknown user fails the connect with this cause
    cause = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "auth check failure, please check username and password")
    failure = classify(connect_failure(cause), credentials=True)
    assert failure.reason == Reason.UNAUTHENTICATED
    assert failure.stalled
    assert "auth check failure" in failure.message
    assert "cannot reach" not in failure.message


def test_unauthenticated_on_a_call_is_unauthenticated() -> None:
    # seen on Milvus 2.3.5: the password changed while the client was connected
    failure = classify(FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "auth check failure"))
    assert failure.reason == Reason.UNAUTHENTICATED
    assert failure.stalled


@pytest.mark.parametrize(
    ("details", "privilege", "user"),
    [
        ("PrivilegeLoad: permission deny to alice", "PrivilegeLoad", "alice"),
        ("PrivilegeRelease: permission deny to bob", "PrivilegeRelease", "bob"),
        ("PrivilegeShowPartitions: permission deny to carol", "PrivilegeShowPartitions", "carol"),
    ],
)
def test_permission_denied_names_user_and_privilege(details: str, privilege: str, user: str) -> None:
    failure = classify(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, details))
    assert failure.reason == Reason.PERMISSION_DENIED
    assert failure.stalled
    assert details in failure.message
    assert f"grant privilege {privilege.removeprefix('Privilege')} to a role of user {user}" in failure.message
    assert "cannot reach" not in failure.message and "credentials" not in failure.message


def test_permission_denied_in_other_words_is_still_denied() -> None:
    failure = classify(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "not allowed"))
    assert failure.reason == Reason.PERMISSION_DENIED
    assert "not allowed" in failure.message


@pytest.mark.parametrize(
    ("status", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: Connection refused"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    ],
)
def test_connect_failure_by_the_network_has_no_credentials_hint(status: grpc.StatusCode, details: str) -> None:
    failure = classify(connect_failure(FakeRpcError(status, details)), credentials=True)
    assert failure.reason == Reason.MILVUS_UNAVAILABLE
    assert details in failure.message
    assert "credentials" not in failure.message


def test_connect_failure_of_unknown_cause_hints_at_credentials_only_with_a_token() -> None:
    assert "credentials" in classify(connect_failure(None), credentials=True).message
    assert "credentials" not in classify(connect_failure(None)).message


def test_connect_failure_found_through_a_chain_of_causes() -> None:
    # seen after Milvus stopped: a code-2 failure caused by the reconnect's own code-2 failure
    inner = connect_failure(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection refused"))
    failure = classify(connect_failure(inner), credentials=True)
    assert failure.reason == Reason.MILVUS_UNAVAILABLE
    assert "Connection refused" in failure.message
    assert "credentials" not in failure.message


def test_retry_timeout_carrying_a_grpc_status_is_mapped_by_that_status() -> None:
    # pymilvus's retry loop re-raises an exhausted gRPC error as MilvusException(code=<grpc status>)
    exc = MilvusException(code=grpc.StatusCode.UNAVAILABLE, message="[get_load_state] Retry timeout: 10s, ...")
    assert classify(exc).reason == Reason.MILVUS_UNAVAILABLE


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (grpc.StatusCode.CANCELLED, Reason.MILVUS_UNAVAILABLE),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RATE_LIMITED),
        (grpc.StatusCode.INVALID_ARGUMENT, Reason.MILVUS_ERROR),
        (grpc.StatusCode.INTERNAL, Reason.MILVUS_ERROR),
    ],
)
def test_each_grpc_status_for_what_it_means(status: grpc.StatusCode, reason: Reason) -> None:
    failure = classify(FakeRpcError(status, "details"))
    assert failure.reason == reason
    assert status.name in failure.message or "details" in failure.message


def test_retriable_errors_are_rate_limited_not_stalled() -> None:
    failure = classify(MilvusException(code=65535, message="busy, try later", retriable=True))
    assert failure.reason == Reason.RATE_LIMITED
    assert not failure.stalled
    assert "busy, try later" in failure.message


class LegacyMilvusException(MilvusException):  # type: ignore[misc]
    """A pymilvus without the `retriable` attribute (before 2.5)."""

    def __getattribute__(self, name: str) -> object:
        if name == "retriable":
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_missing_retriable_attribute_is_not_retriable() -> None:
    assert classify(LegacyMilvusException(code=4242, message="odd")).reason == Reason.MILVUS_ERROR
    assert classify(LegacyMilvusException(code=8, message="rate limit")).reason == Reason.RATE_LIMITED


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
    assert "credentials" not in failure.message  # a network failure: the hint would mislead


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
    assert "credentials" not in failure.message


def test_already_classified_failure_passes_through() -> None:
    failure = Failure(Reason.SECRET_NOT_FOUND, "Secret ns/creds not found")
    assert classify(FailureError(failure)) is failure


def test_anything_else_is_a_milvus_error() -> None:
    assert classify(ValueError("bad")) == Failure(Reason.MILVUS_ERROR, "ValueError: bad")


def test_unavailable_is_retried_not_stalled() -> None:
    assert not classify(TimeoutError("t")).stalled
    assert classify(MilvusException(code=700, message="index not found")).stalled


# Errors of servers newer than the 2.3.5 that runs here, read from Milvus's source (not run here).
# pymilvus 3.0.2 raises them through `check_status` -> `MilvusException.from_status(status)`, which keeps
# status.code, status.reason, status.retriable and extra_info["is_input_error"]; each row builds the same.
# Messages follow merr's `wrapFields` ("<leaf message>[name=value]...") in pkg/util/merr/utils.go.
# MERR: milvus-io/milvus pkg/util/merr/errors.go + utils.go@00f21bf69e4b (codes 3, 12, 104, 300-305, 604, 800).
# MERR_605: the same errors.go on the 2.6/master line (ErrSegmentRequestResourceFailed, 605; not in MERR).
# See docs/compatibility.md#error-codes-by-server-version.


@pytest.mark.parametrize(
    ("exc", "reason", "hints"),
    [
        pytest.param(  # ErrResourceGroupNodeNotEnough (MERR), raised by AssignReplica (querycoordv2/utils/meta.go)
            # under the load job's "failed to spawn replica for collection" wrap
            server_status(
                304,
                "failed to spawn replica for collection: resource group node not enough"
                "[rg=__default_resource_group][currentNodeNum=1][expectedNodeNum=2]",
            ),
            Reason.INSUFFICIENT_RESOURCES,
            ["spec.load.replicas"],
            id="304-rg-node-not-enough",
        ),
        pytest.param(  # ErrServiceResourceInsufficient (retriable), WrapErrStreamingNodeNotEnough; MERR
            server_status(  # AssignReplica (querycoordv2/utils/meta.go) with the streaming service on
                12,
                "when load 2 replica count: "
                "service resource insufficient[currentStreamingNode=1][expectedStreamingNode=2]",
                retriable=True,
            ),
            Reason.INSUFFICIENT_RESOURCES,
            ["spec.load.replicas"],
            id="12-resource-insufficient",
        ),
        pytest.param(  # ErrDatabaseNotFound, WrapErrDatabaseNotFound; MERR
            server_status(800, "database not found[database=analytics]", input_error=True),
            Reason.DATABASE_NOT_FOUND,
            ["create database analytics in Milvus", "spec.database"],
            id="800-database-not-found",
        ),
        pytest.param(  # ErrServiceMemoryLimitExceeded, WrapErrServiceMemoryLimitExceeded; MERR
            server_status(3, "memory limit exceeded[predict(MB)=4096][limit(MB)=3276.8]"),
            Reason.INSUFFICIENT_MEMORY,
            ["memory"],
            id="3-memory-limit",
        ),
        pytest.param(  # ErrSegmentLoadFailed, WrapErrSegmentLoadFailed; MERR
            server_status(604, "segment load failed[segment=447712345]"),
            Reason.INSUFFICIENT_MEMORY,
            ["segment"],
            id="604-segment-load-failed",
        ),
        pytest.param(  # ErrSegmentRequestResourceFailed, WrapErrSegmentRequestResourceFailed; MERR_605
            server_status(605, "segment request resource failed[resourceType=Memory]"),
            Reason.INSUFFICIENT_MEMORY,
            ["memory"],
            id="605-segment-request-resource",
        ),
        pytest.param(  # a plain fmt.Errorf (so code 65535) in internal/querynodev2/segments/segment_loader.go
            server_status(
                65535,
                "load segment failed, OOM if load, maxSegmentSize = 512 MB, concurrency = 2, memUsage = 3000 MB, "
                "predictMemUsage = 4100 MB, totalMem = 4096 MB thresholdFactor = 0.900000",
            ),
            Reason.INSUFFICIENT_MEMORY,
            ["memory"],
            id="65535-oom-message",
        ),
        pytest.param(  # ErrResourceGroupNotFound, WrapErrResourceGroupNotFound; MERR (and 2.3's merr alike)
            server_status(300, "resource group not found[rg=gpu-nodes]", input_error=True),
            Reason.INVALID_LOAD_OPTIONS,
            ["spec.load.resourceGroups"],
            id="300-rg-not-found",
        ),
        pytest.param(  # AssignReplica's WrapErrResourceGroupNotFound under the same load job wrap
            server_status(300, "failed to spawn replica for collection: resource group not found[rg=gpu-nodes]"),
            Reason.INVALID_LOAD_OPTIONS,
            ["spec.load.resourceGroups"],
            id="300-rg-not-found-wrapped",
        ),
        pytest.param(  # AssignReplica's plain errors.Errorf (so code 65535): it names resource groups, yet no capacity
            server_status(
                65535,
                "replica=[3] resource group=[rg1,rg2], resource group num can only be 0, 1 or same as replica number",
            ),
            Reason.INVALID_LOAD_OPTIONS,
            ["spec.load.resourceGroups"],
            id="65535-rg-count-vs-replicas",
        ),
        pytest.param(  # ErrResourceGroupIllegalConfig; MERR
            server_status(303, "resource group illegal config[rg=gpu-nodes][config=...]", input_error=True),
            Reason.INVALID_LOAD_OPTIONS,
            ["spec.load.resourceGroups"],
            id="303-rg-illegal-config",
        ),
        pytest.param(  # ErrResourceGroupServiceAvailable (retriable): the group has no serving node yet; MERR
            server_status(305, "resource group service available", retriable=True),
            Reason.RATE_LIMITED,
            ["retried later"],
            id="305-rg-service-unavailable",
        ),
        pytest.param(  # ErrCollectionLoaded via WrapErrCollectionLoaded(name, msg); errors.Wrapf puts msg first; MERR
            server_status(
                104,
                "can not alter mmap properties if collection loaded: collection already loaded[collection=products]",
                input_error=True,
            ),
            Reason.INVALID_LOAD_OPTIONS,
            ["release"],
            id="104-collection-already-loaded",
        ),
    ],
)
def test_newer_server_errors(exc: MilvusException, reason: Reason, hints: list[str]) -> None:
    failure = classify(exc)
    assert failure.reason == reason
    assert exc.message in failure.message  # Milvus's own words are kept
    for hint in hints:
        assert hint in failure.message


def test_newer_server_memory_and_database_reasons_are_stalled() -> None:
    assert classify(server_status(800, "database not found[database=x]")).stalled
    assert classify(server_status(605, "segment request resource failed[resourceType=Memory]")).stalled
    # 12 is retriable in merr, but more replicas than nodes needs a human: it must not read as a rate limit
    assert classify(server_status(12, "service resource insufficient", retriable=True)).stalled
