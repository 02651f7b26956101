"""The report from a real dataset: checks, routing, annotations and resolving have run on it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datamill.checks import make_check
from datamill.checks.stage import check_dataset
from datamill.cli import app
from datamill.ledger import Rates
from datamill.records import Annotation, CheckResult, Provenance, Record, Usage
from datamill.report import collect, render_html
from datamill.resolve import resolve_dataset
from datamill.route.policy import load_policy
from datamill.route.stage import route_dataset
from datamill.store import Dataset
from support import chat

POLICY = Path(__file__).parents[2] / "recipes" / "policies" / "default.yaml"
HOSTILE = '<script>alert("owned")</script><img src="https://evil.example/x.png">'
TOPICS = ["billing", "shipping", "returns", "privacy"]


def generated(i: int) -> Record:
    reply = f"Answer {i}: you can change your {TOPICS[i % 4]} settings under account {i}."
    if i == 3:
        reply = HOSTILE
    record = chat(f"How do I fix problem {i} with {TOPICS[i % 4]}?", reply, domain="support")
    usage = Usage(calls=1, prompt_tokens=40, completion_tokens=30, seconds=0.5)
    if i % 2 == 0:
        usage = usage.model_copy(update={"cost": 0.001})
    provenance = Provenance(source="synthetic", model="smol", recipe="support", usage=usage)
    judge = CheckResult(score=1 + (i * 7) % 5, passed=(i * 7) % 5 >= 2)  # an earlier judge run
    return record.model_copy(
        update={
            "provenance": provenance,
            "metadata": {"topic": HOSTILE if i == 3 else TOPICS[i % 4]},
            "checks": {"judge": judge},
        }
    )


def annotate(record: Record, i: int) -> Record:
    """Three simulated annotators rate each record; carol disagrees on every third."""
    judge = record.checks["judge"].score or 3
    answers = []
    for who, seconds in (("alice", 40.0), ("bob", 55.0), ("carol", None)):
        rating = int(judge) if who != "carol" or i % 3 else 6 - int(judge)
        answers.append(
            Annotation(
                annotator=who,
                question="quality",
                value=rating,
                project="review",
                seconds=seconds,
                metadata={"response_id": f"{record.id}-{who}"},
            )
        )
    return record.model_copy(update={"annotations": answers})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    ds = Dataset.create(tmp_path_factory.mktemp("report") / "support")
    human = [chat(f"Human question {i}?", f"A person wrote reply {i}.") for i in range(6)]
    ds.write([*(generated(i) for i in range(30)), *human], stage="generate", parent=None)
    checks = [make_check("exact_dedup"), make_check("length"), make_check("pii")]
    specs = [{"name": c.name, "options": {}} for c in checks]
    asyncio.run(check_dataset(ds, checks, specs))
    route_dataset(ds, load_policy(POLICY))
    ds.write(
        (annotate(r, i) if i < 20 else r for i, r in enumerate(ds.records())), stage="annotate"
    )
    resolve_dataset(ds)
    return ds


@pytest.fixture(scope="module")
def html(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> str:
    rates = tmp_path_factory.mktemp("rates") / "rates.yaml"
    rates.write_text("groups:\n  staff: {hourly: 36, annotators: [alice, bob]}\n")
    data = collect(dataset, rates=Rates.load(rates))
    assert data.records == 36
    assert set(data.decisions) == {"route", "resolve"}
    assert data.agreement and data.agreement[0]["question"] == "quality"
    assert data.calibration and data.calibration[0]["items"] == 20.0
    assert [v.stage for v, _ in data.diversity] == [
        "generate",
        "check",
        "route",
        "annotate",
        "resolve",
    ]
    return render_html(data)


def test_report_shows_every_part(html: str) -> None:
    for part in (
        "Versions",
        "Checks",
        "Decisions",
        "Annotations",
        "Agreement",
        "Judge calibration",
        "Diversity across versions",
        "Ledger",
        "<svg",
    ):
        assert part in html, part
    assert "smol / support" in html and "review / staff" in html and "review / ungrouped" in html
    assert "unknown" in html  # carol has no time and no rate: not zero


def test_report_is_offline_and_escapes_record_text(html: str) -> None:
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, re.I)
    assert not [u for u in links if re.match(r"(?:https?:)?//", u)], links
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html  # the topic, escaped


def test_cli_report_and_ledger(dataset: Dataset, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r" / "report.html"
    result = runner.invoke(app, ["report", str(dataset.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")
    assert "report →" in result.output and "ledger" in result.output
    result = runner.invoke(app, ["ledger", str(dataset.path)])
    assert result.exit_code == 0, result.output
    assert "synthetic:" in result.output and "human:" in result.output


def test_report_of_fresh_data_degrades_gracefully(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "fresh")
    records = [chat("q", f"reply {i}", metadata={"topic": HOSTILE}) for i in range(3)]
    ds.write(records, stage="import", parent=None)
    page = render_html(collect(ds))
    assert "No checks have run" in page and "No human annotations yet" in page
    assert "&lt;script&gt;" in page and "<script" not in page.lower()
