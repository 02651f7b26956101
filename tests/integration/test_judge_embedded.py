"""The pairwise judge on the real embedded model, on real human-labelled pairs.

The embedded model (135M parameters) is not a good judge: its agreement with humans is
expected to be low. These tests check the mechanics end to end — both orders asked, a
verdict or a recorded failure for every pair, figures computed — and print the agreement
so that it can be read in the test log (``pytest -s``). ``datamill calibrate`` measures it
on larger samples.
"""

from __future__ import annotations

import math

import pytest

from datamill.checks import run_checks
from datamill.checks.pairwise import Pairwise
from datamill.quality.calibration import Calibration, calibrate_pairwise
from datamill.quality.judged import judge_verdict
from datamill.quality.references import load_reference
from support import embedded_backend, require

pytestmark = [pytest.mark.model, pytest.mark.slow]


def agreement(name: str, n: int, seed: int = 0) -> Calibration:
    """The embedded judge against the human labels of ``n`` pairs of a reference set,
    printed. Texts are cut to 600 characters to keep the calls few and short."""
    embedded_backend()
    require("sklearn", "pip install 'datamill[quality]'")
    pairs = load_reference(name, limit=n, seed=seed).pairs
    judged = list(run_checks([p.record() for p in pairs], [Pairwise(max_chars=600)]))
    for record in judged:
        result = record.checks["pairwise"]
        assert result.details["prompt"] == {"name": "pairwise", "version": "1"}
        for pair in result.details["pairs"]:  # type: ignore[union-attr]
            assert pair["forward"] in ("A", "B", "tie") and pair["reverse"] in ("A", "B", "tie")  # type: ignore[index]
            assert all(isinstance(r, str) for r in pair["rationales"])  # type: ignore[index]
        for failure in result.details["failures"]:  # type: ignore[union-attr]
            assert failure["cause"] and "raw" in failure  # type: ignore[index]
        assert len(result.details["pairs"]) + len(result.details["failures"]) >= 1  # type: ignore[arg-type]
    verdicts = [judge_verdict(r) for r in judged]
    cal = calibrate_pairwise(
        [v[0] for v in verdicts],
        [p.label for p in pairs],
        forward=[v[1] for v in verdicts],
        reverse=[v[2] for v in verdicts],
    )
    print(f"\nembedded judge vs humans on {n} pairs of {name}: {cal.as_dict()}")
    return cal


@pytest.mark.parametrize("name", ["llmbar-natural", "pandalm"])
def test_embedded_judge_agreement_with_humans(name: str) -> None:
    cal = agreement(name, 2)
    assert cal.items == 2
    assert cal.position_bias is not None
    assert math.isnan(cal.accuracy_half_ties) or 0 <= cal.accuracy_half_ties <= 1
