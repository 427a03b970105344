"""Where and how to reach one Milvus server, once a connection is resolved (no client library needed)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one Milvus; `token` never leaves this process."""

    uri: str
    token: str = ""
    timeout: float = 10.0
    ca_pem_path: str = ""
    server_name: str = ""

    def fingerprint(self) -> tuple[str, ...]:
        return (self.uri, self.token, str(self.timeout), self.ca_pem_path, self.server_name)

    @property
    def server(self) -> str:
        """The Milvus server reached, whatever the database and credentials: what shares one server's memory."""
        return server_address(self.uri)


def server_address(uri: str) -> str:
    """host:port as pymilvus dials it (its ConnectionManager's defaults); a database in the path is ignored."""
    if uri.startswith("unix:"):
        return uri
    try:
        parsed = urlparse(uri)
        port = parsed.port or (443 if parsed.scheme.lower() == "https" else 19530)
    except ValueError:  # an invalid port: the connect will say so, the guard needs only a stable key
        return uri
    return f"{parsed.hostname or 'localhost'}:{port}"
