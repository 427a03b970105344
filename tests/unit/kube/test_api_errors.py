"""Item 7: an API server that answers 429 or 5xx is a classified, retried failure, not an escaped exception."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config
from prometheus_client import REGISTRY

from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.kube.api import KubeApi
from tests.unit.fake_loop import Loop
from tests.unit.fake_milvus import NOT_LOAD, FakeMilvus
from tests.unit.kube.test_api import CALLS


class _Answer:
    status = 503
    headers: dict[str, str] = {}


def _handler(answer: type[_Answer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"try later"}'
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def answering_kube(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[int, dict[str, str]], KubeApi]]:
    """A KubeApi against a server that answers every request with one status and headers."""
    answer = _Answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{server.server_address[1]}"}
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    monkeypatch.setattr(config, "load_config", lambda: config.load_kube_config(config_file=str(kubeconfig)))  # type: ignore[no-untyped-call]
    made: list[KubeApi] = []

    def make(status: int, headers: dict[str, str]) -> KubeApi:
        answer.status, answer.headers = status, headers
        made.append(KubeApi(2.0))
        return made[-1]

    yield make
    for kube in made:
        kube.close()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("call", CALLS)
async def test_a_throttling_or_failing_api_server_is_a_classified_failure(
    answering_kube: Callable[[int, dict[str, str]], KubeApi], call: str, status: int
) -> None:
    kube = answering_kube(status, {})
    with pytest.raises(FailureError) as caught:
        await CALLS[call](kube)
    failure = caught.value.failure
    assert failure.reason == Reason.API_SERVER_ERROR
    assert not failure.stalled
    assert f"answered {status}" in failure.message and "retried" in failure.message, failure.message


async def test_a_429_keeps_the_servers_retry_after(answering_kube: Callable[[int, dict[str, str]], KubeApi]) -> None:
    kube = answering_kube(429, {"Retry-After": "7"})
    with pytest.raises(FailureError) as caught:
        await kube.read_secret_value("ns", "token", "token")
    assert caught.value.failure.retry_after == 7.0
    assert "Secret ns/token" in caught.value.failure.message


class _RefusingKube:
    """Every status patch is refused by the API server, as under load."""

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        failure = Failure(Reason.API_SERVER_ERROR, "the Kubernetes API server answered 429", retry_after=40.0)
        raise FailureError(failure)


async def test_a_refused_status_patch_is_backed_off_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exceptions = REGISTRY.get_sample_value("milvusops_reconciles_total", {"result": "exception"}) or 0.0
    loop = Loop(FakeMilvus({"_default": NOT_LOAD}), {"state": "Released"}, monkeypatch)
    loop.worker.kube = _RefusingKube()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="milvusops"):
        await loop.run(2)
    assert (REGISTRY.get_sample_value("milvusops_reconciles_total", {"result": "exception"}) or 0.0) == exceptions
    assert not [r for r in caplog.records if r.exc_info], "logged with a traceback"
    assert any("answered 429" in r.getMessage() for r in caplog.records)
    assert min(loop.delays) >= 40.0, loop.delays  # the server's Retry-After, over the first backoff step
