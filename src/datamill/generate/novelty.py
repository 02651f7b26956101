"""ROUGE-L novelty: is a new text too close to any text already in a growing pool?

Self-Instruct keeps a generated instruction only if its ROUGE-L F1 with every instruction
in the pool is below a threshold (0.7). Scoring each candidate against the whole pool is
quadratic over a run, so the index prunes first: ROUGE-L F1 is ``2·LCS / (|a| + |b|)`` and
the LCS is at most the multiset overlap of the two token lists, hence a pool text can
reach the threshold only if it shares at least ``t = ceil(θ·|a| / (2 - θ))`` tokens with
the candidate. Any pool text sharing ``t`` tokens must contain one of the candidate's
``|a| - t + 1`` rarest tokens, so only those tokens' posting lists are read (prefix
filtering), the overlap bound drops most of what they return, and the exact LCS runs on
the few texts left.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens, as ROUGE compares them (punctuation ignored)."""
    return _WORD.findall(text.lower())


def _lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 of two token lists (symmetric; 0 when either is empty)."""
    if not a or not b:
        return 0.0
    return 2 * _lcs(a, b) / (len(a) + len(b))


def _occurrences(words: list[str]) -> list[tuple[str, int]]:
    """Each token with its occurrence number: a set whose intersections are multiset ones."""
    seen: Counter[str] = Counter()
    out = []
    for word in words:
        seen[word] += 1
        out.append((word, seen[word]))
    return out


class NoveltyIndex:
    """A pool of texts that answers "what is the closest text to this one?" quickly."""

    def __init__(self, threshold: float = 0.7) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.keys: list[str] = []
        self._tokens: list[list[str]] = []
        self._occurrences: list[frozenset[tuple[str, int]]] = []
        self._postings: defaultdict[tuple[str, int], list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, text: str) -> None:
        words = tokens(text)
        index = len(self.keys)
        self.keys.append(key)
        self._tokens.append(words)
        occurrences = frozenset(_occurrences(words))
        self._occurrences.append(occurrences)
        for occurrence in occurrences:
            self._postings[occurrence].append(index)

    def match(self, text: str) -> tuple[str, float] | None:
        """The key and ROUGE-L of the closest pool text at or above the threshold, if any."""
        words = tokens(text)
        if not words:
            return None
        mine = frozenset(_occurrences(words))
        rarest = sorted(mine, key=lambda o: len(self._postings.get(o, ())))
        need = math.ceil(self.threshold * len(words) / (2 - self.threshold) - 1e-9)
        prefix = rarest[: len(rarest) - need + 1]
        best: tuple[str, float] | None = None
        for i in sorted({i for o in prefix for i in self._postings.get(o, ())}):
            other = self._tokens[i]
            bound = 2 * len(mine & self._occurrences[i]) / (len(words) + len(other))
            if bound < self.threshold:
                continue
            score = rouge_l(words, other)
            if score >= self.threshold and (best is None or score > best[1]):
                best = (self.keys[i], score)
        return best
