"""Kopf without a diff base: the operator has no create/update/resume handler, only on.delete.

Kopf stores each object's last handled spec (an annotation) to tell creations and updates apart; with
no handler for them that costs every new object one more PATCH and watch event, and a copy of its spec.
"""

from __future__ import annotations

from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """Every object is as last handled: Kopf sees no creation or update, only deletions (by their timestamp)."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self.build(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence, **_: Any) -> None:
        return None
