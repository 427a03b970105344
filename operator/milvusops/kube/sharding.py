"""Label selectors that split MilvusCollections between operator processes (shards), as Flux shards its controllers.

The API server applies the selector to the operator's list and watch, so a shard never receives, keeps or
handles another shard's objects. This module only checks the selector's syntax, so that a typo stops the
operator at startup with a clear message instead of a watch that fails (or matches nothing) later.
"""

from __future__ import annotations

import re

# the label key every chart-made shard uses; a Deployment per value, plus one for objects without it
SHARD_KEY = "sharding.milvusops.dev/key"

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
_KEY = rf"(?:{_PREFIX}/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_REQUIREMENT = re.compile(
    rf"""\s*(?:
        !\s*(?P<absent>{_KEY})
      | (?P<key>{_KEY})(?:
            \s*(?P<op>==|=|!=|>|<)\s*(?P<value>{_VALUE})
          | \s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
          |  # a bare key: the label exists
        )
    )\s*""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """The text is not a Kubernetes label selector."""


def check_selector(text: str) -> str:
    """The selector, stripped, if the API server would accept it; '' selects everything."""
    text = text.strip()
    position = 0
    while position < len(text):
        match = _REQUIREMENT.match(text, position)
        if match is None or match.end() == position:
            raise SelectorError(_at(text, position, "expected key, !key, key=value, key!=value or key in (a,b)"))
        _check_requirement(text, match)
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise SelectorError(_at(text, position, "expected ',' between requirements (a set: key in (a,b))"))
            position += 1
            if position >= len(text.rstrip()):
                raise SelectorError(_at(text, position, "a requirement must follow ','"))
    return text


def _check_requirement(text: str, match: re.Match[str]) -> None:
    key = match.group("absent") or match.group("key")
    prefix, _, name = key.rpartition("/")
    if len(prefix) > 253 or len(name) > 63:
        raise SelectorError(f"label key {key!r} too long: prefix at most 253, name at most 63 characters")
    values = [match.group("value")] if match.group("op") else []
    if match.group("setop"):
        # as the API server reads them: `in ()` is `in ("")`, and `in (a,)` holds "" too
        values = [value.strip() for value in match.group("values").split(",")]
    for value in values:
        if len(value) > 63 or not re.fullmatch(_VALUE, value):
            raise SelectorError(f"label value {value!r} of {key!r}: at most 63 of A-Z a-z 0-9 - _ ., alphanumeric ends")
    if match.group("op") in (">", "<") and not re.fullmatch(r"-?[0-9]+", match.group("value")):
        raise SelectorError(f"{key}{match.group('op')}{match.group('value')}: > and < compare with an integer")


def _at(text: str, position: int, expected: str) -> str:
    return f"not a Kubernetes label selector at character {position + 1} of {text!r}: {expected}"
