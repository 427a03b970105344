"""The bodies Kopf keeps per object hold nothing unread and share their repeated strings."""

from __future__ import annotations

import json
from typing import Any, cast

import kopf

from milvusops.kube.slim_bodies import LAST_APPLIED, slim_body

OBJECT = {
    "apiVersion": "milvusops.dev/v1alpha1",
    "kind": "MilvusCollection",
    "metadata": {
        "name": "products",
        "namespace": "shop",
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        "annotations": {LAST_APPLIED: '{"spec":{"state":"Loaded"}}', "milvusops.dev/paused": "false"},
    },
    "spec": {"state": "Loaded", "partitions": [{"name": "p", "state": "Released"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "InSync", "message": "x" * 65}]},
}


def parsed() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(json.dumps(OBJECT)))  # a fresh parse, as each watch event is


def test_managed_fields_and_kubectl_last_applied_copy_dropped_from_the_body_kopf_keeps() -> None:
    raw = parsed()
    kept = kopf.Body(cast(Any, raw))  # Kopf's live body is a view of the event's dict
    slim_body(raw)
    assert "managedFields" not in kept["metadata"]
    assert dict(kept["metadata"]["annotations"]) == {"milvusops.dev/paused": "false"}
    expected = parsed()
    del expected["metadata"]["managedFields"], expected["metadata"]["annotations"][LAST_APPLIED]
    assert raw == expected  # nothing else changed
    slim_body({"kind": "without metadata", "metadata": {"name": "m"}})  # nothing to drop, no error


def test_keys_and_short_values_are_one_string_in_every_body() -> None:
    first, second = parsed(), parsed()
    slim_body(first)
    slim_body(second)
    key = next(k for k in first["spec"] if k == "partitions")
    assert key is next(k for k in second["spec"] if k == "partitions")
    assert first["spec"]["partitions"][0]["state"] is second["spec"]["partitions"][0]["state"]
    assert first["status"]["conditions"][0]["reason"] is second["status"]["conditions"][0]["reason"]
    # long strings (messages) are rarely repeated: left as parsed
    assert first["status"]["conditions"][0]["message"] is not second["status"]["conditions"][0]["message"]
