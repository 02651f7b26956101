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
# The same for ASCII text, a byte at a time: letters lower-cased, whitespace a space, and
# what is neither a word character nor whitespace dropped.
_ASCII_TABLE = bytes(
    c | 0x20 if 65 <= c <= 90 else 32 if chr(c).isspace() else c for c in range(256)
)
_ASCII_DROP = bytes(
    c for c in range(128) if not (chr(c).isalnum() or chr(c) == "_" or chr(c).isspace())
)
_SPACES = re.compile(rb"  +")


def normalise(text: str) -> str:
    """Case, width, punctuation and spacing differences do not make a new example."""
    if text.isascii():  # most texts: bytes operations, ten times faster than the regexes
        data = text.encode().translate(_ASCII_TABLE, _ASCII_DROP)
        if b"  " in data:
            data = _SPACES.sub(b" ", data)
        return data.strip(b" ").decode()
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
