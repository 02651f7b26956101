"""Pointwise reward data: ``prompt``/``response``/``score``, one row per scored response.

A candidate's score comes from per-candidate ``scores`` in the resolve decision or in a
check's details, or from ``candidate.metadata["score"]``. The record's own reply is scored,
first found wins, by the resolve decision (a numeric outcome, or ``score``/``rating``/
``mean``/``median`` in its details), by the mean of numeric human answers (a rubric answer
counts as the mean of its numbers), then by the ``judge`` check's score. Each row says
where its score came from (``score_source``).
"""

from __future__ import annotations

import functools
import statistics
from typing import Any

import pyarrow as pa

from datamill.export.rows import MULTI_TURN, Format, Row, Skip, Style, prompt_in, reply_in
from datamill.export.rows import text_or_messages as _type
from datamill.records import Record

NO_SCORE = Skip("no_score")
_SCORE_KEYS = ("score", "rating", "mean", "median")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    if isinstance(value, dict):
        numbers = [n for v in value.values() if (n := _number(v)) is not None]
        return statistics.fmean(numbers) if numbers else None
    return None


def candidate_scores(record: Record) -> tuple[list[float], str] | None:
    n = len(record.candidates)
    places: list[tuple[dict[str, Any], str]] = []
    if (resolved := record.decisions.get("resolve")) is not None:
        places.append((resolved.details, "consensus"))
    places += [(check.details, "judge") for _, check in sorted(record.checks.items())]
    for details, source in places:
        scores = details.get("scores")
        if isinstance(scores, list) and len(scores) == n:
            numbers = [_number(s) for s in scores]
            if None not in numbers:
                return numbers, source  # type: ignore[return-value]
    own = [_number(c.metadata.get("score")) for c in record.candidates]
    if n and None not in own:
        return own, "imported"  # type: ignore[return-value]
    return None


def reply_score(record: Record, judge: str) -> tuple[float, str] | None:
    if (resolved := record.decisions.get("resolve")) is not None:
        for value in (resolved.outcome, *(resolved.details.get(k) for k in _SCORE_KEYS)):
            if (score := _number(value)) is not None:
                return score, "consensus"
    answers = [n for a in record.annotations if (n := _number(a.value)) is not None]
    if answers:
        return statistics.fmean(answers), "annotations"
    check = record.checks.get(judge)
    if check is not None and check.score is not None:
        return check.score, "judge"
    return None


def rows(record: Record, style: Style, judge: str = "judge") -> list[Row] | Skip:
    scored: list[tuple[str, float, str]] = []
    if (found := candidate_scores(record)) is not None:
        scores, source = found
        scored += [(c.content, s, source) for c, s in zip(record.candidates, scores, strict=True)]
    if record.response is not None and (mine := reply_score(record, judge)) is not None:
        scored.append((record.response, *mine))
    if not scored:
        return NO_SCORE
    prompt = prompt_in(record, style)
    if prompt is None:
        return MULTI_TURN
    return [
        {
            "id": record.id,
            "prompt": prompt,
            "response": reply_in(text, style),
            "score": score,
            "score_source": source,
        }
        for text, score, source in scored
    ]


def schema(style: Style) -> pa.Schema:
    t = _type(style)
    return pa.schema(
        {
            "id": pa.string(),
            "prompt": t,
            "response": t,
            "score": pa.float64(),
            "score_source": pa.string(),
        }
    )


def reward(judge: str = "judge") -> Format:
    return Format("reward", functools.partial(rows, judge=judge), schema)
