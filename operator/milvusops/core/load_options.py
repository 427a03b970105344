"""Pure: which load options of the spec the server cannot honour (capabilities), before any call is made."""

from __future__ import annotations

from milvusops.core.capabilities import Capabilities, describe, minimum
from milvusops.core.model import LoadOptions


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
