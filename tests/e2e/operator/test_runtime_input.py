"""Runtime bad input (what no schema can catch) gives a reason and a clear message; secrets never leak."""

from __future__ import annotations

import base64
import secrets
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.helpers import Kube, OperatorProcess, new_collection, wait_for
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> OperatorProcess:
    """One operator for this module's tests, each in its own namespace; the ones that count calls start their own."""
    return shared_operator


CONNECTIONS = "milvusconnections"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server with a certificate from a CA the connection does not trust; it only handshakes."""
    cert, key = self_signed(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused our certificate: exactly what is tested

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


def test_tls_mismatch_is_unavailable_with_what_to_check(
    kube: Kube, namespace: str, operator: OperatorProcess, milvus: MilvusServer, tls_server: int, tmp_path: Path
) -> None:
    ca, _ = self_signed(tmp_path, "other-ca")
    kube.create_secret(namespace, "ca", {"ca.crt": ca.read_text()})
    tls = {"caSecretRef": {"name": "ca"}}
    # a TLS server whose certificate our CA did not sign, and a plaintext server spoken to with TLS
    kube.create_connection(
        namespace, "untrusted", {"uri": f"https://127.0.0.1:{tls_server}", "tls": tls, "timeoutSeconds": 2}
    )
    kube.create_connection(
        namespace, "plaintext", {"uri": f"https://127.0.0.1:{milvus.port}", "tls": tls, "timeoutSeconds": 2}
    )
    for connection in ("untrusted", "plaintext"):
        kube.create(namespace, connection, {"collectionName": "c", "connectionRef": {"name": connection}})
    for connection in ("untrusted", "plaintext"):
        ready = kube.wait_reason(namespace, connection, "MilvusUnavailable", timeout=60)
        assert "tls.caSecretRef" in ready["message"] and "tls.serverName" in ready["message"], ready
        kube.wait_reason(namespace, connection, "MilvusUnavailable", plural=CONNECTIONS)
    assert operator.process is not None and operator.process.alive()


def test_malformed_secrets_are_named(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    binary = base64.b64encode(b"\xff\xfe\x00").decode()
    kube.core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="binary"), data={"token": binary})
    )
    kube.create_secret(namespace, "blank", {"token": "  "})
    kube.create_secret(namespace, "other-key", {"password": "x"})
    cases = {
        "binary": ("SecretInvalid", "not UTF-8"),
        "blank": ("SecretInvalid", "is empty"),
        "other-key": ("SecretNotFound", "has no key 'token'"),
    }
    for secret in cases:
        kube.create_connection(
            namespace, secret, {"uri": "http://127.0.0.1:1", "credentialsSecretRef": {"name": secret}}
        )
        kube.create(namespace, secret, {"collectionName": "c", "connectionRef": {"name": secret}})
    for secret, (reason, fragment) in cases.items():
        ready = kube.wait_reason(namespace, secret, reason)
        assert fragment in ready["message"] and f"{namespace}/{secret}" in ready["message"], ready
        assert kube.condition(namespace, secret, "Stalled")["status"] == "True"


def test_nonexistent_database(kube: Kube, namespace: str, milvus: MilvusServer, operator: OperatorProcess) -> None:
    kube.create(namespace, "nodb", {"collectionName": "c", "database": "no_such_database"})
    ready = kube.wait_reason(namespace, "nodb", "CollectionNotFound")
    assert "no_such_database" in ready["message"], ready
    assert kube.condition(namespace, "nodb", "Stalled")["status"] == "True"


def test_no_secret_value_in_logs_events_status_or_metrics(
    kube: Kube, namespace: str, milvus: MilvusServer, control_plane: ControlPlane, start_operator: object
) -> None:
    assert callable(start_operator)
    operator: OperatorProcess = start_operator(MILVUSOPS_LOG_LEVEL="DEBUG")  # the most the operator ever says
    user, password, wrong = f"u{secrets.token_hex(4)}", secrets.token_hex(12), secrets.token_hex(12)
    root = milvus.client()
    root.create_user(user, password)
    root.grant_role(user, "admin")
    root.close()
    kube.create_secret(namespace, "good", {"token": f"{user}:{password}"})
    kube.create_secret(namespace, "bad", {"token": f"{user}:{wrong}"})
    for name in ("good", "bad"):
        kube.create_connection(namespace, name, {"uri": milvus.uri, "credentialsSecretRef": {"name": name}})
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "good", {"collectionName": collection, "state": "Loaded", "connectionRef": {"name": "good"}})
    kube.create(
        namespace,
        "bad",
        {"collectionName": collection, "connectionRef": {"name": "bad"}, "managementPolicy": "Observe"},
    )
    kube.wait_reason(namespace, "good", "InSync", timeout=90)
    kube.wait_reason(namespace, "bad", "Unauthenticated")
    kube.delete(namespace, "good")
    wait_for(lambda: not kube.exists(namespace, "good"), 30, "deleted")
    outputs = {
        "operator log": operator.log(),
        "metrics": operator.metrics(),
        "events": control_plane.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout,
        "objects": control_plane.kubectl(
            "get", "milvuscollections,milvusconnections", "-n", namespace, "-o", "yaml"
        ).stdout,
    }
    assert " DEBUG " in outputs["operator log"]  # debug logging was really on
    for value in (password, wrong, base64.b64encode(f"{user}:{password}".encode()).decode()):
        leaks = [where for where, text in outputs.items() if value in text]
        assert not leaks, f"a secret value appears in {leaks}"
    assert all(len(text) > 100 for text in outputs.values())  # there was something to look into


def test_tls_is_not_skipped_for_a_server_already_reached_in_plaintext(
    kube: Kube, namespace: str, operator: OperatorProcess, milvus: MilvusServer, tmp_path: Path
) -> None:
    # pymilvus shares one channel per address and token, whatever the TLS settings of the client asking
    collection = new_collection(milvus, ["a"])
    kube.create(namespace, "plain", {"collectionName": collection, "managementPolicy": "Observe"})
    kube.wait_reason(namespace, "plain", "Observing")  # the default connection: plaintext, root token
    ca, _ = self_signed(tmp_path, "ca")
    kube.create_secret(namespace, "ca", {"ca.crt": ca.read_text()})
    kube.create_secret(namespace, "token", {"token": milvus.root_token})
    spec = {
        "uri": f"https://127.0.0.1:{milvus.port}",  # the same address, with TLS that the server cannot speak
        "tls": {"caSecretRef": {"name": "ca"}},
        "credentialsSecretRef": {"name": "token"},
        "timeoutSeconds": 2,
    }
    kube.create_connection(namespace, "tls", spec)
    body = {"collectionName": collection, "managementPolicy": "Observe", "connectionRef": {"name": "tls"}}
    kube.create(namespace, "secure", body)
    ready = kube.wait_reason(namespace, "secure", "MilvusUnavailable", timeout=60)
    assert "tls.caSecretRef" in ready["message"], ready
    kube.wait_reason(namespace, "tls", "MilvusUnavailable", plural=CONNECTIONS)
