"""Judge verdicts and human answers side by side, read from records.

The pairwise check's details give the judge's verdict on a pair in both shown orders; a
human pairwise answer names the preferred candidate (an index, ``"A"``/``"B"`` for the
first/second of the pair, ``"tie"``, or the annotation app's ``{chosen, tie, pair}``). A
rating is a number, or a rubric mapping whose mean is taken; several annotators are
combined by majority vote (pairwise, no majority: left out) or mean (ratings).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import JsonValue

from datamill.quality.calibration import Verdict
from datamill.records import Record

SHOWN = {"A": 1, "B": 2, "tie": 0}


@dataclass
class PairwiseColumns:
    judge: list[Verdict] = field(default_factory=list)
    human: list[int] = field(default_factory=list)
    forward: list[Verdict] = field(default_factory=list)
    reverse: list[Verdict] = field(default_factory=list)


def judge_verdict(record: Record, check: str = "pairwise") -> tuple[Verdict, Verdict, Verdict]:
    """The judge's verdict on a record's first pair (1, 2, 0 or None), and its verdicts as
    shown first (``forward``) and swapped (``reverse``), from the pairwise check."""
    result = record.checks.get(check)
    pairs = result.details.get("pairs") if result is not None else None
    if not isinstance(pairs, list) or not pairs or not isinstance(pairs[0], dict):
        return None, None, None
    pair = pairs[0]
    winner = {pair.get("a"): 1, pair.get("b"): 2, "tie": 0}.get(pair.get("winner"))  # type: ignore[arg-type]
    return winner, SHOWN.get(str(pair.get("forward"))), SHOWN.get(str(pair.get("reverse")))


def _pairwise_vote(value: JsonValue) -> int | None:
    """A human pairwise answer as 1 (first candidate), 2 (second), 0 (tie) or None."""
    pair: JsonValue = [0, 1]
    if isinstance(value, dict):
        if value.get("tie") is True:
            return 0
        pair = value.get("pair", pair)
        value = value.get("choice", value.get("chosen"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and isinstance(pair, list) and value in pair[:2]:
        return pair.index(value) + 1
    if isinstance(value, str):
        return {"a": 1, "b": 2, "tie": 0}.get(value.strip().lower())
    return None


def human_preference(record: Record, question: str) -> int | None:
    """The majority of the annotators' answers to ``question`` (None: no clear majority)."""
    votes = [_pairwise_vote(a.value) for a in record.annotations if a.question == question]
    counts = Counter(v for v in votes if v is not None).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def human_rating(record: Record, question: str) -> float | None:
    """The mean of the annotators' ratings (a rubric counts as the mean of its criteria)."""
    values = []
    for a in record.annotations:
        if a.question != question:
            continue
        value = a.value
        if isinstance(value, dict):
            numbers = [v for v in value.values() if _number(v)]
            value = statistics.fmean(numbers) if numbers else None  # type: ignore[arg-type]
        if _number(value):
            values.append(float(value))  # type: ignore[arg-type]
    return statistics.fmean(values) if values else None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def pairwise_columns(records: Iterable[Record], question: str) -> PairwiseColumns:
    """Judge and human verdicts of the records that have both."""
    columns = PairwiseColumns()
    for record in records:
        human = human_preference(record, question)
        if human is None or "pairwise" not in record.checks:
            continue
        judge, forward, reverse = judge_verdict(record)
        columns.judge.append(judge)
        columns.human.append(human)
        columns.forward.append(forward)
        columns.reverse.append(reverse)
    return columns


def rating_columns(records: Iterable[Record], question: str) -> tuple[list[float], list[float]]:
    """The judge's overall scores and the human ratings of records that have both."""
    judge, human = [], []
    for record in records:
        result = record.checks.get("judge")
        rating = human_rating(record, question)
        if result is not None and result.score is not None and rating is not None:
            judge.append(result.score)
            human.append(rating)
    return judge, human
