"""The Kubernetes calls the operator makes itself (Kopf does the watching), run off the event loop."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from milvusops import COLLECTIONS, CONNECTIONS, GROUP, VERSION
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.telemetry import metrics


class KubeApi:
    def __init__(self, timeout_seconds: float = 10.0, kubeconfig: str | None = None) -> None:
        # in a pod: the service account; elsewhere: `kubeconfig`, KUBECONFIG or ~/.kube/config
        config.load_config(**({"config_file": kubeconfig} if kubeconfig else {}))  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
        # no urllib3 retries: each would add a timeout to the wait, and the next pass retries anyway
        configuration.retries = False
        self._api = client.ApiClient(configuration)
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._timeout = timeout_seconds

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    async def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """One API call off the event loop; a half-open connection or a silent server fails it, not hangs it."""
        try:
            return await asyncio.to_thread(method, *args, _request_timeout=(self._timeout, self._timeout))
        except ApiException as exc:
            failure = _server_failure(exc, what)
            if failure is None:
                raise  # 403, 404 and the like: the caller says what they mean for its object
            raise FailureError(failure) from exc
        except urllib3.exceptions.TimeoutError as exc:
            message = f"no answer from the Kubernetes API server to {what} within {self._timeout:g} s"
            message += f" ({type(exc).__name__}); retried"
            raise FailureError(Failure(Reason.API_SERVER_UNAVAILABLE, message)) from exc
        except urllib3.exceptions.HTTPError as exc:
            message = f"cannot reach the Kubernetes API server to {what} ({type(exc).__name__}); retried"
            raise FailureError(Failure(Reason.API_SERVER_UNAVAILABLE, message)) from exc

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        metrics.KUBE_READS.labels("Secret").inc()
        try:
            secret = await self._call(
                f"get Secret {namespace}/{name}", self._core.read_namespaced_secret, name, namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                raise FailureError(Failure(Reason.SECRET_NOT_FOUND, f"Secret {namespace}/{name} not found")) from exc
            raise _forbidden(exc, "secrets", namespace, name) from exc
        data = secret.data or {}
        if key not in data:
            raise FailureError(Failure(Reason.SECRET_NOT_FOUND, f"Secret {namespace}/{name} has no key {key!r}"))
        try:
            value = base64.b64decode(data[key]).decode().strip()
        except UnicodeDecodeError as exc:
            raise FailureError(
                Failure(Reason.SECRET_INVALID, f"Secret {namespace}/{name} key {key!r} is not UTF-8 text")
            ) from exc
        if not value:
            raise FailureError(Failure(Reason.SECRET_INVALID, f"Secret {namespace}/{name} key {key!r} is empty"))
        return value

    async def read_connection(self, namespace: str, name: str) -> Mapping[str, Any]:
        metrics.KUBE_READS.labels("MilvusConnection").inc()
        try:
            body = await self._call(
                f"get MilvusConnection {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                CONNECTIONS,
                name,
            )
        except ApiException as exc:
            if exc.status == 404:
                message = f"MilvusConnection {namespace}/{name} not found"
                raise FailureError(Failure(Reason.CONNECTION_NOT_FOUND, message)) from exc
            raise _forbidden(exc, "milvusconnections", namespace, name) from exc
        assert isinstance(body, Mapping)
        return body

    async def read_collection(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """A MilvusCollection as the API server has it now; None once it is gone."""
        try:
            body = await self._call(
                f"get MilvusCollection {namespace}/{name}",
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                COLLECTIONS,
                name,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _forbidden(exc, "milvuscollections", namespace, name) from exc
        assert isinstance(body, Mapping)
        return body

    async def list_collections(self, namespace: str | None) -> list[Mapping[str, Any]]:
        """Every MilvusCollection in `namespace`, or in all namespaces (for `milvusops plan --live`)."""
        what = f"list MilvusCollections in {namespace or 'all namespaces'}"
        if namespace:
            listed = await self._call(
                what, self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, COLLECTIONS
            )
        else:
            listed = await self._call(what, self._custom.list_cluster_custom_object, GROUP, VERSION, COLLECTIONS)
        return list(listed.get("items") or [])

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        try:
            await self._call(
                f"patch the status of {plural} {namespace}/{name}",
                self._custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": dict(patch)},
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise


__all__ = ["COLLECTIONS", "CONNECTIONS", "KubeApi"]


# a Retry-After beyond this is not waited for in full: the next pass looks again anyway
RETRY_AFTER_CAP_SECONDS = 300.0


def _server_failure(exc: ApiException, what: str) -> Failure | None:
    """429 (throttled, e.g. API Priority and Fairness) and 5xx: the API server's trouble, retried with backoff."""
    status = exc.status or 0
    if status != 429 and status < 500:
        return None
    retry_after = _retry_after(exc.headers)
    message = f"the Kubernetes API server answered {status} {exc.reason or ''}".rstrip() + f" to {what}; retried"
    if retry_after is not None:
        message += f" after {retry_after:g} s (its Retry-After)"
    return Failure(Reason.API_SERVER_ERROR, message, retry_after)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds; its HTTP-date form is not worth parsing (the backoff applies instead)."""
    value = (headers or {}).get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, RETRY_AFTER_CAP_SECONDS)


def _forbidden(exc: ApiException, resource: str, namespace: str, name: str) -> Exception:
    """A 403 needs an RBAC change, not a retry: say which permission is missing."""
    if exc.status != 403:
        return exc
    message = f"the operator may not get {resource} {namespace}/{name} (403 Forbidden): grant it get on {resource}"
    message += f" in namespace {namespace} (see docs/security.md)"
    return FailureError(Failure(Reason.FORBIDDEN, message))
