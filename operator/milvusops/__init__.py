"""Kubernetes operator that keeps Milvus collection and partition load state as declared."""

GROUP = "milvusops.dev"
VERSION = "v1alpha1"
COLLECTIONS = "milvuscollections"
CONNECTIONS = "milvusconnections"
PAUSED_ANNOTATION = f"{GROUP}/paused"
FINALIZER = f"{GROUP}/finalizer"
