"""Names and tags as the store accepts them: short, plain, safe in URLs and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

from datamill.annotate.errors import AnnotateError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def name(kind: str, value: object) -> str:
    """A user or project name, or AnnotateError saying what a name may hold."""
    if not isinstance(value, str) or not NAME.match(value):
        raise AnnotateError(f"{kind} {str(value)[:80]!r}: use 1-64 letters, digits, _ . @ -")
    return value


def tags(kind: str, values: Iterable[object]) -> list[str]:
    """Expertise or language tags: lower-case words, sorted, without repeats."""
    out = sorted({str(v).strip().lower() for v in values})
    bad = [v for v in out if not TAG.match(v)]
    if bad:
        raise AnnotateError(f"{kind} tag {bad[0][:80]!r}: use lower-case letters, digits, _ -")
    return out
