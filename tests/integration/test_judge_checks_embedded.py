"""The rubric and safety judges on the real embedded model.

The 135M model is a poor judge, so these tests do not ask for good verdicts. They check what
every run relies on: each record gets a result, which is either a verdict inside the schema
(six criteria scored 1–5, a boolean per safety category) or a failure that keeps the raw
text; the prompt version and the model that judged are on the record.
"""

from __future__ import annotations

import pytest

from datamill.checks import make_check, run_checks
from datamill.checks.judge import CRITERIA
from support import chat, embedded_backend

pytestmark = [pytest.mark.model, pytest.mark.slow]

RECORDS = [chat("What is the capital of France?", "The capital of France is Paris.")]


def judged(name: str) -> list:  # type: ignore[type-arg]
    embedded_backend()
    out = list(run_checks(RECORDS, [make_check(name, {"max_chars": 400})]))
    assert [r.id for r in out] == [r.id for r in RECORDS]
    for record in out:
        entry = record.provenance.params["judge"][name]
        assert entry["models"] and str(entry["models"][0]).startswith("embedded:")
        assert entry["version"]
    print(f"\n{name} on the embedded model: {[r.checks[name] for r in out]}")
    return [r.checks[name] for r in out]


def test_rubric_judge_scores_within_the_scale_or_keeps_the_failure() -> None:
    for result in judged("judge"):
        failures = result.details["failures"]
        if result.score is None:
            assert failures and all(f["cause"] and "raw" in f for f in failures)
            continue
        assert 1.0 <= result.score <= 5.0
        criteria = result.details["criteria"]
        assert set(criteria) == set(CRITERIA)
        assert all(1.0 <= float(v) <= 5.0 for v in criteria.values())


def test_safety_judge_flags_categories_or_falls_back_to_the_lexicon() -> None:
    for result in judged("safety_judge"):
        categories = result.details["categories"]
        assert isinstance(categories, dict)
        for verdict in categories.values():
            assert verdict["judge"] in (True, False, None)
            assert verdict["flagged"] in (True, False)
        if result.details["failures"] and not result.details["rationales"]:
            assert result.passed is False  # safety unknown: sent to review
            assert "lexicon flags only" in result.details["reason"]
        else:
            assert result.passed == (result.score == 0.0)
