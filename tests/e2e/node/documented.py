"""Commands taken from the project's own docs and run as written: only placeholders are replaced.

A doc's `sh` block is split into commands (comment lines dropped, `\\` continuations joined, trailing
`# comments` cut); `kubectl` and `helm` run the test's own binaries against the node's control plane, from the
checkout's root, so relative paths such as `charts/milvusops` mean what they mean to a reader of the README.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.testenv import gobins
from tests.testenv.kube import ControlPlane

ROOT = Path(__file__).resolve().parents[3]


def sh_blocks(markdown: str, heading: str) -> list[str]:
    """The ```sh blocks of the section `heading` (up to the next heading of the same or a higher level)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown.splitlines()
    start = end = lines.index(heading) + 1
    fenced = False  # a `# comment` inside a code block is no heading
    while end < len(lines) and (fenced or not re.match(rf"^#{{1,{level}}} ", lines[end])):
        fenced ^= lines[end].startswith("```")
        end += 1
    section = "\n".join(lines[start:end]) + "\n"
    return re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", block)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            found.append(shlex.join(words))
    return found


def run(command: str, plane: ControlPlane, replace: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One documented command, placeholders replaced, against `plane`; fails with the tool's own words."""
    for placeholder, value in (replace or {}).items():
        command = command.replace(placeholder, value)
    argv = shlex.split(command)
    tools = {"kubectl": plane.binaries.kubectl, "helm": gobins.build("helm")}
    if argv[0] not in tools:
        raise AssertionError(f"a documented command this test cannot run: {command}")
    argv = [str(tools[argv[0]]), f"--kubeconfig={plane.kubeconfig}", *argv[1:]]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise AssertionError(f"`{command}` exited {result.returncode}: {result.stderr}")
    return result
