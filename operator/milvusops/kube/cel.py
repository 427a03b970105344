"""The small subset of CEL that this project's CRD rules use, evaluated as the API server would on create.

Supported: `has(self.a.b)`, `x.matches('re')`, `==`, `!=`, `!`, `&&`, `||`, parentheses, string literals and
field paths from `self`. Rules outside it raise `Unsupported` (a unit test keeps every rule in crds/ inside).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(\|\||&&|==|!=|[!().])|'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|([A-Za-z_][A-Za-z0-9_]*))"
)


class Unsupported(ValueError):
    """The rule uses CEL beyond this subset."""


class _Missing:
    """A field path that leads nowhere (CEL: no such key)."""


MISSING = _Missing()


def evaluate(rule: str, value: Any) -> bool:
    """The rule's result with `self` bound to `value`; raises Unsupported for what the subset lacks."""
    parser = _Parser(_tokens(rule), value)
    result = parser.expression()
    if parser.position != len(parser.tokens):
        raise Unsupported(f"unexpected {parser.tokens[parser.position][1]!r} in {rule!r}")
    if not isinstance(result, bool):
        raise Unsupported(f"{rule!r} is not a boolean expression")
    return result


def _tokens(rule: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(rule.rstrip()):
        match = _TOKEN.match(rule, position)
        if match is None:
            raise Unsupported(f"cannot read {rule[position:]!r}")
        operator, single, double, name = match.groups()
        if operator is not None:
            tokens.append(("op", operator))
        elif name is not None:
            tokens.append(("name", name))
        else:
            tokens.append(("string", single if single is not None else double))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], value: Any) -> None:
        self.tokens = tokens
        self.position = 0
        self.value = value

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise Unsupported("rule ends too early")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise Unsupported(f"expected {expected!r}, got {token[1]!r}")
        self.position += 1
        return token

    def expression(self) -> Any:
        result = self._conjunction()
        while self._peek() == "||":
            self._take()
            right = self._conjunction()
            result = bool(result) or bool(right)
        return result

    def _conjunction(self) -> Any:
        result = self._unary()
        while self._peek() == "&&":
            self._take()
            right = self._unary()
            result = bool(result) and bool(right)
        return result

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not self._unary()
        left = self._primary()
        if self._peek() in ("==", "!="):
            operator = self._take()[1]
            right = self._primary()
            return (left == right) == (operator == "==")
        return left

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text
        if text == "(":
            result = self.expression()
            self._take(")")
            return result
        if text == "has":
            self._take("(")
            self._take("self")
            found = self._path(self.value)
            self._take(")")
            return found is not MISSING
        if text != "self":
            raise Unsupported(f"unknown name {text!r}")
        current = self._path(self.value)
        if isinstance(current, _Missing):
            raise Unsupported("no such key")  # the API server reports an evaluation error here
        return current

    def _path(self, current: Any) -> Any:
        """Follow `.field` steps; a `.matches('re')` call at the end is applied to the value reached."""
        while self._peek() == ".":
            self._take()
            name = self._take()[1]
            if self._peek() == "(":
                if name != "matches":
                    raise Unsupported(f"unknown function {name!r}")
                self._take("(")
                pattern = self._take()[1]
                self._take(")")
                return isinstance(current, str) and re.search(pattern, current) is not None
            current = current.get(name, MISSING) if isinstance(current, Mapping) else MISSING
        return current
