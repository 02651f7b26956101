"""Quality heuristics: web-text rules from Gopher and C4, plus rules for chat answers.

The web-text rules follow datatrove's filters (huggingface/datatrove,
``src/datatrove/pipeline/filters/``) and keep their default thresholds:

- ``gopher_quality_filter.py``: word count, mean word length 3–10, at most 0.1 ``#`` or
  ellipses per word, at most 30 % of lines ending in an ellipsis, at least 80 % of words
  with a letter;
- ``gopher_repetition_filter.py`` (Table A1 of the Gopher paper, arXiv:2112.11446):
  duplicate lines and paragraphs (0.3 of them, 0.2 of the characters), the top 2/3/4-gram's
  character fraction (0.20/0.18/0.16), the duplicated 5…10-gram character fractions
  (0.15 down to 0.10);
- ``c4_filters.py``: lines should end in terminal punctuation; "lorem ipsum".

Chat answers are not web pages, so a few definitions differ, each on purpose: fenced code is
left out of the prose statistics (code repeats lines and is made of symbols); a Markdown
heading's ``#`` is not a hash symbol; blank lines are not duplicate lines (as in
``fineweb_quality_filter.py``); a top n-gram counts only if it occurs twice (datatrove
counts a single occurrence, which fails every short text); duplicated n-grams cover each
word once, as the paper defines them. The statistics need ``min_words_for_stats`` words to
mean anything: Gopher never applies them below 50. FineWeb's own rules (short lines, lines
without punctuation, newlines per word) are left out: they penalise lists, which answers
use well. The score is the fraction of the applied rules that passed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import accumulate

from pydantic import JsonValue

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.dedup import normalise
from datamill.checks.registry import register
from datamill.records import CheckResult, Record

Rule = Callable[[str, JsonValue, JsonValue, bool], None]
TOP_NGRAMS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUP_NGRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_ALNUM = re.compile(r"[^\W_]")
_STRIP = "\"'`.,;:!?()[]{}<>*_~«»“”‘’—–-"
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^\s*([-*+•|>#]|(?:\d+|[A-Za-z]|[ivxlcIVXLC]+)[.)]\s)")
_NUMBER = re.compile(r"^[-+$€£¥]?\d[\d.,:/%]*$")
_PARAGRAPH = re.compile(r"\n\s*\n")
# Scripts written without spaces, or in syllable blocks: word lengths mean nothing there.
_DENSE = re.compile(
    r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)
_CUT_OFF = re.compile(
    r"(\.\.\.|…|\[(?:\.\.\.|…|truncated|continued|cut off)\]|\((?:truncated|continued)\)"
    r"|to be continued\W*)$",
    re.IGNORECASE,
)
_OPEN_END = tuple(",;:([{-–—/&+=")
BOILERPLATE = re.compile(
    r"\bas an ai\b|\bas a (?:large )?language model\b|\bi(?: am|'m) (?:just |only )?an ai\b"
    r"|\bi(?: am|'m) (?:sorry|afraid),? but i (?:can(?:not|'t)|am unable|won't)"
    r"|\bi (?:can(?:not|'t)|am unable to|'m unable to) (?:help|assist) with (?:that|this)"
    r"|\bi (?:can(?:not|'t)|am unable to|'m unable to) (?:fulfil|fulfill|comply with) "
    r"(?:that|this|your)\b|\bknowledge cut-?off\b|\bi do(?: not|n't) have (?:personal )?"
    r"(?:opinions|feelings|emotions|beliefs)\b|\bi was (?:trained|created|developed) by\b"
    r"|\blorem ipsum\b",
    re.IGNORECASE,
)


def strip_invisible(text: str) -> str:
    """Without zero-width characters and bidirectional marks, which only hide words."""
    return _INVISIBLE.sub("", text)


def _words(text: str) -> list[str]:
    """Whitespace tokens without their surrounding punctuation; punctuation alone is none."""
    return [w for token in text.split() if (w := token.strip(_STRIP))]


def _non_alpha(word: str) -> bool:
    """No letter in it, and not a plain number either (math answers are made of those)."""
    return not any(c.isalpha() for c in word) and not _NUMBER.match(word)


def _split_code(text: str) -> tuple[list[str], int]:
    """The lines outside fenced code blocks, and how many fence lines there are."""
    prose, fences, inside = [], 0, False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fences, inside = fences + 1, not inside
        elif not inside:
            prose.append(line)
    return prose, fences


def _duplicates(items: Iterable[str]) -> tuple[int, int, int]:
    """How many items repeat an earlier one, their characters, and the items' count."""
    seen: set[str] = set()
    dup = dup_chars = total = 0
    for item in items:
        total += 1
        if item in seen:
            dup, dup_chars = dup + 1, dup_chars + len(item)
        seen.add(item)
    return dup, dup_chars, total


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def top_ngram_frac(words: list[str], n: int) -> float:
    """The share of word characters in the most frequent n-gram, if it occurs twice."""
    counts = Counter(_ngrams(words, n))
    if not counts:
        return 0.0
    gram, count = counts.most_common(1)[0]
    total = sum(map(len, words))
    return min(1.0, sum(map(len, gram)) * count / total) if count > 1 else 0.0


def dup_ngram_frac(words: list[str], n: int) -> float:
    """The share of word characters inside n-grams that occur more than once."""
    grams = _ngrams(words, n)
    counts = Counter(grams)
    offsets = list(accumulate(map(len, words), initial=0))
    covered = end = 0  # characters covered so far, and the word where that cover ends
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered += offsets[i + n] - offsets[max(i, end)]
            end = i + n
    return covered / offsets[-1] if offsets[-1] else 0.0


def unfinished(text: str) -> str | None:
    """Why ``text`` looks cut off: an open code fence, a cut-off mark, a dangling sentence."""
    _, fences = _split_code(text)
    if fences % 2:
        return "unclosed code fence"
    last = text.rstrip().splitlines()[-1].strip() if text.strip() else ""
    if last.startswith("```"):
        return None
    if _CUT_OFF.search(last):
        return "ends with a cut-off mark"
    if last.endswith(_OPEN_END):
        return f"ends with {last[-1]!r}"
    if not _LIST_ITEM.match(last) and len(last.split()) >= 5 and _ALNUM.match(last[-1]):
        return "ends mid-sentence"
    return None


def echo_frac(response: str, prompt: str) -> float:
    """How much of the response repeats the prompt: the share of its word 3-grams in it."""
    said, asked = normalise(response).split(), normalise(prompt).split()
    if len(said) < 3:
        return 1.0 if said and said == asked else 0.0
    grams = _ngrams(said, 3)
    known = set(_ngrams(asked, 3))
    return sum(g in known for g in grams) / len(grams)


@register
class Heuristics(RecordCheck):
    """Every rule runs unless named in ``skip``; details list the rules that failed."""

    name = "heuristics"

    def __init__(
        self,
        on: Part = "response",
        min_words: int = 1,
        max_words: int = 100_000,
        min_mean_word_length: float = 3.0,
        max_mean_word_length: float = 10.0,
        max_symbol_word_ratio: float = 0.1,
        max_ellipsis_line_frac: float = 0.3,
        max_non_alpha_word_frac: float = 0.2,
        max_dup_line_frac: float = 0.3,
        max_dup_line_char_frac: float = 0.2,
        max_dup_para_frac: float = 0.3,
        max_dup_para_char_frac: float = 0.2,
        top_ngram_fracs: tuple[tuple[int, float], ...] = TOP_NGRAMS,
        dup_ngram_fracs: tuple[tuple[int, float], ...] = DUP_NGRAMS,
        max_echo_frac: float = 0.9,
        min_words_for_stats: int = 50,
        skip: Iterable[str] = (),
    ) -> None:
        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) is above max_words ({max_words})")
        self.on, self.min_words, self.max_words = on, min_words, max_words
        self.mean_word_length = (min_mean_word_length, max_mean_word_length)
        self.max_echo_frac, self.min_words_for_stats = max_echo_frac, min_words_for_stats
        self.skip = frozenset(skip)
        self.limits: dict[str, float] = {
            "hash_word_ratio": max_symbol_word_ratio,
            "ellipsis_word_ratio": max_symbol_word_ratio,
            "ellipsis_line_frac": max_ellipsis_line_frac,
            "non_alpha_word_frac": max_non_alpha_word_frac,
            "dup_line_frac": max_dup_line_frac,
            "dup_line_char_frac": max_dup_line_char_frac,
            "dup_para_frac": max_dup_para_frac,
            "dup_para_char_frac": max_dup_para_char_frac,
        }
        self.top_ngrams = [int(n) for n, _ in top_ngram_fracs]
        self.dup_ngrams = [int(n) for n, _ in dup_ngram_fracs]
        self.limits.update({f"top_{n}_gram_frac": float(f) for n, f in top_ngram_fracs})
        self.limits.update({f"dup_{n}_gram_frac": float(f) for n, f in dup_ngram_fracs})

    def check(self, record: Record) -> CheckResult:
        text = strip_invisible(text_of(record, self.on))
        if not _ALNUM.search(text):
            return CheckResult(score=0.0, passed=False, details={"failed": [{"rule": "empty"}]})
        applied: list[str] = []
        failed: list[JsonValue] = []

        def rule(name: str, value: JsonValue, limit: JsonValue, ok: bool) -> None:
            if name not in self.skip:
                applied.append(name)
                if not ok:
                    failed.append({"rule": name, "value": value, "limit": limit})

        n = len(_words(text))
        bounds = [self.min_words, self.max_words]
        rule("word_count", n, bounds, self.min_words <= n <= self.max_words)
        prose, _ = _split_code(text)
        words = _words("\n".join(prose))
        if len(words) >= self.min_words_for_stats:
            self._statistics(prose, words, rule)
        why = unfinished(text)
        rule("unfinished", why, None, why is None)
        phrases = sorted({m.group().lower() for m in BOILERPLATE.finditer(text.replace("’", "'"))})
        rule("boilerplate", phrases[:3], None, not phrases)
        asked = [m.content for m in record.prompt if m.role == "user" and m.content]
        if self.on == "response" and asked:
            echo = round(echo_frac(text, asked[-1]), 4)
            rule("echo_frac", echo, self.max_echo_frac, echo <= self.max_echo_frac)
        score = 1 - len(failed) / len(applied) if applied else 1.0
        return CheckResult(score=round(score, 4), passed=not failed, details={"failed": failed})

    def _statistics(self, prose: list[str], words: list[str], rule: Rule) -> None:
        text, n, chars = "\n".join(prose), len(words), sum(map(len, words))
        if len(_DENSE.findall(text)) < 0.3 * chars:
            mean = round(chars / n, 4)
            low, high = self.mean_word_length
            rule("mean_word_length", mean, [low, high], low <= mean <= high)
        lines = [line.strip() for line in prose if line.strip()]
        hashes = sum(line.count("#") for line in lines if not _HEADING.match(line))
        value = {
            "hash_word_ratio": hashes / n,
            "ellipsis_word_ratio": (text.count("...") + text.count("…")) / n,
            "ellipsis_line_frac": sum(line.endswith(("...", "…")) for line in lines) / len(lines),
            "non_alpha_word_frac": sum(_non_alpha(w) for w in words) / n,
        }
        for unit, items in (("line", lines), ("para", _PARAGRAPH.split(text.strip()))):
            dup, dup_chars, total = _duplicates(item.strip() for item in items if item.strip())
            value[f"dup_{unit}_frac"] = dup / total
            value[f"dup_{unit}_char_frac"] = dup_chars / len(text)
        value.update({f"top_{k}_gram_frac": top_ngram_frac(words, k) for k in self.top_ngrams})
        value.update({f"dup_{k}_gram_frac": dup_ngram_frac(words, k) for k in self.dup_ngrams})
        for key, measured in value.items():
            rule(key, round(measured, 4), self.limits[key], measured <= self.limits[key])
