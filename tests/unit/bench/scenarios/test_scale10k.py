"""The settings each shard of bench.scenarios.scale10k starts with."""

from bench.scenarios.scale10k import SHARD_KEY, shard_settings


def test_one_shard_leaves_the_queued_calls_to_the_operators_default_and_serves_everything() -> None:
    settings = shard_settings(0, 1, 8, 30.0)
    assert settings == {"MILVUSOPS_MAX_CONCURRENT_CALLS": "8", "MILVUSOPS_RESYNC_SECONDS": "30.0"}


def test_a_given_queued_count_reaches_every_shard_with_its_own_selector() -> None:
    settings = [shard_settings(shard, 2, 8, 30.0, queued=8) for shard in range(2)]
    assert [s["MILVUSOPS_MAX_QUEUED_CALLS"] for s in settings] == ["8", "8"]
    assert [s["MILVUSOPS_WATCH_LABEL_SELECTOR"] for s in settings] == [f"{SHARD_KEY}=shard0", f"{SHARD_KEY}=shard1"]
    assert [s["MILVUSOPS_SERVE_CONNECTIONS"] for s in settings] == ["true", "false"]
