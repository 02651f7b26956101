"""Recipes with stages: generate → check → filter → export in one run, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamill.errors import DatamillError, InputError
from datamill.llm.config import BackendConfig
from datamill.llm.stub_server import StubServer
from datamill.pipeline import load_pipeline, run_pipeline
from datamill.store import Dataset

RECIPE = """\
name: loop
family: domain_instructions
n: 6
params: {domains: [legal, finance]}
stages:
  - check: {checks: [exact_dedup, {name: length, options: {min_words: 1}}]}
  - filter: {rules: [exact_dedup, length]}
  - route: {policy: policy.yaml}
  - export: {format: sft, out: exports/sft.jsonl}
"""
POLICY = (
    "name: p\nrules:\n  - {name: short, check: length, field: score, below: 1000, route: human}\n"
)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_a_recipe_runs_every_stage_then_resumes_without_redoing_them(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, RECIPE))
    out = tmp_path / "out"
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        first = run_pipeline(pipeline, out, overrides=backend)
        calls = sum(server.calls.values())
        again = run_pipeline(pipeline, out, overrides=backend)
        assert sum(server.calls.values()) == calls  # nothing generated twice
    assert [name for name, _ in first.steps] == ["generate", "check", "filter", "route", "export"]
    assert [name for name, _ in again.steps] == ["export"]  # files are always rewritten
    assert first.paused is None and first.version == again.version
    dataset = Dataset.open(out / "dataset")
    assert [v.stage for v in dataset.versions] == ["generate", "check", "filter", "route"]
    kept = list(dataset.records(first.version))
    assert kept and all({"exact_dedup", "length", "filter"} <= set(r.checks) for r in kept)
    assert {r.decisions["route"].outcome for r in kept} == {"human"}
    lines = (out / "exports" / "sft.jsonl").read_text().splitlines()
    assert len(lines) == len(kept)
    assert json.loads(lines[0])["messages"][-1]["role"] == "assistant"


def test_a_changed_stage_reruns_from_that_stage_on(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        run_pipeline(load_pipeline(write(tmp_path, RECIPE)), out, overrides=backend)
        changed = RECIPE.replace("rules: [exact_dedup, length]", "rules: [length]")
        second = run_pipeline(load_pipeline(write(tmp_path, changed)), out, overrides=backend)
    assert [name for name, _ in second.steps] == ["filter", "route", "export"]
    filtered = Dataset.open(out / "dataset").version(second.version - 1)
    assert filtered.stage == "filter" and filtered.params["rules"] == ["length"]


def test_an_edited_policy_or_calibration_file_reroutes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline = load_pipeline(write(tmp_path, RECIPE))
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        run_pipeline(pipeline, out, overrides=backend)
        (tmp_path / "policy.yaml").write_text(POLICY.replace("route: human", "route: reject"))
        edited = run_pipeline(pipeline, out, overrides=backend)
        calibration = {"reference": "mine", "items": 20, "kappa": 0.1, "accuracy": 0.5}
        (tmp_path / "cal.json").write_text(json.dumps(calibration))
        (tmp_path / "policy.yaml").write_text(POLICY + "calibration: cal.json\n")
        calibrated = run_pipeline(pipeline, out, overrides=backend)
        (tmp_path / "cal.json").write_text(json.dumps(calibration | {"kappa": 0.9}))
        recalibrated = run_pipeline(pipeline, out, overrides=backend)
        again = run_pipeline(pipeline, out, overrides=backend)
    for run in (edited, calibrated, recalibrated):
        assert [name for name, _ in run.steps] == ["route", "export"]
    assert [name for name, _ in again.steps] == ["export"]
    dataset = Dataset.open(out / "dataset")
    outcomes = {r.decisions["route"].outcome for r in dataset.records(edited.version)}
    assert outcomes == {"reject"}


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("  - nonsense: {}\n", "no stage 'nonsense'"),
        ("  - check: {}\n", "stages[0]: field 'check.checks'"),
        ("  - filter: {rules: [length], extra: 1}\n", "field 'filter.extra'"),
        ("  - check\n", "a mapping of one name"),
    ],
)
def test_bad_stages_are_refused_before_anything_runs(
    tmp_path: Path, stages: str, message: str
) -> None:
    text = RECIPE.split("stages:")[0] + "stages:\n" + stages
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_pipeline(write(tmp_path, text))


def test_a_version_committed_just_before_a_kill_is_taken_up_not_made_again(
    tmp_path: Path,
) -> None:
    pipeline = load_pipeline(write(tmp_path, RECIPE))
    out = tmp_path / "out"
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        first = run_pipeline(pipeline, out, overrides=backend)
        # As if killed after the route version was committed and before it was recorded:
        state = json.loads((out / "pipeline.json").read_text())
        route = next(k for k, v in state.items() if v == first.version)
        del state[route]
        state["_started"] = {route: "2000-01-01T00:00:00+00:00"}
        (out / "pipeline.json").write_text(json.dumps(state))
        again = run_pipeline(pipeline, out, overrides=backend)
    assert [name for name, _ in again.steps] == ["export"]
    assert again.version == first.version
    assert len(Dataset.open(out / "dataset").versions) == 4  # no second route version
    assert json.loads((out / "pipeline.json").read_text())[route] == first.version
    assert "_started" not in json.loads((out / "pipeline.json").read_text())


def test_diversity_and_report_stages_write_files_not_versions(tmp_path: Path) -> None:
    (tmp_path / "human.jsonl").write_text(
        "\n".join(
            json.dumps({"prompt": f"Question {i}?", "response": f"A <b>human</b> answer {i}."})
            for i in range(5)
        )
    )
    stages = (
        "  - check: {checks: [exact_dedup]}\n"
        "  - diversity: {out: div/generated.json}\n"
        "  - diversity: {reference: human.jsonl, out: div/human.json, threshold: 0.5}\n"
        "  - report: {out: report.html}\n"
    )
    text = RECIPE.split("stages:")[0] + "stages:\n" + stages
    out = tmp_path / "out"
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        result = run_pipeline(load_pipeline(write(tmp_path, text)), out, overrides=backend)
    assert [name for name, _ in result.steps][-3:] == ["diversity", "diversity", "report"]
    assert [v.stage for v in Dataset.open(out / "dataset").versions] == ["generate", "check"]
    generated = json.loads((out / "div" / "generated.json").read_text())
    assert generated["version"] == result.version and "comparison" in generated
    human = json.loads((out / "div" / "human.json").read_text())
    assert human["comparison"]["threshold"] == 0.5
    assert "warning" in result.steps[-2][1].summary or "no collapse" in result.steps[-2][1].summary
    html = (out / "report.html").read_text()
    assert html.startswith("<!") and "<script" not in html.lower()


def test_a_missing_reference_set_names_the_file(tmp_path: Path) -> None:
    text = RECIPE.split("stages:")[0] + "stages:\n  - diversity: {reference: nowhere.jsonl}\n"
    with StubServer() as server, pytest.raises(DatamillError, match=r"nowhere\.jsonl"):
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        run_pipeline(load_pipeline(write(tmp_path, text)), tmp_path / "out", overrides=backend)
