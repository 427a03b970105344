"""A real Kafka broker (one KRaft node: broker and controller) from the jars Maven resolves, for a Milvus cluster."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from .cache import cache_root, digest
from .processes import Process, free_port, wait_until

KAFKA_VERSION = "3.9.1"
# Kafka logs through slf4j 1.x; without a binding it is silent and its own log4j config is ignored
POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>milvusops.testenv</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version></dependency>
  </dependencies>
</project>
"""
LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def ensure_jars() -> Path:
    """The folder of Kafka's jars, resolved by Maven (the machine's own settings) once per pom."""
    home = cache_root() / f"kafka-{KAFKA_VERSION}-{digest(POM.encode())}"
    lib = home / "lib"
    if not (home / ".installed").exists():
        shutil.rmtree(lib, ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        (home / "pom.xml").write_text(POM)
        command = ["mvn", "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies"]
        subprocess.run([*command, f"-DoutputDirectory={lib}"], check=True)
        (home / ".installed").touch()
    return lib


class Kafka:
    """One broker that is also its own KRaft controller; topics are created on first use, replication 1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.controller_port = free_port()
        self.broker = f"127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self, timeout: float = 90) -> None:
        lib = ensure_jars()
        self.workdir.mkdir(parents=True, exist_ok=True)
        properties = self.workdir / "server.properties"
        properties.write_text(self._properties())
        (self.workdir / "log4j.properties").write_text(LOG4J)
        classpath = f"{lib}/*"
        format_storage = ["java", "-cp", classpath, "kafka.tools.StorageTool", "format"]
        formatted = subprocess.run(
            [*format_storage, "-t", _cluster_id(), "-c", str(properties)], capture_output=True, text=True, timeout=120
        )
        if formatted.returncode != 0:  # CalledProcessError would hide kafka-storage's own words
            raise RuntimeError(f"kafka-storage format failed ({formatted.returncode}): {formatted.stderr[-2000:]}")
        java = ["java", "-Xmx512m", "-Xms128m", "-cp", classpath]
        log4j = f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}"
        self.process = Process("kafka", [*java, log4j, "kafka.Kafka", str(properties)], self.workdir / "kafka.log")
        wait_until(self._listening, timeout, "kafka", interval=0.5)

    def _properties(self) -> str:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "auto.create.topics.enable": "true",
            "group.initial.rebalance.delay.ms": "0",
            # Milvus sends an insert as one message: 20,000 vectors of dim 128 are 10 MB (Kafka's default is 1 MB)
            "message.max.bytes": str(64 << 20),
            "replica.fetch.max.bytes": str(64 << 20),
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _listening(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"kafka exited:\n{self.process.log_tail()}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=2):
            return True

    def stop(self, grace: float = 15) -> None:
        if self.process is not None:
            self.process.stop(grace=grace)
            self.process = None


def _cluster_id(draw: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as `kafka-storage random-uuid`."""
    while True:
        cluster_id = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # kafka-storage would parse it as an option; Kafka's Uuid skips these too
            return cluster_id
