"""Categories of unsafe or sensitive content, flagged from a lexicon of terms.

The shipped lexicon (``datamill/data/safety/lexicon.yaml``) names violence, self-harm,
sexual content, hate, illegal activity, and medical, legal and financial advice; a user's
file of the same shape can replace it. Terms match as whole words with their inflections,
after Unicode normalisation, so "Stabbed" and "stab" are one term and zero-width
characters do not hide one.

A lexicon only sees words. Other flaggers (an LLM judge, a classifier) fit in by
producing the same ``{category: Hits}`` mapping, with categories of their own if they
like, and letting :func:`verdict` turn it into a result.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.heuristics import strip_invisible
from datamill.checks.registry import register
from datamill.records import CheckResult, Record
from datamill.yamlfile import parse_yaml, read_yaml, to_model


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_hits: int = Field(default=1, ge=1)
    terms: list[str] = Field(min_length=1)


class LexiconFile(RootModel[dict[str, Category]]):
    pass


_GAP = r"[\s\-\u2010-\u2015]+"  # spaces, hyphens and dashes between a phrase's words


@dataclass(frozen=True)
class Hits:
    """How often a category was matched, and the first few distinct terms that did."""

    count: int
    terms: tuple[str, ...]


def _word(word: str) -> str:
    """A word and its regular inflections: -s, -ed, -ing, -er, with e-dropping, y-to-i and
    a doubled final consonant (stab → stabbed)."""
    if len(word) < 3 or not word.isalpha():
        return re.escape(word)
    if word.endswith("e"):
        return re.escape(word[:-1]) + "(?:e|es|ed|er|ers|ing|ings)"
    if word.endswith("y") and word[-2] not in "aeiou":
        return re.escape(word[:-1]) + "(?:y|ies|ied|ier|iers|ying)"
    double = f"{word[-1]}?" if word[-1] not in "aeiouwxy" else ""
    return f"{re.escape(word)}(?:{double}(?:s|es|ed|er|ers|ing|ings))?"


def term_pattern(term: str) -> str:
    return _GAP.join(_word(w) for w in re.split(_GAP, term.casefold().strip()))


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", strip_invisible(text)).casefold()


class Lexicon:
    """Categories of terms, each compiled into one pattern."""

    def __init__(self, categories: Mapping[str, Category]) -> None:
        self.min_hits = {name: c.min_hits for name, c in categories.items()}
        self._patterns = {
            name: re.compile(
                r"(?<!\w)(?:"
                + "|".join(term_pattern(t) for t in sorted(c.terms, key=len, reverse=True))
                + r")(?!\w)"
            )
            for name, c in categories.items()
        }

    @classmethod
    def load(cls, path: str | None = None) -> Lexicon:
        """The lexicon in ``path``, or the shipped one."""
        if path is None:
            name = "datamill/data/safety/lexicon.yaml"
            shipped = resources.files("datamill.data") / "safety" / "lexicon.yaml"
            data = parse_yaml(shipped.read_text("utf-8"), name)
        else:
            name, data = path, read_yaml(path)
        return cls(to_model(data, LexiconFile, name).root)

    def scan(self, text: str, categories: Iterable[str] | None = None) -> dict[str, Hits]:
        """The categories that ``text`` matches at least once."""
        text = normalise(text)
        found = {}
        for name in self._patterns if categories is None else categories:
            matches = [m.group() for m in self._patterns[name].finditer(text)]
            if matches:
                found[name] = Hits(len(matches), tuple(dict.fromkeys(matches))[:3])
        return found


def verdict(found: Mapping[str, Hits], min_hits: Mapping[str, int]) -> CheckResult:
    """Passed unless some category has at least its ``min_hits``; the score is how many do."""
    categories: dict[str, JsonValue] = {
        name: {"hits": h.count, "terms": list(h.terms), "flagged": h.count >= min_hits[name]}
        for name, h in found.items()
    }
    flagged = sum(h.count >= min_hits[name] for name, h in found.items())
    return CheckResult(score=float(flagged), passed=not flagged, details={"categories": categories})


@register
class Safety(RecordCheck):
    name = "safety"

    def __init__(
        self,
        categories: Iterable[str] | None = None,
        min_hits: dict[str, int] | None = None,
        lexicon: str | None = None,
        on: Part = "response",
    ) -> None:
        self.lexicon = Lexicon.load(lexicon)
        known = self.lexicon.min_hits
        self.categories = list(known if categories is None else categories)
        unknown = sorted((set(self.categories) | set(min_hits or {})) - set(known))
        if unknown:
            raise ValueError(f"no safety category '{unknown[0]}'; known: {', '.join(known)}")
        self.min_hits = {**known, **(min_hits or {})}
        self.on = on

    def check(self, record: Record) -> CheckResult:
        return verdict(self.lexicon.scan(text_of(record, self.on), self.categories), self.min_hits)
