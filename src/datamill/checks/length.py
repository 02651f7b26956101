"""Length in words of a record's response (or prompt) within bounds."""

from __future__ import annotations

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.registry import register
from datamill.records import CheckResult, Record


@register
class Length(RecordCheck):
    name = "length"

    def __init__(self, min_words: int = 3, max_words: int = 2000, on: Part = "response") -> None:
        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) is above max_words ({max_words})")
        self.min_words, self.max_words, self.on = min_words, max_words, on

    def check(self, record: Record) -> CheckResult:
        words = len(text_of(record, self.on).split())
        ok = self.min_words <= words <= self.max_words
        details: dict[str, int | str] = {"words": words}
        if not ok:
            details["reason"] = "too short" if words < self.min_words else "too long"
        return CheckResult(score=float(words), passed=ok, details=details)
