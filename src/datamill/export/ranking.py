"""Which of a record's candidates is better: the order that preference, KTO and reward
exports are made from, and where it came from.

Sources, first found wins:

1. ``consensus`` — the resolve stage's decision (``decisions["resolve"]``): a ranking,
   per-candidate scores or a preferred candidate in its details or outcome. A record sent
   to adjudication and not yet decided gives no order at all (humans were asked; a judge
   must not overrule them).
2. ``annotations`` — pairwise and ranking answers on the record, counted as votes
   (each answer adds a win for the preferred candidate over each one it beat).
3. ``judge`` — a check whose details hold one score per candidate (``scores``) or a
   pairwise verdict (``winner``).
4. ``imported`` — ranks that came with the data (``candidate.metadata["rank"]``, 0 best:
   Open-Assistant, hh-rlhf, TRL imports).

A candidate is named by its index in ``record.candidates``, as an int, a digit string or
a letter (``"A"`` is the first). Equal standing is a tie and never makes a pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from datamill.export.rows import Skip
from datamill.records import Record

AWAITING = Skip("awaiting_adjudication")
NO_ORDER = Skip("no_preference")
_RANKING_KEYS = ("ranking", "order", "ranks")
_CHOICE_KEYS = ("preferred", "winner", "choice", "chosen", "outcome", "label", "value")


@dataclass(frozen=True)
class Order:
    """Candidate indices by standing, best tier first; a tier holds candidates tied."""

    tiers: list[list[int]]
    source: str

    def pairs(self, how: str = "all") -> list[tuple[int, int]]:
        """(better, worse) pairs: ``all`` across tiers, ``best`` (the best tier against
        every other) or ``extremes`` (best tier against worst)."""
        if len(self.tiers) < 2:
            return []
        if how == "all":
            return [
                (a, b)
                for i, upper in enumerate(self.tiers)
                for lower in self.tiers[i + 1 :]
                for a in upper
                for b in lower
            ]
        lowers = self.tiers[1:] if how == "best" else self.tiers[-1:]
        return [(a, b) for a in self.tiers[0] for lower in lowers for b in lower]


def candidate_order(record: Record, judge: str | None = None) -> Order | Skip:
    """The order of ``record``'s candidates and its source, or why there is none.
    ``judge`` names the check to read (default: any check with per-candidate verdicts)."""
    n = len(record.candidates)
    if n < 2:
        return NO_ORDER
    resolved = record.decisions.get("resolve")
    if resolved is not None:
        if resolved.outcome == "adjudicate":
            return AWAITING
        found = _from_value({"details": resolved.details, "outcome": resolved.outcome}, n)
        if found:
            return Order(found, "consensus")
    votes: list[tuple[int, int]] = []
    for a in record.annotations:
        votes += _votes(a.value, n)
    if votes:
        return Order(_tiers(votes, n), "annotations")
    for name, check in sorted(record.checks.items()):
        if judge is None or name == judge:
            found = _from_value(check.details, n)
            if found:
                return Order(found, "judge")
    ranks = [c.metadata.get("rank") for c in record.candidates]
    known = [(r, i) for i, r in enumerate(ranks) if isinstance(r, int | float)]
    if len(known) >= 2:
        return Order(_by_score({i: -float(r) for r, i in known}), "imported")
    return NO_ORDER


def _from_value(value: Any, n: int) -> list[list[int]]:
    """Tiers read from a decision's or check's details, or [] if it holds no order."""
    votes = _votes(value, n)
    if votes:
        return _tiers(votes, n)
    if isinstance(value, dict):
        scores = value.get("scores")
        if isinstance(scores, list) and len(scores) == n and all(_number(s) for s in scores):
            return _by_score(dict(enumerate(float(s) for s in scores)))
        for inner in value.values():
            if isinstance(inner, dict) and (found := _from_value(inner, n)):
                return found
    return []


def _votes(value: Any, n: int) -> list[tuple[int, int]]:
    """(winner, loser) votes in one answer: a ranking (list, best first) or a choice."""
    if isinstance(value, dict):
        for key in _RANKING_KEYS:
            if isinstance(value.get(key), list):
                return _votes(value[key], n)
        for key in _CHOICE_KEYS:
            if isinstance(value.get(key), list):  # e.g. a resolved ranking's value
                return _votes(value[key], n)
            if key in value:
                loser = next((value[k] for k in ("over", "loser", "rejected") if k in value), None)
                over = _index(loser, n)
                return _choice(_index(value[key], n), over, n)
        return []
    if isinstance(value, list):
        order = [_index(v, n) for v in value]
        if len(order) < 2 or None in order or len(set(order)) < len(order):
            return []
        return [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]  # type: ignore[misc]
    return _choice(_index(value, n), None, n)


def _choice(winner: int | None, over: int | None, n: int) -> list[tuple[int, int]]:
    if winner is None:
        return []
    if over is not None:
        return [(winner, over)] if over != winner else []
    return [(winner, 1 - winner)] if n == 2 else []


def _index(value: Any, n: int) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
        elif len(text) == 1 and text.isalpha():
            value = ord(text.upper()) - ord("A")
        else:
            return None
    return value if isinstance(value, int) and 0 <= value < n else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tiers(votes: Iterable[tuple[int, int]], n: int) -> list[list[int]]:
    """Candidates by wins minus losses (Copeland score); unvoted candidates are left out."""
    score: dict[int, float] = {}
    for winner, loser in votes:
        score[winner] = score.get(winner, 0) + 1
        score[loser] = score.get(loser, 0) - 1
    return _by_score(score)


def _by_score(score: dict[int, float]) -> list[list[int]]:
    tiers: dict[float, list[int]] = {}
    for i in sorted(score):
        tiers.setdefault(score[i], []).append(i)
    return [tiers[s] for s in sorted(tiers, reverse=True)]
