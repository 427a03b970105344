"""Kubernetes operator that keeps Milvus collection and partition load state as declared."""

GROUP = "milvusops.dev"
VERSION = "v1alpha1"
COLLECTIONS = "milvuscollections"
CONNECTIONS = "milvusconnections"
ALIASES = "milvusaliases"
PAUSED_ANNOTATION = f"{GROUP}/paused"
# like `kubectl rollout restart`: a new value asks for one refresh of what is loaded
REFRESH_ANNOTATION = f"{GROUP}/refresh-requested-at"
FINALIZER = f"{GROUP}/finalizer"


def version() -> str:
    """The installed package's version (`milvusops --version`)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("milvusops")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "unknown"
