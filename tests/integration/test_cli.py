"""The ``datamill`` command, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datamill import __version__
from datamill.llm.stub_server import StubServer
from datamill.store import Dataset


def datamill(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_version() -> None:
    out = datamill("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"datamill {__version__}"


def test_import_then_info_then_export(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": "What is 2+2?", "response": "4", "domain": "math"},
            {"instruction": "Translate", "input": "chat", "output": "cat"},
            {"messages": [{"role": "user", "content": "only a question"}]},
        ],
    )
    ds = tmp_path / "ds"
    assert datamill("import", data, "--out", ds).returncode == 0
    info = datamill("info", ds)
    assert info.returncode == 0
    assert "version 1: 3 records" in info.stdout
    assert "math 1" in info.stdout
    out = datamill("export", ds, "--out", tmp_path / "sft.jsonl")
    assert out.returncode == 0
    assert "1 have no assistant reply" in out.stdout
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert rows[0] == {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    }
    assert len(rows) == 2


def test_bad_row_is_one_line_error_and_nothing_is_written(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "ok", "response": "fine"}])
    with data.open("a") as f:
        f.write('{"prompt": "broken", \n')
    ds = tmp_path / "ds"
    datamill("import", data, "--out", ds)
    before = Dataset.open(ds).versions
    out = datamill("import", data, "--out", ds)
    assert out.returncode == 1
    assert out.stderr.strip().startswith(f"error: {data}:2:")
    assert len(out.stderr.strip().splitlines()) == 1  # no traceback
    assert Dataset.open(ds).versions == before  # nothing half-written


def test_quarantine_keeps_good_rows_and_says_where_the_bad_ones_went(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "in.jsonl",
        [{"prompt": "a", "response": "b"}, {"prompt": 3}, {"prompt": "c", "response": "d"}],
    )
    ds = tmp_path / "ds"
    out = datamill("import", data, "--out", ds, "--on-error", "quarantine")
    assert out.returncode == 0, out.stderr
    version = Dataset.open(ds).version()
    assert version.counts == {"records": 2, "rejected": 1}
    rejects = Path(str(version.params["rejects"]))
    assert str(rejects) in out.stdout.replace("\n", "")
    [reject] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert (reject["line"], reject["field"]) == (2, "prompt")


def test_info_on_something_that_is_not_a_dataset(tmp_path: Path) -> None:
    out = datamill("info", tmp_path)
    assert out.returncode == 1
    assert "not a datamill dataset" in out.stderr


def test_generate_through_a_server_then_again_from_the_cache(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: t\nfamily: domain_instructions\nn: 6\nparams: {domains: [legal, finance]}\n"
    )
    ds = tmp_path / "ds"
    with StubServer() as server:
        args = ("generate", recipe, "--out", ds, "--base-url", server.url, "--model", "stub")
        first = datamill(*args)
        assert first.returncode == 0, first.stderr
        calls = sum(server.calls.values())
        second = datamill(*args)
        assert second.returncode == 0, second.stderr
        assert sum(server.calls.values()) == calls == 12  # a question and an answer each
    dataset = Dataset.open(ds)
    v1, v2 = dataset.versions
    assert v1.counts["records"] == v2.counts["records"] == 6
    assert v2.stats["llm"]["generator"]["cached"] == 12  # type: ignore[index]
    assert [r.model_dump(exclude={"provenance"}) for r in dataset.records(1)] == [
        r.model_dump(exclude={"provenance"}) for r in dataset.records(2)
    ]
    record = next(dataset.records())
    assert record.provenance.backend == "openai" and record.provenance.model == "stub"
    assert record.provenance.usage is not None and record.provenance.usage.calls == 2


def test_generation_failures_are_counted_not_fatal(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: t\nfamily: domain_instructions\nn: 4\nparams: {domains: [legal]}\n")
    with StubServer() as server:
        server.fail("reply ", "400")  # answer calls carry the stub's question: refuse one
        out = datamill(
            "generate", recipe, "--out", tmp_path / "ds", "--base-url", server.url, "--model", "m"
        )
    assert out.returncode == 0, out.stderr
    version = Dataset.open(tmp_path / "ds").version()
    assert version.counts == {"records": 3, "failed": 1}
    assert version.stats["failures"] == {"http_400": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nfamily: nope\n", "no task family 'nope'"),
        (
            "name: t\nfamily: domain_instructions\nparams: {temperature: hot}\n",
            "params.temperature",
        ),
        ("name: t\nfamily: domain_instructions\nn: 0\n", "field 'n'"),
        ("name: t\nfamily: [unclosed\n", "invalid YAML"),
        ("name: t\nfamily: domain_instructions\nparams: {domains: [atlantis]}\n", "atlantis"),
    ],
)
def test_bad_recipes_are_named_errors(tmp_path: Path, text: str, expected: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    out = datamill(
        "generate", recipe, "--out", tmp_path / "ds", "--base-url", "http://x", "--model", "m"
    )
    assert out.returncode == 1
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_check_then_filter_loses_nothing(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Explain recursion.", "response": "A function that calls itself until done."},
        {"prompt": "explain  recursion", "response": "Same question asked again, answered."},
        {"prompt": "Say hi.", "response": "hi"},
        {"prompt": "<script>alert(1)</script>", "response": "That is <b>HTML</b>, kept as text."},
    ]
    ds = tmp_path / "ds"
    assert datamill("import", write_jsonl(tmp_path / "in.jsonl", rows), "--out", ds).returncode == 0
    out = datamill("check", ds, "--checks", "exact_dedup,length", "--option", "length.min_words=2")
    assert out.returncode == 0, out.stderr
    assert "failed: exact_dedup 1, length 1" in out.stdout
    out = datamill("filter", ds, "--rule", "exact_dedup", "--rule", "length")
    assert out.returncode == 0, out.stderr
    kept = list(Dataset.open(ds).records())
    rejected = list(Dataset.open(ds / "rejected").records())
    assert [r.prompt[0].content for r in kept] == [rows[0]["prompt"], rows[3]["prompt"]]
    assert {r.id for r in kept} | {r.id for r in rejected} == {
        r.id for r in Dataset.open(ds).records(1)
    }
    reasons = sorted(r.checks["filter"].details["reasons"] for r in rejected)  # type: ignore[type-var]
    assert reasons == [["exact_dedup: failed"], ["length: failed"]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--checks", "nope"), "no check 'nope'"),
        (("--checks", "length", "--option", "length.minwords=2"), "no option 'minwords'"),
        (("--checks", "length", "--option", "exact_dedup.on=prompt"), "not in --checks"),
        (("--checks", "length", "--option", "length=2"), "CHECK.OPTION=VALUE"),
    ],
)
def test_bad_check_arguments(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    ds = tmp_path / "ds"
    datamill("import", write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a"}]), "--out", ds)
    out = datamill("check", ds, *args)
    assert out.returncode == 1
    assert expected in out.stderr


def test_demo_generates_three_families_checks_routes_and_exports(tmp_path: Path) -> None:
    with StubServer() as server:
        args = ("demo", "--n", "8", "--out", tmp_path, "--base-url", server.url, "--model", "stub")
        out = datamill(*args)
    assert out.returncode == 0, out.stderr
    dataset = Dataset.open(tmp_path / "dataset")
    stages = [(v.version, v.stage, v.parent) for v in dataset.versions]
    assert stages == [
        (1, "generate", None),
        (2, "generate", 1),
        (3, "generate", 2),
        (4, "check", 3),
        (5, "route", 4),
    ]
    records = list(dataset.records(5))
    assert [r.task for r in records] == ["instruction"] * 4 + ["math_cot"] * 2 + ["support"] * 2
    for family in ("domain_instructions", "math_cot", "support"):
        assert family in out.stdout
    assert "→ version 4" in out.stdout and "→ version 5" in out.stdout
    # Healthcare and legal records go to experts; only accepted, passing records export.
    route = {r.domain: r.decisions["route"] for r in records}
    assert route["healthcare"].outcome == "human"
    assert route["healthcare"].details["expertise"] == ["clinician"]
    rows = (tmp_path / "sft.jsonl").read_text().splitlines()
    accepted = [
        r
        for r in records
        if r.decisions["route"].outcome == "accept"
        and all(c.passed is not False for c in r.checks.values())
    ]
    assert len(rows) == len(accepted) and f"exported   {len(rows)} SFT examples" in out.stdout


def test_check_list_needs_no_dataset_but_a_check_run_does(tmp_path: Path) -> None:
    listed = datamill("check", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "exact_dedup" in listed.stdout and "near_dup" in listed.stdout
    run = datamill("check", "--checks", "length")
    assert run.returncode == 1
    assert "name the dataset to check" in run.stderr
