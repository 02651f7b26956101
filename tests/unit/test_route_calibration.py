"""Calibration-aware routing: the same records under a well and a poorly calibrated judge are
routed differently, and each record's reason says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datamill.errors import InputError
from datamill.records import CheckResult, Message, Provenance, Record
from datamill.route import load_policy, route_dataset
from datamill.route.calibration import apply_calibration, read_figures
from datamill.store import Dataset

DEFAULT = Path(__file__).parents[2] / "recipes" / "policies" / "default.yaml"
GOOD = {"reference": "llmbar-natural", "items": 60, "kappa": 0.62, "accuracy": 0.85}
POOR = {"reference": "llmbar-natural", "items": 60, "kappa": 0.12, "accuracy": 0.55}
SCORES = [1.0, 2.2, 2.4, 3.0, 3.8, 4.2, 4.9]


def record(i: int, score: float) -> Record:
    return Record(
        messages=[
            Message(role="user", content=f"Question {i}?"),
            Message(role="assistant", content=f"Answer {i}."),
        ],
        provenance=Provenance(source="synthetic"),
        checks={"judge": CheckResult(score=score, passed=None)},
    )


def policy_with(tmp_path: Path, figures: dict[str, Any], calibration: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    text = DEFAULT.read_text().replace("  rate: 0.05", "  rate: 0.0")
    path = tmp_path / "policy.yaml"
    path.write_text(text + f"\ncalibration: {calibration}\n")
    return path


def routed(tmp_path: Path, figures: dict[str, Any], calibration: str = "figures.json") -> dict:
    policy = load_policy(policy_with(tmp_path, figures, calibration))
    ds = Dataset.create(tmp_path / "ds")
    ds.write([record(i, s) for i, s in enumerate(SCORES)], stage="generate", parent=None)
    version = route_dataset(ds, policy)
    decisions = [r.decisions["route"] for r in ds.records(version.version)]
    return {"version": version, "decisions": decisions}


def test_good_and_poor_calibration_route_the_same_records_differently(tmp_path: Path) -> None:
    good = routed(tmp_path / "good", GOOD)
    poor = routed(tmp_path / "poor", POOR)
    assert [d.outcome for d in good["decisions"]] == [
        "reject", "reject", "reject", "human", "accept", "accept", "accept"
    ]  # fmt: skip
    assert not any("calibration" in d.reason for d in good["decisions"])
    # Distrusted: the band [2.5, 3.5] widens to [2, 4]; "judged poor" sends to humans.
    outcomes = [d.outcome for d in poor["decisions"]]
    assert outcomes[:5] == ["human"] * 5 and outcomes[6] == "accept"
    why = "calibration on llmbar-natural: κ 0.12 < 0.4, accuracy 0.55 < 0.7"
    widened = poor["decisions"][4]
    assert widened.reason == (
        f"uncertain judge: judge.score 3.8 in [2, 4] (band [2.5, 3.5] widened: {why})"
    )
    rejected = poor["decisions"][0]
    assert rejected.reason == (
        f"judged poor: judge.score 1 < 2.5 (would reject, sent to humans: {why})"
    )
    assert poor["version"].params["calibration"]["trusted"] is False
    assert good["version"].params["calibration"]["trusted"] is True
    assert good["version"].params["policy"] != poor["version"].params["policy"]


def test_a_distrusted_judge_raises_the_audit_rate(tmp_path: Path) -> None:
    poor = routed(tmp_path, POOR, "{path: figures.json, audit_rate: 1.0, widen: 0}")
    accepted_before = poor["decisions"][5:]  # 4.2 and 4.9: accepted under a trusted judge
    assert [d.outcome for d in accepted_before] == ["human", "human"]
    assert all(d.details["audit"] for d in accepted_before)
    assert "audit: a 1 sample of automatic accepts (rate raised from 0: calibration" in (
        accepted_before[0].reason
    )


def test_figures_from_every_form_calibrate_writes(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"dataset": "ds", "pairwise": {"kappa": None, "accuracy": 0.9}}))
    figures = read_figures(path)
    assert (figures.kappa, figures.accuracy, figures.source) == (None, 0.9, "ds")
    path.write_text(json.dumps({"dataset": "ds", "ratings": {"items": 9.0, "spearman": 0.5,
                                "pairwise_accuracy": 0.8, "kappa_quadratic": 0.6}}))  # fmt: skip
    assert (read_figures(path).kappa, read_figures(path).items) == (0.6, 9)
    # An unmeasured kappa is no reason to trust the judge.
    policy = load_policy(policy_with(tmp_path, {"kappa": None, "accuracy": 0.9}, "figures.json"))
    applied = apply_calibration(policy)
    assert applied.distrusted and "κ not measured" in applied.why


def test_a_missing_or_foreign_calibration_file_is_a_clear_error(tmp_path: Path) -> None:
    policy = load_policy(policy_with(tmp_path, GOOD, "nowhere.json"))
    with pytest.raises(InputError, match=r"nowhere\.json.*not a readable calibration file"):
        apply_calibration(policy)
    policy = load_policy(policy_with(tmp_path, {"rows": 3}, "figures.json"))
    with pytest.raises(InputError, match="no kappa or accuracy"):
        apply_calibration(policy)
    path = policy_with(tmp_path, GOOD, "{path: figures.json, min_kappa: 2}")
    with pytest.raises(InputError, match=r"calibration\.min_kappa"):
        load_policy(path)
