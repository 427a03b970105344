"""`python -m tests.testenv cluster`: a Milvus 2.3.5 cluster on loopback until Ctrl+C, with how to reach it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import gobins
from .milvus_cluster import MilvusCluster
from .processes import Session


def main(query_nodes: int = 2) -> int:
    with Session(farewell="stopping the cluster") as session:
        binaries = gobins.ensure_all()
        workdir = Path(tempfile.mkdtemp(prefix="milvus-cluster-"))
        cluster = MilvusCluster(binaries, workdir, query_nodes)
        session.callback(cluster.stop)
        session.say(f"starting a Milvus cluster in {workdir} (etcd, Kafka, coordinators, proxy, nodes)")
        cluster.start()
        session.say(f"ready in {cluster.started_in:.0f} s: {cluster.describe()}")
        session.say(f"  python: MilvusClient(uri={cluster.uri!r}, token={cluster.root_token!r})")
        session.say(f"  logs:   {workdir}/<role>/<role>.log; Kafka broker {cluster.kafka.broker}")
        session.say("Ctrl+C stops every process of it")
        session.wait()
    return 0
