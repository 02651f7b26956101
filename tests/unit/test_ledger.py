"""The ledger: costs add up from provenance usage and annotation time; unknown is not zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamill.errors import InputError
from datamill.ledger import Rates, build_ledger
from datamill.records import Annotation, CheckResult, Decision, Provenance, Record, Usage
from support import chat

RATES = """
currency: EUR
groups:
  clinicians: {hourly: 90, annotators: [dr_lee]}
  crowd: {hourly: 12, annotators: [ann, bob]}
prices:
  big-model: {prompt: 2.0, completion: 8.0}
"""


def synthetic(i: int, model: str, usage: Usage | None, **fields: object) -> Record:
    record = chat(f"question {i}", f"answer number {i} about topic {i % 3}", **fields)
    provenance = Provenance(source="synthetic", model=model, recipe="r1", usage=usage)
    return record.model_copy(update={"provenance": provenance})


def answer(who: str, question: str, value: object, seconds: float | None, rid: str) -> Annotation:
    return Annotation(
        annotator=who,
        question=question,
        value=value,
        project="med",
        seconds=seconds,
        metadata={"response_id": rid},
    )


@pytest.fixture
def rates(tmp_path: Path) -> Rates:
    path = tmp_path / "rates.yaml"
    path.write_text(RATES)
    return Rates.load(path)


def test_costs_add_up_from_usage_prices_and_annotation_time(rates: Rates) -> None:
    paid = Usage(calls=1, prompt_tokens=100, completion_tokens=50, seconds=2.0, cost=0.01)
    tokens_only = Usage(calls=1, prompt_tokens=1_000_000, completion_tokens=500_000, seconds=4.0)
    records = [
        synthetic(0, "small", paid),
        synthetic(1, "small", paid),
        synthetic(2, "big-model", tokens_only),  # priced from the rates file: 2 + 4 = 6
        synthetic(3, "mystery", tokens_only),  # no price anywhere: unknown
    ]
    resolve = Decision(
        outcome="resolved", by="majority", details={"questions": {"ok": {"value": "yes"}}}
    )
    annotated = records[0].model_copy(
        update={
            "annotations": [
                # One response answering two questions: its 600 s count once.
                answer("dr_lee", "ok", "yes", 600, "r1"),
                answer("dr_lee", "note", "fine", 600, "r1"),
                answer("ann", "ok", "no", 120, "r2"),
                answer("bob", "ok", "yes", None, "r3"),  # no time: unpriced
            ],
            "decisions": {"resolve": resolve},
        }
    )
    ledger = build_ledger([annotated, *records[1:]], rates)
    rows = {(r.kind, r.source): r for r in ledger.rows}
    assert ledger.currency == "EUR"
    small = rows["synthetic", "small / r1"]
    assert small.cost == pytest.approx(0.02) and small.unpriced == 0
    assert small.throughput == pytest.approx(2 / (4 / 3600))
    assert rows["synthetic", "big-model / r1"].cost == pytest.approx(6.0)
    mystery = rows["synthetic", "mystery / r1"]
    assert mystery.cost is None and mystery.unpriced == 1 and mystery.cost_per_item is None
    clinicians = rows["annotation", "med / clinicians"]
    assert clinicians.cost == pytest.approx(600 / 3600 * 90) and clinicians.answers == 2
    assert clinicians.acceptance == 1.0
    crowd = rows["annotation", "med / crowd"]
    assert crowd.cost == pytest.approx(120 / 3600 * 12) and crowd.unpriced == 1
    assert crowd.acceptance == pytest.approx(0.5)  # ann said no, bob said yes
    # bob's time is unknown, so what the one annotated item cost humans is only partly known:
    # it is in the rows' totals but not in a cost per item.
    assert ledger.comparison["human"]["cost_per_item"] is None
    assert ledger.comparison["synthetic"]["cost_per_item"] == pytest.approx((0.02 + 6) / 3)


def test_each_side_costs_its_own_items_and_an_annotated_record_counts_in_both(
    rates: Rates,
) -> None:
    paid = Usage(calls=1, prompt_tokens=10, completion_tokens=10, seconds=1.0, cost=0.5)
    records = [synthetic(i, "small", paid) for i in range(4)]
    written = chat("a person's question", "a person's answer")  # human-written, no cost
    both = [  # one synthetic record, answered by two groups (clinicians 60 s, crowd 2 × 30 s)
        answer("dr_lee", "ok", "yes", 60, "r1"),
        answer("ann", "ok", "yes", 30, "r2"),
        answer("bob", "ok", "yes", 30, "r3"),
    ]
    crowd_only = [answer("ann", "ok", "no", 300, "r4")]  # the human-written record
    records[0] = records[0].model_copy(update={"annotations": both})
    written = written.model_copy(update={"annotations": crowd_only})
    ledger = build_ledger([*records, written], rates)
    rows = {(r.kind, r.source): r for r in ledger.rows}
    assert rows["synthetic", "small / r1"].cost_per_item == pytest.approx(0.5)
    clinicians, crowd = rows["annotation", "med / clinicians"], rows["annotation", "med / crowd"]
    assert (clinicians.items, clinicians.cost_per_item) == (1, pytest.approx(1.5))
    # crowd: 0.2 on the synthetic record, 1.0 on the written one, each item priced
    assert (crowd.items, crowd.unpriced) == (2, 0)
    assert crowd.cost_per_item == pytest.approx((0.2 + 1.0) / 2)
    synthetic_side, human_side = ledger.comparison["synthetic"], ledger.comparison["human"]
    # The annotated synthetic record is in both: its generation cost and its annotation cost.
    assert synthetic_side["items"] == 4
    assert synthetic_side["cost_per_item"] == pytest.approx(0.5)
    assert human_side["items"] == 2  # two annotated records, one of them by two groups
    assert human_side["cost_per_item"] == pytest.approx((1.5 + 0.2 + 1.0) / 2)
    assert human_side["items_per_hour"] == pytest.approx(2 / ((60 + 30 + 30 + 300) / 3600))


def test_missing_rates_leave_costs_unknown() -> None:
    record = chat("q", "a").model_copy(
        update={"annotations": [answer("zoe", "ok", "yes", 60, "r")]}
    )
    ledger = build_ledger([record])
    (written, labour) = ledger.rows
    assert written.kind == "human-written" and written.cost is None and written.unpriced == 1
    assert labour.source == "med / ungrouped" and labour.cost is None and labour.unpriced == 1
    assert ledger.comparison["human"]["cost_per_item"] is None


def test_acceptance_flags_hallucinations_quality_and_diversity() -> None:
    fail, ok = CheckResult(passed=False), CheckResult(passed=True)
    records = [
        synthetic(0, "m", None, checks={"judge": CheckResult(score=4.0, passed=True)}),
        synthetic(1, "m", None, checks={"judge": CheckResult(score=2.0, passed=False)}),
        synthetic(2, "m", None, checks={"grounding": fail, "length": ok}),
        synthetic(3, "m", None, checks={"grounding": ok}),
        synthetic(4, "m", None),
    ]
    row = build_ledger(records).rows[0]
    assert row.quality == pytest.approx(3.0)
    assert row.flag_rate == pytest.approx(2 / 4)
    assert row.acceptance == pytest.approx(2 / 4)  # no routing: passed every check
    assert row.hallucination_rate == pytest.approx(1 / 2)
    assert row.distinct_2 is not None and row.self_bleu is not None
    routed = [
        r.with_decision("route", Decision(outcome=o, by="policy"))
        for r, o in zip(records, ["accept", "accept", "reject", "human", "accept"], strict=True)
    ]
    assert build_ledger(routed).rows[0].acceptance == pytest.approx(3 / 5)


def test_bad_rates_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rates.yaml"
    path.write_text("groups:\n  crowd: {hourly: -3}\n")
    with pytest.raises(InputError, match=r"rates.yaml.*groups.crowd.hourly"):
        Rates.load(path)
    path.write_text("groups: [\n")
    with pytest.raises(InputError, match="invalid YAML"):
        Rates.load(path)
