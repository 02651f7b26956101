"""Language identification: which language a text is in, and how sure we are.

Built on lingua, whose n-gram models ship inside its wheel: nothing is downloaded. A
detector only weighs the languages it was built for, so it is built from the languages a
run expects plus English (what a model falls back to) and a few close neighbours of each
(Spanish for Portuguese, Zulu for Xhosa…), which keeps it fast and still catches the usual
mistakes. Detectors are built once per process per set of languages; lingua's
low-accuracy mode stays off, because generated turns are often short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder
from pydantic import JsonValue

from datamill.records import CheckResult

# Languages a model writing in the key is likely to drift into, or a detector to confuse.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "es": ("pt", "it", "ca"),
    "pt": ("es", "it"),
    "fr": ("it", "es", "ca"),
    "it": ("es", "fr", "pt"),
    "ca": ("es", "fr"),
    "ro": ("it", "es"),
    "de": ("nl", "da"),
    "nl": ("de", "af"),
    "af": ("nl",),
    "da": ("nb", "sv"),
    "nb": ("nn", "da", "sv"),
    "nn": ("nb", "da"),
    "sv": ("nb", "da"),
    "cs": ("sk", "pl"),
    "sk": ("cs", "pl"),
    "pl": ("cs", "sk"),
    "hr": ("bs", "sr", "sl"),
    "bs": ("hr", "sr"),
    "sr": ("hr", "bs"),
    "ru": ("uk", "be", "bg"),
    "uk": ("ru", "be"),
    "id": ("ms", "tl"),
    "ms": ("id",),
    "hi": ("mr",),
    "mr": ("hi",),
    "ur": ("fa", "ar"),
    "fa": ("ur", "ar"),
    "sw": ("lg", "zu"),
    "zu": ("xh", "ts"),
    "xh": ("zu",),
    "st": ("tn",),
    "tn": ("st",),
    "sn": ("zu", "sw"),
}

_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")
MIN_WORDS = 3  # shorter turns ("Ndiyo.", "42") say nothing reliable about their language


def _language(code: str) -> Language | None:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError:
        return None


def supported() -> frozenset[str]:
    """ISO 639-1 codes of the languages lingua can identify."""
    return frozenset(language.iso_code_639_1.name.lower() for language in Language.all())


def language_name(code: str) -> str | None:
    """The English name of a language lingua knows (``"sw"`` → ``"Swahili"``), else None."""
    language = _language(code)
    return language.name.title() if language is not None else None


@cache
def _detector(codes: frozenset[str]) -> LanguageDetector:
    languages = [language for code in sorted(codes) if (language := _language(code))]
    return LanguageDetectorBuilder.from_languages(*languages).build()


def candidates(expected: Iterable[str]) -> frozenset[str]:
    """The languages a detector for ``expected`` weighs: those, English and neighbours."""
    codes = {"en", *expected}
    for code in list(codes):
        codes.update(NEIGHBOURS.get(code, ()))
    return frozenset(codes) & supported()


def _judged(texts: Sequence[str]) -> list[str]:
    """The texts long enough to judge (code blocks removed), or all of them joined."""
    prose = [_CODE_BLOCK.sub(" ", text) for text in texts]
    long = [text for text in prose if len(_WORD.findall(text)) >= MIN_WORDS]
    return long or [" ".join(prose)]


class LanguageIdentifier:
    """Checks that texts are in the expected language, among a fixed set of candidates."""

    def __init__(self, languages: Iterable[str], min_confidence: float = 0.5) -> None:
        self.codes = candidates(languages)
        # By default the expected language must outweigh all other candidates together:
        # a text with no real evidence ("ok", a name) must not pass by a thin argmax.
        self.min_confidence = min_confidence
        self._detector = _detector(self.codes)

    def detect(self, text: str) -> str | None:
        """The most likely candidate language of ``text``, or None when none stands out."""
        language = self._detector.detect_language_of(text)
        return language.iso_code_639_1.name.lower() if language is not None else None

    def check(self, texts: Sequence[str], expected: str) -> CheckResult:
        """Whether every turn of ``texts`` is in ``expected``, surely enough; the score is
        the expected language's confidence in the least sure turn.

        ``passed`` is None (not checked) for a language lingua has no model for.
        """
        language = _language(expected)
        if language is None or expected not in self.codes:
            reason = f"no language model for '{expected}'"
            return CheckResult(details={"expected": expected, "detected": None, "reason": reason})
        turns = _judged(texts)
        detected = [self.detect(text) for text in turns]
        confidence = min(self._detector.compute_language_confidence(t, language) for t in turns)
        wrong = [code for code in detected if code != expected]
        details: dict[str, JsonValue] = {"expected": expected}
        details["detected"] = wrong[0] if wrong else expected
        unsure = not wrong and confidence < self.min_confidence
        if unsure:
            details["reason"] = f"confidence {confidence:.2f} is below {self.min_confidence}"
        return CheckResult(
            score=round(confidence, 4), passed=not wrong and not unsure, details=details
        )
