"""Pure: which load options of the spec the server cannot honour (capabilities), before any call is made."""

from __future__ import annotations

from milvusops.core.capabilities import Capabilities, describe, minimum
from milvusops.core.model import CollectionSpec, LoadOptions
from milvusops.core.observed import Observed


def unsupported_options(options: LoadOptions, caps: Capabilities) -> str | None:
    """A message naming each option set in spec that this server lacks, with the first version that has it."""
    lacking: list[tuple[str, str]] = []
    if not caps.load_fields:
        if options.load_fields:
            lacking.append(("spec.load.loadFields", minimum("load_fields")))
        if options.skip_load_dynamic_field:
            lacking.append(("spec.load.skipLoadDynamicField", minimum("load_fields")))
    if options.priority is not None and not caps.load_priority:
        lacking.append(("spec.load.priority", minimum("load_priority")))
    if not lacking:
        return None
    needs = ", ".join(f"{field} needs Milvus {version} or later" for field, version in lacking)
    # an older server would silently ignore these fields of the request and load otherwise than asked
    return f"{describe(caps)} cannot honour the load options: {needs}; remove them or upgrade Milvus (no load was sent)"


def effective(spec: CollectionSpec, observed: Observed) -> CollectionSpec:
    """The spec with an unset `load.replicas` read as "what Milvus has": the loaded partitions' replica number,
    which later loads must use too (Milvus loads more partitions of a collection only with the same number).

    With nothing loaded it stays unset and the server decides (the collection's or database's replica
    property on Milvus 2.4+, else 1). A number set in spec is kept: the operator then makes Milvus match it.
    """
    if spec.load.replicas is not None or observed.replicas is None:
        return spec
    load = spec.load.model_copy(update={"replicas": observed.replicas.count})
    return spec.model_copy(update={"load": load})
