"""Reference lists in the docs checked against the code, so that they cannot drift: every reason in the
API reference's tables, the "progressing" reasons of the monitoring page, every operator setting in the
README."""

from __future__ import annotations

import re
from pathlib import Path

from milvusops.core.failures import STALLED_REASONS, Reason
from milvusops.runtime.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
README = DOCS.parent / "README.md"
# Ready=True reasons, and the Degraded condition's own two
NOT_PROGRESSING = {
    Reason.IN_SYNC,
    Reason.CONNECTED,
    Reason.OBSERVING,
    Reason.REPLICA_UNAVAILABLE,
    Reason.REPLICAS_AVAILABLE,
}


def _table_rows(text: str) -> set[str]:
    """The first cell of every table row, without backticks."""
    return {m.group(1) for m in re.finditer(r"^\| `([A-Za-z]+)`", text, re.MULTILINE)}


def test_every_reason_has_a_row_in_the_api_reference() -> None:
    rows = _table_rows((DOCS / "api.md").read_text())
    assert sorted(reason.value for reason in Reason if reason.value not in rows) == []


def test_the_monitoring_page_lists_every_progressing_reason() -> None:
    text = (DOCS / "monitoring" / "README.md").read_text()
    listed = re.search(r"`progressing`: `Ready=False` without `Stalled` \(([^)]*)\)", text)
    assert listed is not None
    named = set(re.findall(r"`([A-Za-z]+)`", listed.group(1)))
    progressing = {reason.value for reason in Reason} - {r.value for r in STALLED_REASONS | NOT_PROGRESSING}
    assert sorted(progressing - named) == [] and sorted(named - progressing) == []


def test_every_setting_is_in_the_readme() -> None:
    rows = set(re.findall(r"^\| `(MILVUSOPS_[A-Z_]+)`", README.read_text(), re.MULTILINE))
    settings = {f"MILVUSOPS_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - rows) == [] and sorted(rows - settings) == []


def test_the_plan_example_is_its_golden_file() -> None:
    text = (DOCS / "plan.md").read_text()
    example = text[text.index("```markdown\n") + len("```markdown\n") :]
    golden = DOCS.parent / "tests" / "e2e" / "cli" / "golden" / "plan.md"
    assert example[: example.index("```")] == golden.read_text()


def test_every_event_reason_the_code_posts_has_a_row() -> None:
    """Literal reasons (`Event("Normal", "X"`, `reason="X"`, DRIFT_CORRECTED); the others are Reason values."""
    from milvusops.runtime.events import DRIFT_CORRECTED

    code = "\n".join(p.read_text() for p in (DOCS.parent / "operator" / "milvusops").rglob("*.py"))
    literal = set(re.findall(r'Event\("(?:Normal|Warning)", "([A-Za-z]+)"', code))
    literal |= set(re.findall(r'kopf\.event\([^)]*reason="([A-Za-z]+)"', code))
    text = (DOCS / "api.md").read_text()
    section = text[text.index("### Events") : text.index("### Printer columns")]
    named = set(re.findall(r"`([A-Za-z]+)`", section))
    assert len(literal) >= 6  # the search itself still finds what it looks for
    assert sorted((literal | {DRIFT_CORRECTED, "Loading", "Releasing"}) - named) == []


def test_troubleshooting_has_a_section_for_every_reason() -> None:
    headings = set(re.findall(r"^### ([A-Za-z]+)$", (DOCS / "troubleshooting.md").read_text(), re.MULTILINE))
    assert sorted(reason.value for reason in Reason if reason.value not in headings) == []


def test_every_metric_has_a_row_on_the_monitoring_page() -> None:
    code = "\n".join(p.read_text() for p in (DOCS.parent / "operator" / "milvusops" / "telemetry").glob("*.py"))
    defined = set(re.findall(r'"(milvusops_[a-z_]+)"', code))
    rows = set(re.findall(r"^\| `(milvusops_[a-z_]+)`", (DOCS / "monitoring" / "README.md").read_text(), re.MULTILINE))
    assert len(defined) >= 8 and sorted(defined ^ rows) == []
