"""pymilvus's MilvusClient with a connection manager of its own, and its close that never raises."""

from __future__ import annotations

import logging
from typing import Any

import pymilvus
from pymilvus.client.connection_manager import ConnectionConfig, ConnectionManager

log = logging.getLogger("milvusops")


class MilvusClient(pymilvus.MilvusClient):  # type: ignore[misc]
    """pymilvus's MilvusClient with a ConnectionManager of its own.

    pymilvus's process-wide manager holds one lock for a whole connect (up to the connection's timeout)
    and for every close and reconnect: one unreachable server would hold back every other's. This is
    MilvusClient.__init__ of pymilvus 3.0.2 with the manager made here (tests/unit/runtime/test_connections.py
    checks the source it mirrors).
    """

    def __init__(self, uri: str, token: str = "", db_name: str = "", timeout: float | None = None, **kwargs: Any):
        self._config = ConnectionConfig.from_uri(uri, token=token, db_name=db_name, **kwargs)
        self._manager = ConnectionManager()  # its lock is this client's alone
        self._handler = self._manager.get_or_create(self._config, dedicated=True, client=self, timeout=timeout)
        self._using = f"cm-{id(self._handler)}"
        self.is_self_hosted = bool(self.get_server_type() == "milvus")


def close_quietly(client: MilvusClient) -> None:
    try:
        client.close()
    except Exception:  # a channel that fails to close is gone all the same
        log.debug("closing a Milvus client failed", exc_info=True)
