"""Operator settings from MILVUSOPS_* variables and flags: peering, and the pauses and lingers tests shorten."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from milvusops.runtime.settings import PRIORITY_CEILING, Settings


def _settings(argv: list[str] | None = None) -> Settings:
    """Built as __main__ builds it (mypy sees pydantic fields without defaults: no plugin)."""
    return Settings(_cli_parse_args=argv or [])  # type: ignore[call-arg]


def test_peering_defaults() -> None:
    settings = _settings()
    assert settings.standalone is False
    assert settings.peering_name == "default"  # the peering object the chart creates
    assert settings.peering_lifetime_seconds == 30
    assert 1 <= settings.peering_priority < PRIORITY_CEILING


def test_each_process_draws_its_own_priority() -> None:
    # replicas share one environment: equal priorities would make Kopf pause all of them
    priorities = {_settings().peering_priority for _ in range(20)}
    assert len(priorities) == 20


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("MILVUSOPS_PEERING_PRIORITY", "2000000000", "peering_priority", 2_000_000_000),
        ("MILVUSOPS_PEERING_PRIORITY", "-5", "peering_priority", -5),
        ("MILVUSOPS_PEERING_NAME", "milvusops.team-a", "peering_name", "milvusops.team-a"),
        ("MILVUSOPS_PEERING_LIFETIME_SECONDS", "10", "peering_lifetime_seconds", 10),
        ("MILVUSOPS_STANDALONE", "true", "standalone", True),
    ],
)
def test_peering_from_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(_settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MILVUSOPS_PEERING_LIFETIME_SECONDS", "9"),  # Kopf renews 5-10 s early: no margin left
        ("MILVUSOPS_PEERING_LIFETIME_SECONDS", "2.5"),
        ("MILVUSOPS_PEERING_PRIORITY", "high"),
        ("MILVUSOPS_PEERING_NAME", "Default"),  # not a Kubernetes object name
        ("MILVUSOPS_PEERING_NAME", ""),
    ],
)
def test_invalid_peering_settings_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        _settings()


def test_peering_from_flags() -> None:
    argv = ["--peering-priority", "7", "--peering-name", "ops", "--peering-lifetime-seconds", "15"]
    settings = _settings(argv)
    assert (settings.peering_priority, settings.peering_name, settings.peering_lifetime_seconds) == (7, "ops", 15)


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from milvusops.runtime.settings import InvalidSettings, load

    monkeypatch.setenv("MILVUSOPS_NAMESPACES", "team-a,team-b")  # pydantic-settings wants JSON for a list
    with pytest.raises(InvalidSettings, match=r'^MILVUSOPS_NAMESPACES: not valid JSON \(lists are JSON, e\.g\. \["'):
        load()
    monkeypatch.setenv("MILVUSOPS_NAMESPACES", '["team-a"]')
    monkeypatch.setenv("MILVUSOPS_RESYNC_SECONDS", "soon")
    with pytest.raises(InvalidSettings, match=r"^MILVUSOPS_RESYNC_SECONDS: Input should be a valid number"):
        load([])


def test_call_threads_linger_30_s_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().call_thread_linger_seconds == 30
    monkeypatch.setenv("MILVUSOPS_CALL_THREAD_LINGER_SECONDS", "2.5")
    assert _settings().call_thread_linger_seconds == 2.5
    monkeypatch.setenv("MILVUSOPS_CALL_THREAD_LINGER_SECONDS", "0")  # a thread per call: never what is meant
    with pytest.raises(ValidationError):
        _settings()


def test_replicas_settle_120_s_after_a_query_node_change_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().replicas_settle_seconds == 120
    monkeypatch.setenv("MILVUSOPS_REPLICAS_SETTLE_SECONDS", "0")  # every confirmation after any change only
    assert _settings().replicas_settle_seconds == 0
    monkeypatch.setenv("MILVUSOPS_REPLICAS_SETTLE_SECONDS", "-1")
    with pytest.raises(ValidationError):
        _settings()


def test_api_retries_pause_at_most_10_s_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().api_retry_max_seconds == 10
    monkeypatch.setenv("MILVUSOPS_API_RETRY_MAX_SECONDS", "1")
    assert _settings().api_retry_max_seconds == 1
    monkeypatch.setenv("MILVUSOPS_API_RETRY_MAX_SECONDS", "0")  # Kopf would hammer a missing API server
    with pytest.raises(ValidationError):
        _settings()
