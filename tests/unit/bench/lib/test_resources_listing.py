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
