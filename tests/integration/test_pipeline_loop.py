"""The human stages of a pipeline on the stub server (fast mechanics): annotate pauses and
resumes, resolve reads the project's questions, adjudicate goes through reviewers, on
SQLite and PostgreSQL; a run killed with SIGKILL resumes without redoing finished steps."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from annotate_web import postgres_database

from support import require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from datamill.annotate import db, service  # noqa: E402
from datamill.errors import InputError  # noqa: E402
from datamill.llm.config import BackendConfig  # noqa: E402
from datamill.llm.stub_server import StubServer  # noqa: E402
from datamill.pipeline import load_pipeline, run_pipeline  # noqa: E402
from datamill.store import Dataset  # noqa: E402

RECIPES = Path(__file__).parents[2] / "recipes"


def recipe(tmp_path: Path, db_url: str | None = None) -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    shutil.copy(RECIPES / "policies" / "loop.yaml", tmp_path / "policies" / "loop.yaml")
    text = (RECIPES / "loop.yaml").read_text()
    if db_url:
        text = text.replace("# db: postgresql://user@host/db", f"db: {db_url}")
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    return path


@contextmanager
def store_url(kind: str, tmp_path: Path) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None  # the default: OUT/annotate.sqlite
    else:
        with postgres_database() as url:
            yield url


def answer(url: str, project: str, who: str, pick: Any) -> int:
    """``who`` answers every item left for them in ``project`` through the store."""
    database = db.connect(url)
    n = 0
    try:
        while True:
            with database.write() as s:
                user = service.get_user(s, who)
                lease = service.next_item(s, service.get_project(s, project), user)
                if lease is None:
                    return n
                job = service.item_for_annotator(s, lease)
                service.submit(s, lease, pick(job, n), service.Timing(seconds=20))
                n += 1
    finally:
        database.dispose()


def users(url: str) -> None:
    database = db.connect(url)
    with database.write() as s:
        project = service.get_project(s, "loop-review")
        for name, role in [("ann", "annotator"), ("ben", "annotator"), ("rev", "reviewer")]:
            user = service.create_user(s, name, "h", role)
            if role == "annotator":
                service.add_member(s, project, user)
    database.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_annotate_pauses_then_resolve_and_adjudicate_close_the_loop(
    kind: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with store_url(kind, tmp_path) as given, StubServer() as server:
        pipeline = load_pipeline(recipe(tmp_path, given))
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}

        def run() -> Any:
            return run_pipeline(pipeline, out, n=4, overrides=backend)

        first = run()
        assert first.paused and "0 of 4 items of project 'loop-review'" in first.paused
        url = re.search(r"datamill serve --db (\S+)`", first.paused)[1]  # type: ignore[index]
        if given:
            assert url.startswith("postgresql+psycopg://")
        users(url)
        assert [n for n, _ in run().steps] == ["annotate"]  # still paused, nothing pushed twice

        dataset = Dataset.open(out / "dataset")
        texts = {
            r.messages[0].content: [c.content for c in r.candidates]
            for r in dataset.records(first.version)
        }

        def prefer(index: Any, rate: bool = True) -> Any:
            """Choose the candidate ``index(n)`` of the record, wherever it is on screen."""

            def pick(job: dict[str, Any], n: int) -> dict[str, Any]:
                wanted = texts[job["messages"][0]["content"]][index(n)]
                shown = [c["content"] for c in job["candidates"]]
                pref = {"pref": {"choice": "AB"[shown.index(wanted)]}}
                return {**pref, "quality": {"accuracy": 4, "helpfulness": 3}} if rate else pref

            return pick

        # ann prefers every record's first candidate; ben too, except on his first item.
        assert answer(url, "loop-review", "ann", prefer(lambda n: 0)) == 4
        assert answer(url, "loop-review", "ben", prefer(lambda n: 1 if n == 0 else 0)) == 4
        second = run()
        assert [n for n, _ in second.steps] == ["annotate", "resolve", "adjudicate"]
        resolved = dataset.version(second.steps[1][1].version.version)  # type: ignore[union-attr]
        # resolve took the kinds from the project's questions, not from the answers' shapes
        kinds = {n: q["kind"] for n, q in resolved.params["questions"].items()}
        assert kinds == {"pref": "pairwise", "quality": "rubric", "note": "comment"}
        records = list(dataset.records(resolved.version))
        ties = [r for r in records if r.decisions["resolve"].outcome == "adjudicate"]
        assert len(ties) == 1
        assert (
            second.paused and "0 of 1 items of project 'loop-review-adjudication'" in second.paused
        )
        assert answer(url, "loop-review-adjudication", "rev", prefer(lambda n: 1, rate=False)) == 1
        third = run()
        assert third.paused is None
        final = {r.id: r for r in dataset.records(third.version)}
        for tie in ties:
            decision = final[tie.id].decisions["resolve"]
            assert (decision.outcome, decision.by) == ("adjudicated", "reviewer:rev")
        assert (out / "exports" / "preference.jsonl").exists() and (out / "report.html").exists()


def recorded(state: Path) -> bool:
    """Whether the runner has recorded a finished step."""
    try:
        return any(k != "_started" for k in json.loads(state.read_text()))
    except (OSError, ValueError):
        return False


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with StubServer(latency=0.05) as server:
        cmd = [
            *(sys.executable, "-m", "datamill", "run", str(recipe(tmp_path)), "--out", str(out)),
            *("--n", "6", "--backend", "openai", "--base-url", server.url, "--model", "stub"),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not recorded(out / "pipeline.json"):  # generation is done: kill it now
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        calls = sum(server.calls.values())
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert sum(server.calls.values()) == calls  # nothing generated twice
    steps = [line.split()[0] for line in rerun.stdout.splitlines() if line.startswith("  ")]
    assert "generate" not in steps and steps[-1] == "annotate"
    assert "paused: annotate: 0 of 6 items" in " ".join(rerun.stdout.split())
    dataset = Dataset.open(out / "dataset")
    assert [v.stage for v in dataset.versions].count("generate") == 1
    assert dataset.versions[-1].stage == "route"


def test_a_missing_project_without_questions_is_a_clear_error(tmp_path: Path) -> None:
    text = recipe(tmp_path).read_text()
    start, end = text.index("      questions:"), text.index("  - resolve")
    (tmp_path / "loop.yaml").write_text(text[:start] + text[end:])
    with StubServer() as server:
        backend = {"generator": BackendConfig(kind="openai", base_url=server.url, model="stub")}
        with pytest.raises(InputError, match="project 'loop-review' does not exist; give its"):
            run_pipeline(load_pipeline(tmp_path / "loop.yaml"), tmp_path / "out", 2, backend)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("  - annotate: {}\n", "annotate.project"),
        ("  - annotate: {project: '<script>'}\n", "annotate.project"),
        ("  - annotate: {project: p, overlap: 0}\n", "annotate.overlap"),
        ("  - resolve: {min_agreement: 2}\n", "resolve.min_agreement"),
        ("  - adjudicate: {project: p, reviewer: [x]}\n", "adjudicate.reviewer"),
    ],
)
def test_bad_human_stage_parameters_are_refused_before_anything_runs(
    tmp_path: Path, stage: str, message: str
) -> None:
    text = recipe(tmp_path).read_text()
    (tmp_path / "loop.yaml").write_text(text[: text.index("stages:")] + "stages:\n" + stage)
    with pytest.raises(InputError, match=re.escape(message)):
        load_pipeline(tmp_path / "loop.yaml")
