"""``datamill check`` with judges and ``datamill calibrate``, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datamill.llm.stub_server import StubServer
from datamill.records import Annotation, Candidate, CheckResult, Record
from datamill.store import Dataset
from support import chat, require


def datamill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_check_with_judges_from_the_command_line(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    records = [chat("Name a prime", "7", candidates=[Candidate(content="8")]), chat("Hi", "Yo")]
    ds.write(records, stage="import")
    with StubServer() as stub:
        out = datamill(
            "check", ds.path, "--checks", "judge,pairwise,verified",
            "--option", f"judge.base_url={stub.url}", "--option", "judge.model=stub",
            "--option", f"pairwise.backend={{kind: openai, base_url: '{stub.url}', model: s}}",
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "failed: judge 2, pairwise 1" in out.stdout
    prime, hi = list(ds.records())
    assert prime.checks["judge"].score == 1.0 and prime.checks["pairwise"].details["swap"]
    assert hi.checks["pairwise"].passed is None  # one response: nothing to compare
    assert hi.checks["verified"].passed is None
    assert set(prime.provenance.params["judge"]) == {"judge", "pairwise"}  # type: ignore[arg-type]
    bad = datamill("check", ds.path, "--checks", "judge", "--option", "judge.backend=[]")
    assert bad.returncode == 1 and "name at least one judge" in bad.stderr


def test_calibrate_on_a_reference_through_a_server(tmp_path: Path) -> None:
    require("sklearn", "pip install 'datamill[quality]'")
    figures = tmp_path / "figures.json"
    with StubServer() as stub:
        out = datamill(
            "calibrate", "--reference", "llmbar-mtbench", "--limit", "6",
            "--base-url", stub.url, "--model", "stub", "--out", figures,
        )  # fmt: skip
        calls = sum(stub.calls.values())
    assert out.returncode == 0, out.stderr
    assert "position bias rate" in out.stdout and "Cohen's kappa" in out.stdout
    assert calls == 12  # every pair in both orders
    result = json.loads(figures.read_text())
    assert result["items"] == 6 and result["reference"] == "llmbar-mtbench"
    assert result["position_bias"]["first"] == 1.0  # the stub always answers "A"
    assert result["no_verdict"] == 6 and result["spearman"] is None


def judged(label: int, judge_winner: str | None, rating: float, score: float) -> Record:
    pair = {"a": "candidate 0", "b": "candidate 1", "winner": judge_winner}
    pair |= {"forward": "A", "reverse": "B" if judge_winner == "candidate 0" else "A"}
    votes = [
        Annotation(annotator=a, question="preference", value={"chosen": label - 1, "pair": [0, 1]})
        for a in ("x", "y")
    ]
    votes.append(Annotation(annotator="x", question="rating", value=rating))
    record = chat(f"q{label}{judge_winner}{rating}", candidates=[Candidate(content="a")] * 2)
    record = record.model_copy(update={"annotations": votes})
    record = record.with_check("pairwise", CheckResult(details={"pairs": [pair]}))
    return record.with_check("judge", CheckResult(score=score))


def test_calibrate_on_a_users_annotated_dataset(tmp_path: Path) -> None:
    require("sklearn", "pip install 'datamill[quality]'")
    ds = Dataset.create(tmp_path / "annotated")
    ds.write(
        [
            judged(1, "candidate 0", 5, 4.5),
            judged(2, "candidate 0", 2, 2.0),
            judged(2, None, 1, 1.5),
            judged(1, "candidate 0", 4, 3.0),
        ],
        stage="import",
    )
    figures = tmp_path / "figures.json"
    out = datamill("calibrate", "--reference", ds.path, "--out", figures)
    assert out.returncode == 0, out.stderr
    result = json.loads(figures.read_text())
    assert result["pairwise"]["items"] == 4 and result["pairwise"]["accuracy"] == 0.5
    assert result["pairwise"]["no_verdict"] == 1
    assert result["ratings"]["spearman"] == 1.0
    assert result["ratings"]["pairwise_accuracy"] == 1.0
    empty = Dataset.create(tmp_path / "empty")
    empty.write([chat("q", "a")], stage="import")
    out = datamill("calibrate", "--reference", empty.path)
    assert out.returncode == 1 and "no record has both a judge result" in out.stderr
    out = datamill("calibrate", "--reference", "no-such-set")
    assert out.returncode == 1 and "neither a dataset nor one of" in out.stderr
