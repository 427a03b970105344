"""Kubernetes operator that keeps Milvus collection and partition load state as declared."""

GROUP = "milvusops.dev"
VERSION = "v1alpha1"
COLLECTIONS = "milvuscollections"
CONNECTIONS = "milvusconnections"
PAUSED_ANNOTATION = f"{GROUP}/paused"
# like `kubectl rollout restart`: a new value asks for one refresh of what is loaded
REFRESH_ANNOTATION = f"{GROUP}/refresh-requested-at"
FINALIZER = f"{GROUP}/finalizer"
