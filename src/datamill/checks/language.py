"""Whether a record is written in the language its ``language`` field names (ISO 639-1).

Detection is :mod:`datamill.langid`'s, on lingua, whose models ship in its wheel. The
detector weighs ``languages`` (common ones by default) plus the record's own language and
its close neighbours; a detector that only knew the expected language would find it
everywhere.

Rather a missing verdict (``passed`` None, with a reason) than a wrong one: for text of
fewer than three words and ten letters, for text whose letters are split between scripts
with none holding ``min_script_share`` of them, and for a detection less sure than
``min_confidence``. Only the main script's letters reach the detector, so a Chinese word
quoted in English prose does not make it Chinese. Fenced code is left out, and only the
first ``max_chars`` characters are read.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from pydantic import JsonValue

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.registry import register
from datamill.langid import MIN_WORDS, LanguageIdentifier, supported
from datamill.records import CheckResult, Record

COMMON = ("en", "es", "fr", "de", "it", "pt", "nl", "ru", "zh", "ja", "ko", "ar", "hi")
MIN_LETTERS = 10
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK"}  # Japanese mixes these with kanji


def script(char: str) -> str:
    """The script a letter belongs to, by the first word of its Unicode name (LATIN, CJK…)."""
    first = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
    return _SAME_SCRIPT.get(first, first)


def main_script(text: str) -> tuple[str, float, str]:
    """The most used script, its share of the letters, and the text with other letters
    blanked out."""
    scripts = [script(c) if c.isalpha() else "" for c in text]
    counts = Counter(s for s in scripts if s)
    if not counts:
        return "", 0.0, ""
    top, n = counts.most_common(1)[0]
    kept = "".join(c if s in ("", top) else " " for c, s in zip(text, scripts, strict=True))
    return top, n / sum(counts.values()), kept


def base_code(language: str) -> str:
    """``"pt-BR"``, ``"en_US"``, ``"ZH"`` → ``"pt"``, ``"en"``, ``"zh"``."""
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()


@register
class Language(RecordCheck):
    """The score is the confidence that the text is in the expected language (in the
    detected one when the record names none)."""

    name = "language"

    def __init__(
        self,
        on: Part = "response",
        languages: Iterable[str] = COMMON,
        min_confidence: float = 0.5,
        min_script_share: float = 0.8,
        max_chars: int = 10_000,
    ) -> None:
        self.languages = tuple(base_code(code) for code in languages)
        unknown = sorted(set(self.languages) - supported())
        if unknown:
            raise ValueError(f"lingua has no model for the language '{unknown[0]}'")
        self.on, self.min_confidence = on, min_confidence
        self.min_script_share, self.max_chars = min_script_share, max_chars
        self._identifiers: dict[str | None, LanguageIdentifier] = {}

    def _identifier(self, expected: str | None) -> LanguageIdentifier:
        if expected not in self._identifiers:
            extra = (expected,) if expected else ()
            self._identifiers[expected] = LanguageIdentifier((*self.languages, *extra))
        return self._identifiers[expected]

    def check(self, record: Record) -> CheckResult:
        expected = base_code(record.language) if record.language else None
        details: dict[str, JsonValue] = {"expected": expected, "detected": None}
        if expected is not None and expected not in supported():
            return CheckResult(details={**details, "reason": f"no language model for '{expected}'"})
        text = _CODE_BLOCK.sub(" ", text_of(record, self.on)[: self.max_chars])
        top, share, prose = main_script(text)
        if len(_WORD.findall(prose)) < MIN_WORDS and sum(map(str.isalpha, prose)) < MIN_LETTERS:
            return CheckResult(details={**details, "reason": "too short to tell"})
        if share < self.min_script_share:
            reason = f"mixed scripts ({top} is {share:.0%} of the letters)"
            return CheckResult(details={**details, "reason": reason})
        identifier = self._identifier(expected)
        detected = identifier.detect(prose)
        confidence = identifier.check([prose], detected).score if detected else 0.0
        details.update(detected=detected, confidence=confidence)
        if expected is None:
            return CheckResult(score=confidence, details=details)
        score = confidence if detected == expected else identifier.check([prose], expected).score
        if (confidence or 0.0) < self.min_confidence:
            return CheckResult(score=score, details={**details, "reason": "unsure"})
        return CheckResult(score=score, passed=detected == expected, details=details)
