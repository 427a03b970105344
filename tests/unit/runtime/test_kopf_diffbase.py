"""`runtime.kopf_diffbase`: the operator's only changing handlers are on.delete, so Kopf keeps no diff base.

With Kopf's annotation storage every new object costs one more PATCH (the `last-handled-configuration`
annotation) and one more watch event, and carries a copy of its spec for the rest of its life.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf
from kopf._cogs.structs import bodies, diffs, patches
from kopf._core.intents import causes

from milvusops.runtime.kopf_diffbase import NoDiffBase

BODY: dict[str, Any] = {
    "apiVersion": "milvusops.dev/v1alpha1",
    "kind": "MilvusCollection",
    "metadata": {"name": "c", "namespace": "n", "uid": "u", "finalizers": ["milvusops.dev/finalizer"]},
    "spec": {"collectionName": "c", "state": "Loaded"},
}


def _cause(storage: kopf.DiffBaseStorage, raw: dict[str, Any]) -> causes.Reason:
    body = bodies.Body(cast(bodies.RawBody, raw))
    old, new = storage.fetch(body=body), storage.build(body=body)
    return causes.detect_changing_cause(
        finalizer="milvusops.dev/finalizer",
        raw_event=cast(bodies.RawEvent, {"type": "ADDED", "object": raw}),
        body=body,
        old=old,
        new=new,
        diff=diffs.diff(old, new),
        resource=None,
        indices=None,
        logger=logging.getLogger("test"),
        patch=patches.Patch(),
        memo=kopf.Memo(),
    ).reason


def _stored(storage: kopf.DiffBaseStorage) -> patches.Patch:
    """The patch Kopf sends after handling a new object with this storage."""
    body = bodies.Body(cast(bodies.RawBody, BODY))
    patch = patches.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    return patch


def test_kopf_default_storage_sees_a_creation_and_writes_the_annotation() -> None:
    """What the operator avoids: Kopf's own storage makes a new object a creation, stored by one more patch."""
    storage = kopf.AnnotationsDiffBaseStorage(prefix="milvusops.dev")
    assert _cause(storage, BODY) == causes.Reason.CREATE
    assert _stored(storage)  # the write each new object cost


def test_a_new_object_is_no_change_and_nothing_is_stored() -> None:
    assert _cause(NoDiffBase(), BODY) == causes.Reason.NOOP
    assert not _stored(NoDiffBase())


def test_deletion_is_still_a_deletion() -> None:
    deleting = {**BODY, "metadata": {**BODY["metadata"], "deletionTimestamp": "2026-12-07T00:00:00Z"}}
    assert _cause(NoDiffBase(), deleting) == causes.Reason.DELETE
