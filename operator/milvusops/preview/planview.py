"""Pure: `milvusops plan` previews as text: a table for a terminal, JSON for tools, Markdown for a pull request."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from milvusops.core.memory_estimate import human
from milvusops.preview.rows import Report, ResourcePreview

NOT_ESTIMATED = "n/a"  # Milvus could not be asked for sizes (or the collection does not exist)


SCHEMA_VERSION = 2  # of the JSON report: 2 has keys without spaces (noChange), skipped and schemaVersion


def summary(report: Report) -> dict[str, int]:
    counts = {"resources": len(report.previews), "change": 0, "error": 0, "noChange": 0}
    for item in report.previews:
        counts[_camel(item.status.replace(" ", "_"))] += 1
    return {**counts, "skipped": len(report.skipped)}


def _headline(report: Report) -> str:
    counts = summary(report)
    if report.empty and not report.previews:
        return "no MilvusCollection or MilvusAlias in the input: nothing was planned"
    skipped = f"; {counts['skipped']} other document(s) skipped" if counts["skipped"] else ""
    kinds = {item.kind for item in report.previews} or {"MilvusCollection"}
    kind = kinds.pop() if len(kinds) == 1 else "resource"
    return (
        f"{counts['resources']} {kind}(s): {counts['change']} to change, {counts['error']} with errors,"
        f" {counts['noChange']} unchanged{skipped}"
    )


def _memory(value: int | None) -> str:
    if value is None:
        return NOT_ESTIMATED
    return "0" if value == 0 else ("+" if value > 0 else "-") + human(abs(value))


def _reason(item: ResourcePreview) -> str:
    return f"{item.reason}: {item.message}" if item.message else item.reason


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def table(report: Report) -> str:
    lines: list[str] = []
    for item in report.previews:
        lines.append(f"{item.namespace}/{item.name} ({item.source}): {item.status}")
        if item.errors:
            lines += [f"  invalid: {error}" for error in item.errors]
            lines.append("")
            continue
        if item.kind == "MilvusAlias":
            lines += [f"  {line}" for line in _alias_lines(item)]
        else:
            lines.append(f"  collection {item.collection} via {item.connection}")
        if item.partitions:
            rows = [["PARTITION", "CURRENT", "DESIRED", "CHANGE", "MEMORY"]]
            rows += [[p.name, p.current, p.desired, p.change or "-", _memory(p.memory_bytes)] for p in item.partitions]
            lines += [f"  {line}" for line in _columns(rows)]
        if item.schedule:
            lines.append(f"  schedule: {item.schedule}")
        lines.append(f"  calls:  {'; '.join(item.calls) if item.calls else 'none'}")
        if item.destructive:
            lines.append(f"  destructive: {'; '.join(item.destructive)}")
        lines.append(f"  reason: {_reason(item)}")
        if item.kind != "MilvusAlias":  # an alias holds no memory; its release is in calls and destructive
            lines.append(f"  memory: {_memory(item.memory_bytes)}")
        lines.append("")
    lines += [f"skipped {item.source}: {item.reason}" for item in report.skipped]
    lines.append(_headline(report))
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    document: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "summary": {**summary(report), "exitCode": report.exit_code},
        "resources": [_json_resource(item) for item in report.previews],
        "skipped": [{"source": item.source, "reason": item.reason} for item in report.skipped],
    }
    return json.dumps(document, indent=2) + "\n"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _alias_lines(item: ResourcePreview) -> list[str]:
    """Where the alias points, where the spec wants it, whether it would switch now, and the release after."""
    lines = [f"alias {item.collection} via {item.connection}"]
    if item.alias is not None:
        line = item.alias
        lines.append(f"points at {line.current or '(no such alias)'}; spec wants {line.desired}; switch: {line.switch}")
        if line.release:
            lines.append(f"after the switch: {line.release}")
    return lines


def _json_resource(item: ResourcePreview) -> dict[str, Any]:
    fields = {_camel(key): value for key, value in asdict(item).items() if key not in ("partitions", "alias")}
    if item.alias is not None:  # added in schemaVersion 2 without changing its other fields
        fields["alias"] = {_camel(k): v for k, v in asdict(item.alias).items()}
    fields["status"] = item.status
    fields["partitions"] = [{_camel(k): v for k, v in asdict(p).items()} for p in item.partitions]
    return fields


_ICONS = {"change": "🔄", "error": "❌", "no change": "✅"}


def markdown(report: Report) -> str:
    lines = [f"### milvusops plan: {_headline(report)}", ""]
    for item in report.previews:
        lines.append(f"#### {_ICONS[item.status]} `{item.namespace}/{item.name}`: {item.status}")
        lines.append("")
        if item.errors:
            lines.append(f"Source `{item.source}`: the API server would refuse it:")
            lines.append("")
            lines += [f"- `{error}`" for error in item.errors]
            lines.append("")
            continue
        if item.kind == "MilvusAlias":
            lines += [f"{_escape(line)}  " for line in _alias_lines(item)] + [f"Source `{item.source}`", ""]
        else:
            lines.append(f"Collection `{item.collection}` via {item.connection}, source `{item.source}`")
            lines.append("")
        if item.partitions:
            lines += ["| partition | current | desired | change | memory |", "|---|---|---|---|---|"]
            for p in item.partitions:
                change = f"**{p.change}**" if p.change else "-"
                lines.append(f"| `{p.name}` | {p.current} | {p.desired} | {change} | {_memory(p.memory_bytes)} |")
            lines.append("")
        if item.schedule:
            lines.append(f"Schedule: {_escape(item.schedule)}  ")
        calls = ", ".join(f"`{call}`" for call in item.calls) if item.calls else "none"
        lines.append(f"Calls: {calls}  ")
        if item.destructive:
            lines.append(f"⚠️ Destructive: {'; '.join(item.destructive)}  ")
        lines.append(
            f"Reason: `{item.reason}`: {_escape(item.message)}" if item.message else f"Reason: `{item.reason}`"
        )
        lines.append("")
    if report.skipped:
        lines += [f"Skipped: {', '.join(f'`{item.source}` ({_escape(item.reason)})' for item in report.skipped)}", ""]
    lines.append(
        f"<sub>memory: estimated change of query-node memory, all replicas (docs/design/capacity.md); {NOT_ESTIMATED} ="
        " not estimated</sub>"
    )
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


RENDERERS = {"table": table, "json": as_json, "markdown": markdown}
