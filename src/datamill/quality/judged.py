"""Judge verdicts and human answers side by side, read from records.

The pairwise check's details give each judge's verdict on a pair in both shown orders; a
human pairwise answer names the preferred candidate (an index, ``"A"``/``"B"`` for the
first/second of the pair, ``"tie"``, or the annotation app's ``{chosen, tie, pair}``). A
rating is a number, or a rubric mapping whose mean is taken; several annotators are
combined by majority vote (pairwise, no majority: left out) or mean (ratings).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import JsonValue

from datamill.quality.calibration import Verdict
from datamill.records import Record

SHOWN = {"A": 1, "B": 2, "tie": 0}
JUDGE = "judge"  # the label of a verdict that names no judge


@dataclass
class PairwiseColumns:
    judge: list[Verdict] = field(default_factory=list)
    human: list[int] = field(default_factory=list)
    forward: list[Verdict] = field(default_factory=list)
    reverse: list[Verdict] = field(default_factory=list)


def _first_pair(record: Record, check: str) -> list[dict[str, JsonValue]]:
    """Every judge's entry for the record's first pair, from the pairwise check's details."""
    result = record.checks.get(check)
    pairs = result.details.get("pairs") if result is not None else None
    if not isinstance(pairs, list) or not pairs or not isinstance(pairs[0], dict):
        return []
    first = (pairs[0].get("a"), pairs[0].get("b"))
    return [p for p in pairs if isinstance(p, dict) and (p.get("a"), p.get("b")) == first]


def _entry_verdict(pair: dict[str, JsonValue]) -> tuple[Verdict, Verdict, Verdict]:
    winner = {pair.get("a"): 1, pair.get("b"): 2, "tie": 0}.get(pair.get("winner"))  # type: ignore[arg-type]
    return winner, SHOWN.get(str(pair.get("forward"))), SHOWN.get(str(pair.get("reverse")))


def judges_of(record: Record, check: str = "pairwise") -> list[str]:
    """The labels of the judges that judged the record (failed ones included)."""
    result = record.checks.get(check)
    details = result.details if result is not None else {}
    entries = [*(details.get("pairs") or []), *(details.get("failures") or [])]  # type: ignore[misc]
    found = [str(e.get("judge", JUDGE)) for e in entries if isinstance(e, dict)]
    return list(dict.fromkeys(found))


def judge_verdicts(record: Record, check: str = "pairwise") -> dict[str, tuple[Verdict, ...]]:
    """Each judge's verdict on the record's first pair: (winner, forward, reverse) as in
    :func:`judge_verdict`; a judge whose calls failed is absent."""
    return {str(p.get("judge", JUDGE)): _entry_verdict(p) for p in _first_pair(record, check)}


def judge_verdict(record: Record, check: str = "pairwise") -> tuple[Verdict, Verdict, Verdict]:
    """The judges' verdict on a record's first pair (1, 2, 0 or None), and the verdicts as
    shown first (``forward``) and swapped (``reverse``), from the pairwise check.

    With several judges, the verdict is their majority as the check takes it (a judge whose
    orders disagreed votes "inconsistent"; no strict majority, or a majority of
    inconsistent votes, is no verdict) and the shown orders are None: position bias is
    each judge's own (:func:`judge_verdicts`)."""
    entries = _first_pair(record, check)
    if len(entries) <= 1:
        return _entry_verdict(entries[0]) if entries else (None, None, None)
    votes = Counter(_entry_verdict(p)[0] for p in entries).most_common()
    clear = len(votes) == 1 or votes[0][1] > votes[1][1]
    return (votes[0][0] if clear else None), None, None


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


def preferences(records: Iterable[Record], question: str) -> Iterator[tuple[Record, int]]:
    """The records that have both a pairwise judge result and a human preference, each
    with that preference."""
    for record in records:
        human = human_preference(record, question)
        if human is not None and "pairwise" in record.checks:
            yield record, human


def pairwise_columns(
    records: Iterable[Record], question: str, judge_label: str | None = None
) -> PairwiseColumns:
    """Judge and human verdicts of the records that have both: the judges' combined
    verdict, or with ``judge_label`` that judge's own (None where its calls failed)."""
    columns = PairwiseColumns()
    for record, human in preferences(records, question):
        if judge_label is None:
            judge, forward, reverse = judge_verdict(record)
        else:
            judge, forward, reverse = judge_verdicts(record).get(judge_label, (None, None, None))
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
