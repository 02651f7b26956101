"""The check framework: record and batch checks, the registry, filter rules."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamill.checks import BatchCheck, make_check, passed, run_checks
from datamill.checks.dedup import ExactDedup, normalise
from datamill.checks.length import Length
from datamill.checks.rules import parse_rule
from datamill.errors import DatamillError
from datamill.records import CheckResult, Message, Provenance, Record


def rec(prompt: str, reply: str | None = "a fine answer here") -> Record:
    messages = [Message(role="user", content=prompt)]
    if reply is not None:
        messages.append(Message(role="assistant", content=reply))
    return Record(messages=messages, provenance=Provenance(source="synthetic"))


def test_exact_dedup_normalises_and_points_at_the_first() -> None:
    records = [rec("What is  AI?"), rec("what is ai"), rec("What is ML?"), rec("What is AI?")]
    out = list(run_checks(records, [ExactDedup()]))
    verdicts = [r.checks["exact_dedup"].passed for r in out]
    assert verdicts == [True, False, True, False]
    assert out[1].checks["exact_dedup"].details["duplicate_of"] == records[0].id
    assert normalise("Ｈｅｌｌｏ,\tWORLD!") == "hello world"


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=127)))
def test_ascii_texts_normalise_as_the_unicode_rules_say(text: str) -> None:
    def rules(t: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", "", t.casefold()).split())

    assert normalise(text) == rules(text)
    assert normalise(text + "\u00e9") == rules(text + "\u00e9")  # the general path


def test_identical_records_are_duplicates_too() -> None:
    same = rec("repeat me")
    out = list(run_checks([same, same], [ExactDedup()]))
    assert [r.checks["exact_dedup"].passed for r in out] == [True, False]


def test_length_bounds_and_reasons() -> None:
    check = Length(min_words=2, max_words=4)
    assert check.check(rec("q", "one")).details == {"words": 1, "reason": "too short"}
    assert check.check(rec("q", "one two three")).passed is True
    assert check.check(rec("q", "a b c d e")).details["reason"] == "too long"
    assert check.check(rec("q", None)).passed is False  # no reply: zero words
    with pytest.raises(ValueError, match="above max_words"):
        Length(min_words=5, max_words=1)


class Counting(BatchCheck):
    name = "counting"
    batch_size = 3

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        self.batches.append(len(records))
        return [CheckResult(score=float(len(r.messages))) for r in records]


def test_batch_check_sees_batches_and_keeps_order() -> None:
    check = Counting()
    records = [rec(f"prompt {i}") for i in range(7)]
    out = list(run_checks(records, [check, Length(min_words=1)]))
    assert [r.id for r in out] == [r.id for r in records]
    assert check.batches == [3, 3, 1]
    assert all(set(r.checks) == {"counting", "length"} for r in out)


def test_results_are_added_not_replaced() -> None:
    base = rec("q").with_check("earlier", CheckResult(passed=False))
    [out] = run_checks([base], [Length(min_words=1)])
    assert set(out.checks) == {"earlier", "length"}
    assert not passed(out) and passed(out, ["length"])


def test_registry_makes_checks_with_options_and_names_mistakes() -> None:
    assert make_check("length", {"min_words": 7}).min_words == 7
    with pytest.raises(DatamillError, match="no check 'nope'"):
        make_check("nope")
    with pytest.raises(DatamillError, match="has no option 'minwords'"):
        make_check("length", {"minwords": 7})
    with pytest.raises(DatamillError, match="above max_words"):
        make_check("length", {"min_words": 9, "max_words": 1})


def test_rules() -> None:
    record = rec("q").with_check("judge", CheckResult(score=3.5, passed=True))
    record = record.with_check("length", CheckResult(score=2, passed=False))
    assert parse_rule("judge").reason(record) is None
    assert parse_rule("length").reason(record) == "length: failed"
    assert parse_rule("judge.score>=3").reason(record) is None
    assert parse_rule("judge.score > 4").reason(record) == "judge.score 3.5 is not > 4"
    assert parse_rule("missing").reason(record) == "missing: not checked"
    for bad in ("judge.score=>3", "", "judge.score>=x"):
        with pytest.raises(DatamillError, match="cannot read the rule"):
            parse_rule(bad)
