"""Logging as text or one JSON object per line; extras (resource, collection, ...) become fields."""

from __future__ import annotations

import json
import logging
from typing import Any

# the structured fields our own log lines carry; Kopf's extras (settings, k8s refs) are left out
FIELDS = ("resource", "collection", "partition", "action", "outcome", "duration")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line + "".join(f" {k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))


class EventsIntoGoingNamespaces(logging.Filter):
    """Kopf logs each refused retry of an event posted into a namespace being deleted at ERROR: routine, not an error.

    The API server answers 403 NamespaceTerminating, then 404 once the namespace is gone; the retries go to DEBUG
    and the final "Failed to post an event" to INFO.
    """

    MARKS = ("because it is being terminated", "Code: 404. Message: namespaces ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO or not any(mark in record.getMessage() for mark in self.MARKS):
            return True
        record.levelno = logging.INFO if "Failed to post an event" in record.getMessage() else logging.DEBUG
        record.levelname = logging.getLevelName(record.levelno)
        return logging.getLogger().isEnabledFor(record.levelno)


def configure(log_format: str, level: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Kopf's event poster logs through its own module logger (posting.py passes it to every request)
    logging.getLogger("kopf._core.engines.posting").addFilter(EventsIntoGoingNamespaces())
    # Kopf reports every handled watch event at INFO; our own lines already say what happened
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, root.level))
