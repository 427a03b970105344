"""The KRaft cluster id the test environment formats Kafka's storage with (tests/testenv/kafka.py)."""

import uuid

from tests.testenv.kafka import _cluster_id


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    # kafka-storage's argument parser takes "-t -L1Y43RiSc6hqt2GJV8xUg" for an unknown option (CI,
    # 2026-11-30): 16 random bytes whose first is 0xF8-0xFB encode to a leading "-", 1 in 64 ids
    drawn = iter([uuid.UUID(bytes=bytes([0xF8]) + bytes(15)), uuid.UUID(bytes=bytes([0x2F]) + bytes(15))])
    cluster_id = _cluster_id(lambda: next(drawn))
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22  # still 16 bytes in URL-safe base64 without padding


def test_a_cluster_id_is_new_each_time() -> None:
    assert _cluster_id() != _cluster_id()
