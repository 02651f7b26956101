"""The route stage on real datasets: the human budget spent by priority, the new version,
and the command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from datamill.records import CheckResult, Message, Provenance, Record
from datamill.route import Policy, human_records, load_policy, route_dataset
from datamill.store import Dataset

DEFAULT = Path(__file__).parents[2] / "recipes" / "policies" / "default.yaml"


def scored(i: int, score: float, domain: str | None = None) -> Record:
    return Record(
        messages=[
            Message(role="user", content=f"Question {i}: how do tides work?"),
            Message(role="assistant", content=f"Answer {i}."),
        ],
        domain=domain,
        provenance=Provenance(source="synthetic"),
        checks={"judge": CheckResult(score=score)},
    )


def dataset(path: Path, records: list[Record]) -> Dataset:
    ds = Dataset.create(path)
    ds.write(records, stage="check", parent=None)
    return ds


BAND = Policy.model_validate(
    {
        "name": "band",
        "rules": [{"name": "unsure", "check": "judge", "between": [2, 4], "route": "human"}],
        "budget": 3,
    }
)


def test_the_budget_goes_to_the_highest_priorities(tmp_path: Path) -> None:
    # Priority is uncertainty (highest in the middle of the band) times the risk weight.
    scores = [3.0, 2.1, 3.9, 2.9, 4.5, 1.0, 3.4, 2.05, 3.15]
    records = [scored(i, s) for i, s in enumerate(scores)]
    records.append(scored(99, 2.0, domain="finance"))  # at the edge (0.5), but risk weight 2
    ds = dataset(tmp_path / "ds", records)
    routed = route_dataset(ds, BAND)
    assert routed.parent == 1 and routed.stage == "route"
    out = list(ds.records(routed.version))
    assert [r.id for r in out] == [r.id for r in records]  # every record, in order
    outcomes = {r.checks["judge"].score: r.decisions["route"] for r in out}
    assert {s for s, d in outcomes.items() if d.outcome == "human"} == {3.0, 2.9, 2.0}
    assert outcomes[3.0].details["priority"] == outcomes[2.0].details["priority"] == 1.0
    assert outcomes[2.9].details["priority"] == 0.95
    assert outcomes[4.5].outcome == "accept" and outcomes[1.0].outcome == "accept"
    for score in (2.1, 3.9, 3.4, 2.05, 3.15):
        assert outcomes[score].outcome == "reject"  # the policy's over_budget
        assert "over budget" in outcomes[score].reason
    assert routed.counts == {
        "records": 10,
        "accept": 2,
        "reject": 5,
        "human": 3,
        "audit": 0,
        "over_budget": 5,
    }
    assert routed.stats["wanted_human"] == 8
    assert routed.params["policy"] == BAND.ident()
    assert len(list(human_records(ds.records(routed.version), "review"))) == 3
    # Routing again gives the same decisions.
    again = route_dataset(ds, BAND, version=1)
    assert [r.decisions["route"].outcome for r in ds.records(again.version)] == [
        r.decisions["route"].outcome for r in out
    ]


def test_ties_are_cut_by_a_seeded_sample_and_audits_fall_back_to_accept(tmp_path: Path) -> None:
    records = [scored(i, 3.0) for i in range(40)]
    ds = dataset(tmp_path / "ds", records)
    tied = BAND.model_copy(update={"budget": 10, "over_budget": "accept"})
    routed = route_dataset(ds, tied)
    humans = [
        i
        for i, r in enumerate(ds.records(routed.version))
        if r.decisions["route"].outcome == "human"
    ]
    assert len(humans) == 10 and humans != list(range(10))  # not simply the first ten
    assert routed.counts["accept"] == 30
    audited = Policy.model_validate({"name": "a", "audit": {"rate": 1.0}, "budget": 5})
    routed = route_dataset(ds, audited)
    assert (routed.counts["human"], routed.counts["accept"], routed.counts["audit"]) == (5, 35, 5)
    reasons = {r.decisions["route"].reason for r in ds.records(routed.version)}
    assert any("over budget" in reason for reason in reasons)


def test_a_zero_budget_sends_nothing_to_humans(tmp_path: Path) -> None:
    ds = dataset(tmp_path / "ds", [scored(i, 3.0) for i in range(5)])
    routed = route_dataset(ds, BAND.model_copy(update={"budget": 0}))
    assert routed.counts["human"] == 0 and routed.counts["over_budget"] == 5


def datamill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_route_command(tmp_path: Path) -> None:
    records = [scored(i, s) for i, s in enumerate([3.0, 3.2, 4.8, 1.0])]
    records.append(scored(9, 4.9, domain="healthcare"))
    dataset(tmp_path / "ds", records)
    out = datamill(
        "route", tmp_path / "ds", "--policy", DEFAULT, "--project", "tides", "--budget", "2"
    )
    assert out.returncode == 0, out.stderr
    policy = load_policy(DEFAULT).model_copy(update={"project": "tides", "budget": 2})
    assert f"by {policy.ident()} → version 2" in out.stdout
    assert "human 2" in out.stdout and "project    tides: 2 items" in out.stdout
    routed = list(Dataset.open(tmp_path / "ds").records(2))
    healthcare = routed[-1].decisions["route"]
    assert healthcare.outcome == "human" and healthcare.details["expertise"] == ["clinician"]
    assert routed[3].decisions["route"].outcome == "reject"  # judged poor


def test_a_bad_policy_is_one_line_naming_the_field_and_writes_nothing(tmp_path: Path) -> None:
    dataset(tmp_path / "ds", [scored(0, 3.0)])
    bad = tmp_path / "policy.yaml"
    bad.write_text("name: p\nrules:\n  - {name: r, check: judge, between: [1, 2], route: maybe}\n")
    out = datamill("route", tmp_path / "ds", "--policy", bad)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "rules.0.route" in out.stderr
    assert len(Dataset.open(tmp_path / "ds").versions) == 1
    out = datamill("route", tmp_path / "nothing", "--policy", DEFAULT)
    assert out.returncode == 1 and "not a datamill dataset" in out.stderr
