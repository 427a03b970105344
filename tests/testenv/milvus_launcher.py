"""Runs the `milvus-server` wrapper (in Milvus's own venv) so that a restart after a crash keeps its port.

The wrapper probes each port with a plain bind(); after a SIGKILL the server side of every client
connection sits in TIME_WAIT for a minute, that probe fails, and the wrapper silently moves the proxy
to the next port. Milvus itself (Go) listens with SO_REUSEADDR, so the probe does the same.
"""

import socket
import sys
from typing import Any

import milvus  # type: ignore[import-not-found]  # only importable inside Milvus's own venv


def try_bind_port(self: Any, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        return None
    return sock


milvus.MilvusServerConfig.try_bind_port = try_bind_port

if __name__ == "__main__":
    sys.argv[0] = "milvus-server"
    sys.exit(milvus.main())
