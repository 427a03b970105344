"""The capability table: parsing versions, falling back to the newest known, and agreeing with the doc."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from milvusops.core.capabilities import (
    ROWS,
    Capabilities,
    Row,
    capabilities,
    describe,
    minimum,
    parse,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "compatibility.md"
COLUMNS = ("2.3", "2.4", "2.5", "2.6", "3.0")
NEWEST = capabilities("")


def table_fields() -> tuple[str, ...]:
    """The capabilities the table decides (every field but the version and `known`)."""
    return tuple(f.name for f in fields(Capabilities) if f.name not in ("version", "known"))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("v2.3.5", (2, 3, 5)),
        ("2.6.6", (2, 6, 6)),
        ("v2.5.4-gpu", (2, 5, 4)),
        ("v3.0", (3, 0, 0)),
        ("", None),
        ("master-20261101", None),
    ],
)
def test_parse(text: str, parsed: tuple[int, int, int] | None) -> None:
    assert parse(text) == parsed


@pytest.mark.parametrize(
    ("version", "in_place", "fields", "priority", "refresh", "failed_load", "code", "serial"),
    [
        ("v2.2.2", False, False, False, False, True, 65535, True),
        ("v2.2.3", False, False, False, True, True, 65535, True),
        ("v2.3.5", False, False, False, True, True, 65535, True),
        ("v2.4.9", False, False, False, True, True, 65535, True),
        ("v2.4.10", False, True, False, True, True, 65535, True),
        ("v2.4.12", False, True, False, True, True, 65535, True),
        ("v2.4.13", True, True, False, True, True, 65535, True),
        ("v2.5.27", True, True, False, True, True, 65535, False),
        ("v2.6.0", True, True, True, True, True, 65535, False),
        ("v2.6.15", True, True, True, True, True, 65535, False),
        ("v2.6.16", True, True, True, True, False, 65535, False),
        ("v2.6.18", True, True, True, True, False, 65535, False),
        ("v2.6.19", True, True, True, True, False, 1100, False),
        ("v3.0.0", True, True, True, True, False, 1100, False),
    ],
)
def test_capabilities_by_version(
    version: str,
    in_place: bool,
    fields: bool,
    priority: bool,
    refresh: bool,
    failed_load: bool,
    code: int,
    serial: bool,
) -> None:
    expected = Capabilities(version, True, in_place, fields, priority, refresh, failed_load, code, serial)
    assert capabilities(version) == expected


def test_minimum_names_the_first_version_with_a_capability() -> None:
    assert (minimum("load_fields"), minimum("load_priority"), minimum("refresh_load")) == ("2.4.10", "2.6.0", "2.2.3")


@pytest.mark.parametrize("version", ["", "not-a-version", "v3.1.0", "v4.0.0"])
def test_unknown_or_newer_versions_get_the_newest_known_behaviour(version: str) -> None:
    caps = capabilities(version)
    assert not caps.known
    assert {f: getattr(caps, f) for f in table_fields()} == {f: getattr(NEWEST, f) for f in table_fields()}
    assert "treated as 3.0.0" in describe(caps)


def test_every_capability_has_exactly_one_row() -> None:
    assert sorted(row.capability for row in ROWS) == sorted(table_fields())


def _text(value: bool | int) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _cell(row: Row, column: str) -> str:
    """What the doc must say for one minor line: one value, or the value before and from the cut-over."""
    major, minor = (int(part) for part in column.split("."))
    first, last = (major, minor, 0), (major, minor, 999)
    at_first = row.since_value if first >= row.since else row.before
    at_last = row.since_value if last >= row.since else row.before
    if at_first == at_last:
        return _text(at_first)
    return f"{_text(at_first)}; {_text(at_last)} from {'.'.join(map(str, row.since))}"


def _matrix() -> dict[str, list[str]]:
    """capability -> the cells of its row in docs/compatibility.md's behaviour matrix."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 + len(COLUMNS) and (match := re.fullmatch(r"`(\w+)`", cells[1])):
            rows[match[1]] = cells[2 : 2 + len(COLUMNS)]
    return rows


def test_the_compatibility_doc_agrees_with_the_table() -> None:
    matrix = _matrix()
    assert sorted(matrix) == sorted(row.capability for row in ROWS)
    for row in ROWS:
        assert matrix[row.capability] == [_cell(row, column) for column in COLUMNS], row.capability
