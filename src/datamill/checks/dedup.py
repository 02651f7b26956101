"""Exact duplicates on normalised text: the first occurrence passes, later ones fail."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.registry import register
from datamill.records import CheckResult, Record

_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Case, width, punctuation and spacing differences do not make a new example."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub("", text)).strip()


@register
class ExactDedup(RecordCheck):
    """Keeps a 16-byte digest per distinct text seen, so memory grows with unique texts only."""

    name = "exact_dedup"

    def __init__(self, on: Part = "prompt") -> None:
        self.on = on
        self._seen: dict[bytes, str] = {}

    def check(self, record: Record) -> CheckResult:
        text = normalise(text_of(record, self.on))
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        first = self._seen.get(key)
        if first is None:
            self._seen[key] = record.id
            return CheckResult(passed=True)
        return CheckResult(passed=False, details={"duplicate_of": first, "on": self.on})
