"""Several pairwise judges on one record: each judge's verdict, and their majority."""

from __future__ import annotations

from typing import Any

from datamill.quality.judged import (
    judge_verdict,
    judge_verdicts,
    judges_of,
    pairwise_columns,
)
from datamill.records import Annotation, CheckResult
from support import chat

A, B = "candidate 0", "candidate 1"


def entry(judge: str, forward: str, reverse: str, winner: str | None) -> dict[str, Any]:
    return {"a": A, "b": B, "judge": judge, "forward": forward, "reverse": reverse,
            "winner": winner}  # fmt: skip


def judged(*entries: dict[str, Any], failed: tuple[str, ...] = ()) -> Any:
    failures = [{"judge": j, "pair": 0, "cause": "timeout"} for j in failed]
    details = {"pairs": list(entries), "failures": failures}
    votes = [Annotation(annotator="x", question="preference", value="B")]
    record = chat("q").model_copy(update={"annotations": votes})
    return record.with_check("pairwise", CheckResult(details=details))


def test_each_judge_and_their_majority() -> None:
    record = judged(
        entry("0:a", "B", "A", B),  # consistent: the second is better
        entry("1:b", "A", "A", None),  # changed its mind with the order
        entry("2:c", "B", "A", B),
        # a second pair of the same record is not the first pair
        {
            "a": A,
            "b": "candidate 2",
            "judge": "0:a",
            "forward": "A",
            "reverse": "B",
            "winner": A,
        },
    )
    assert judges_of(record) == ["0:a", "1:b", "2:c"]
    assert judge_verdicts(record) == {"0:a": (2, 2, 1), "1:b": (None, 1, 1), "2:c": (2, 2, 1)}
    assert judge_verdict(record) == (2, None, None)  # two of three: the second is better
    split = judged(entry("0:a", "B", "A", B), entry("1:b", "A", "B", A))
    assert judge_verdict(split) == (None, None, None)  # one each: no verdict
    muddled = judged(entry("0:a", "A", "A", None), entry("1:b", "B", "B", None))
    assert judge_verdict(muddled) == (None, None, None)  # both inconsistent
    tie = judged(entry("0:a", "tie", "tie", "tie"), entry("1:b", "tie", "tie", "tie"))
    assert judge_verdict(tie) == (0, None, None)


def test_a_failed_judge_has_no_verdict_and_does_not_vote() -> None:
    record = judged(entry("0:a", "A", "B", A), failed=("1:b",))
    assert judges_of(record) == ["0:a", "1:b"]
    assert judge_verdicts(record) == {"0:a": (1, 1, 2)}
    assert judge_verdict(record) == (1, 1, 2)  # one judge answered: its verdict, its orders
    assert pairwise_columns([record], "preference", "1:b").judge == [None]
    assert pairwise_columns([record], "preference", "0:a").judge == [1]
    assert pairwise_columns([record], "preference").human == [2]
