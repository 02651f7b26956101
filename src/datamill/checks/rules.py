"""Filter rules over check results: ``NAME`` (the check did not fail) or ``NAME.score OP X``."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from datamill.errors import DatamillError
from datamill.records import Record

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_RULE = re.compile(r"^\s*([\w.-]+?)(?:\.score\s*(>=|<=|==|!=|>|<)\s*(-?[\d.]+(?:e-?\d+)?))?\s*$")


@dataclass(frozen=True)
class Rule:
    text: str
    check: str
    op: str | None = None
    value: float = 0.0

    def reason(self, record: Record) -> str | None:
        """Why ``record`` breaks this rule, or None if it keeps it."""
        result = record.checks.get(self.check)
        if result is None:
            return f"{self.check}: not checked"
        if self.op is None:
            return f"{self.check}: failed" if result.passed is False else None
        if result.score is None:
            return f"{self.check}: no score"
        if not _OPS[self.op](result.score, self.value):
            return f"{self.check}.score {result.score:g} is not {self.op} {self.value:g}"
        return None


def parse_rule(text: str) -> Rule:
    match = _RULE.match(text)
    if match is None:
        raise DatamillError(
            f"cannot read the rule {text!r}; write NAME (the check passed) or NAME.score>=X"
        )
    name, op, value = match.groups()
    return Rule(text, name, op, float(value) if value else 0.0)
