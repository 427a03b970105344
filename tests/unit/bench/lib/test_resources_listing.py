"""bench.lib.resources.listing: pages, and a busy API server's 504s asked again rather than ending a run."""

from __future__ import annotations

from typing import Any, cast

import pytest
from bench.lib import resources
from kubernetes.client import ApiException

from tests.e2e.helpers import Kube


class Custom:
    def __init__(self, answers: list[dict[str, Any] | ApiException]) -> None:
        self.answers = answers
        self.tokens: list[str | None] = []

    def list_namespaced_custom_object(self, *args: Any, _continue: str | None = None, **kwargs: Any) -> Any:
        self.tokens.append(_continue)
        answer = self.answers.pop(0)
        if isinstance(answer, ApiException):
            raise answer
        return answer


class FakeKube:
    def __init__(self, custom: Custom) -> None:
        self.custom = custom


def _busy(status: int) -> ApiException:
    exc = ApiException(status=status, reason="Gateway Timeout")
    exc.headers = {"Retry-After": "1"}
    return exc


def test_a_page_the_api_server_was_too_busy_for_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("bench.lib.resources.time.sleep", slept.append)
    first = {"items": [{"n": 1}], "metadata": {"continue": "t1"}}
    last = {"items": [{"n": 2}], "metadata": {}}
    custom = Custom([first, _busy(504), _busy(504), last])
    assert resources.listing(cast(Kube, FakeKube(custom)), "ns") == [{"n": 1}, {"n": 2}]
    assert custom.tokens == [None, "t1", "t1", "t1"] and slept == [1.0, 1.0]


def test_other_errors_and_a_server_busy_for_too_long_end_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.lib.resources.time.sleep", lambda _: None)
    with pytest.raises(ApiException):
        resources.listing(cast(Kube, FakeKube(Custom([_busy(403)]))), "ns")
    with pytest.raises(ApiException):
        resources.listing(cast(Kube, FakeKube(Custom([_busy(504)] * resources.PAGE_ATTEMPTS))), "ns")


def _item(name: str, ready: bool) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": {"name": name, "generation": 1}, "status": {"observedGeneration": 1, "conditions": [condition]}}


class FakeWatch:
    """Yields the next scripted stream of events per `stream` call."""

    streams: list[list[dict[str, Any]]] = []
    versions: list[str] = []

    def stream(self, *args: Any, resource_version: str = "", **kwargs: Any) -> Any:
        FakeWatch.versions.append(resource_version)
        return iter(FakeWatch.streams.pop(0))

    def stop(self) -> None:
        pass


def test_wait_ready_follows_a_watch_and_lists_again_when_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.lib.resources.watch.Watch", FakeWatch)
    FakeWatch.versions = []
    FakeWatch.streams = [
        [{"type": "MODIFIED", "object": _item("a", True)}, {"type": "ERROR", "object": {"code": 410}}],
        [{"type": "ADDED", "object": _item("other", False)}, {"type": "MODIFIED", "object": _item("b", True)}],
    ]
    lists = [
        {"items": [_item("a", False)], "metadata": {"resourceVersion": "5"}},
        {"items": [_item("a", True), _item("b", False)], "metadata": {"resourceVersion": "9"}},
    ]
    custom = Custom(cast(list[dict[str, Any] | ApiException], lists))
    assert resources.wait_ready(cast(Kube, FakeKube(custom)), "ns", ["a", "b"], timeout=60) >= 0
    assert FakeWatch.versions == ["5", "9"] and not FakeWatch.streams  # the second list's version, then done


def test_wait_ready_says_which_are_not_ready_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.lib.resources.watch.Watch", FakeWatch)
    FakeWatch.streams = [[]]
    clock = iter([0.0, 0.0, 0.0, 0.0, 100.0, 100.0, 100.0])
    monkeypatch.setattr("bench.lib.resources.time.monotonic", lambda: next(clock))
    custom = Custom([{"items": [_item("a", False)], "metadata": {"resourceVersion": "1"}}])
    with pytest.raises(resources.NotReadyError, match=r"2 of 2 not Ready after 10s: a .*; b \(no status yet"):
        resources.wait_ready(cast(Kube, FakeKube(custom)), "ns", ["a", "b"], timeout=10)
