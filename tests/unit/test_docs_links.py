"""Every relative link in the Markdown files resolves: to a file that exists, and to a heading it has when the
link names one (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SKIPPED = (".venv", "node_modules", ".git", "bench/out")


def _markdown() -> list[Path]:
    return [p for p in ROOT.rglob("*.md") if not any(part in p.relative_to(ROOT).as_posix() for part in SKIPPED)]


def _anchors(path: Path) -> set[str]:
    anchors = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_relative_link_resolves() -> None:
    broken = []
    for source in _markdown():
        text = re.sub(r"```.*?```", "", source.read_text(), flags=re.DOTALL)
        text = re.sub(r"`[^`\n]*`", "", text)  # code spans: a regex in one is not a link
        for target in LINK.findall(text):
            if (
                re.match(r"[a-z]+:", target)
                or target.startswith("#")
                or not re.fullmatch(r"[\w./-]+(#[\w-]*)?", target)
            ):
                continue  # another site, an anchor of this page (not checked), or a pattern quoted in a message
            path, _, anchor = target.partition("#")
            resolved = (source.parent / path).resolve()
            if not resolved.exists():
                broken.append(f"{source.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{source.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []
