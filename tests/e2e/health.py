"""What GitOps tools make of a live resource: Flux's kstatus (its own Go library) and our Argo CD Lua check."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import lupa

from tests.testenv import gobins

ARGOCD_HEALTH = Path(__file__).resolve().parents[2] / "docs" / "gitops" / "argocd-health.lua"


@cache
def _kstatus_binary() -> Path:
    return gobins.build("kstatus")


def kstatus_live(kubeconfig: Path, namespace: str, name: str, resource: str = "milvuscollections") -> str:
    """Flux's verdict (Current, InProgress, Failed, Terminating, ...) for a live object."""
    argv = [str(_kstatus_binary()), f"-kubeconfig={kubeconfig}", f"-namespace={namespace}", f"-resource={resource}"]
    out = subprocess.run([*argv, name], capture_output=True, text=True, check=True, timeout=30).stdout
    return str(json.loads(out)["status"])


def kstatus_of(obj: dict[str, Any]) -> str:
    """Flux's verdict for an object captured earlier (a state that lasts only a moment)."""
    argv = [str(_kstatus_binary()), "-"]
    out = subprocess.run(argv, input=json.dumps(obj), capture_output=True, text=True, check=True, timeout=30).stdout
    return str(json.loads(out)["status"])


def argocd_health(obj: dict[str, Any]) -> str:
    """Run docs/gitops/argocd-health.lua the way Argo CD does: `obj` global in, `hs` table out."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval(f"function(obj)\n{ARGOCD_HEALTH.read_text()}\nend")
    result = check(lua.table_from(obj, recursive=True))
    return str(result["status"])


def gitops_verdicts(kube: Any, namespace: str, name: str, plural: str = "milvuscollections") -> tuple[str, str]:
    """(kstatus, Argo CD health) of the live object."""
    obj = kube.get(namespace, name, plural)
    return kstatus_live(kube.plane.kubeconfig, namespace, name, plural), argocd_health(obj)
