"""Kubernetes API errors that need a human become reasons; the rest are left to Kopf's retries."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config
from kubernetes.client import ApiException

from milvusops.core.failures import FailureError, Reason
from milvusops.kube.api import KubeApi, _forbidden


def test_forbidden_names_the_missing_permission() -> None:
    error = _forbidden(ApiException(status=403, reason="Forbidden"), "secrets", "team-a", "token")
    assert isinstance(error, FailureError)
    assert error.failure.reason == Reason.FORBIDDEN
    assert error.failure.stalled
    assert "get on secrets in namespace team-a" in error.failure.message
    assert "team-a/token" in error.failure.message


def test_other_api_errors_are_not_classified() -> None:
    original = ApiException(status=500, reason="Internal Server Error")
    assert _forbidden(original, "secrets", "team-a", "token") is original


@pytest.fixture
def silent_api_server() -> Iterator[str]:
    """An API server that accepts connections and never answers (a half-open connection, an overloaded server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in accepted:  # lets a client without a timeout see EOF, so the test process can end
        connection.close()
    listener.close()


@pytest.fixture
def silent_kube(
    silent_api_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[float], KubeApi]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "silent", "cluster": {"server": silent_api_server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "silent", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    monkeypatch.setattr(config, "load_config", lambda: config.load_kube_config(config_file=str(kubeconfig)))  # type: ignore[no-untyped-call]
    made: list[KubeApi] = []

    def make(timeout: float) -> KubeApi:
        made.append(KubeApi(timeout))
        return made[-1]

    yield make
    for kube in made:
        kube.close()


CALLS: dict[str, Callable[[KubeApi], Awaitable[Any]]] = {
    "read_secret_value": lambda kube: kube.read_secret_value("ns", "token", "token"),
    "read_connection": lambda kube: kube.read_connection("ns", "main"),
    "patch_status": lambda kube: kube.patch_status("milvuscollections", "ns", "c", {"observedGeneration": 1}),
}


@pytest.mark.parametrize("call", CALLS)
async def test_an_api_server_that_never_answers_is_a_classified_failure(
    silent_kube: Callable[[float], KubeApi], call: str
) -> None:
    kube = silent_kube(0.5)
    started = time.monotonic()
    with pytest.raises(FailureError) as caught:
        await asyncio.wait_for(CALLS[call](kube), 10)  # without a request timeout: hangs until then
    elapsed = time.monotonic() - started
    assert caught.value.failure.reason == Reason.API_SERVER_UNAVAILABLE
    assert not caught.value.failure.stalled
    assert "0.5 s" in caught.value.failure.message
    assert elapsed < 3, f"{call} gave up after {elapsed:.1f} s"
