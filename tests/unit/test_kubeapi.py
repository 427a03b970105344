"""Kubernetes API errors that need a human become reasons; the rest are left to Kopf's retries."""

from __future__ import annotations

from kubernetes.client import ApiException

from milvusops.failures import FailureError, Reason
from milvusops.kubeapi import _forbidden


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
