"""What `milvusops` runs (after `__main__` kept pandas out and sent `plan` elsewhere): configure, then run Kopf."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import kopf
from prometheus_client import start_http_server

from milvusops.runtime import handlers, kopf_index_wait
from milvusops.runtime.settings import InvalidSettings, load
from milvusops.telemetry import logs


def main(args: list[str]) -> None:
    """Run the operator with its flags (none: the environment alone)."""
    try:
        settings = load(args)
    except InvalidSettings as exc:
        # a bad setting (e.g. a mistyped label selector) stops the operator before it watches anything
        sys.exit(f"milvusops: invalid configuration: {exc}")
    logs.configure(settings.log_format, settings.log_level)
    kopf_index_wait.install()  # Kopf's startup wait for its indexes, linear instead of quadratic in the objects listed
    registry = kopf.get_default_registry()
    if settings.serve_connections:
        handlers.serve_connections(registry)
        handlers.serve_aliases(registry)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    if not settings.standalone:
        logging.getLogger(__name__).info(
            "Kopf peering %r as priority %d, lifetime %d s: this replica acts only while no live peer has a higher"
            " priority, and waits while the peering object or its CRD is missing",
            settings.peering_name,
            settings.peering_priority,
            settings.peering_lifetime_seconds,
        )
    logging.getLogger(__name__).info(
        "serving MilvusCollections %s; MilvusConnections and MilvusAliases %s",
        f"matching {settings.watch_label_selector!r}" if settings.watch_label_selector else "with any labels",
        "here" if settings.serve_connections else "in another shard (MILVUSOPS_SERVE_CONNECTIONS=false)",
    )
    operate = kopf.operator(
        registry=registry,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=settings.standalone,
        priority=settings.peering_priority,
        # a name makes peering mandatory: a replica starts paused and acts only after it has seen its peers
        peering_name=None if settings.standalone else settings.peering_name,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=settings),
    )
    slow = os.environ.get(SLOW_CALLBACK_VARIABLE)
    asyncio.run(_watching_slow_callbacks(operate, float(slow)) if slow else operate, debug=bool(slow))


# tests only: asyncio debug, logging every callback that held the event loop longer than this many seconds
SLOW_CALLBACK_VARIABLE = "MILVUSOPS_TEST_SLOW_CALLBACK_SECONDS"


async def _watching_slow_callbacks(operate: Coroutine[Any, Any, None], seconds: float) -> None:
    """asyncio logs "Executing <callback> took N seconds" (logger asyncio, WARNING) past `seconds`."""
    asyncio.get_running_loop().slow_callback_duration = seconds
    logging.getLogger(__name__).info("asyncio debug: callbacks over %g s are logged", seconds)
    await operate


assert handlers  # the import registers the handlers with Kopf's default registry
