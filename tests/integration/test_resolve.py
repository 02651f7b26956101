"""The resolve stage end to end on real dataset versions (store.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from datamill.errors import DatamillError, InputError
from datamill.quality.questions import Question
from datamill.records import Annotation, Candidate, Record
from datamill.resolve import (
    Settings,
    Verdict,
    adjudicate,
    adjudicate_dataset,
    adjudication_queue,
    resolve_dataset,
    survey,
)
from datamill.store import Dataset
from support import chat, require

QUESTIONS = {
    "safe": Question(name="safe", kind="label", labels=["safe", "unsafe"]),
    "quality": Question(name="quality", kind="rating", scale=(1, 5)),
    "better": Question(name="better", kind="pairwise"),
}


def annotated(i: int, answers: dict[str, dict[str, object]], **fields: object) -> Record:
    record = chat(f"question {i}", f"answer {i}", **fields)
    annotations = [
        Annotation(annotator=who, question=q, value=v, project="p", seconds=12.0)  # type: ignore[arg-type]
        for q, by in answers.items()
        for who, v in by.items()
    ]
    candidates = [Candidate(content=f"A{i}", model="m1"), Candidate(content=f"B{i}", model="m2")]
    return record.model_copy(update={"annotations": annotations, "candidates": candidates})


def pair(chosen: int | None) -> dict[str, object]:
    """A pairwise answer as the annotation app stores it."""
    if chosen is None:
        return {"chosen": None, "rejected": None, "tie": True, "strength": None, "pair": [0, 1]}
    return {"chosen": chosen, "rejected": 1 - chosen, "tie": False, "strength": 2, "pair": [1, 0]}


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    ds = Dataset.create(tmp_path / "ds")
    records = [
        # unanimous
        annotated(
            0, {"safe": {"a": "safe", "b": "safe", "c": "safe"}, "quality": {"a": 4, "b": 5}}
        ),
        # a two-against-one label, ratings one point apart
        annotated(1, {"safe": {"a": "unsafe", "b": "unsafe", "c": "safe"}, "quality": {"a": 2}}),
        # a tie → adjudication
        annotated(2, {"safe": {"a": "safe", "b": "unsafe"}}),
        # ratings across the whole scale → adjudication
        annotated(3, {"quality": {"a": 1, "b": 5, "c": 3}}),
        # pairwise in the app's stored form
        annotated(4, {"better": {"a": pair(1), "b": pair(1), "c": pair(None)}}),
        chat("no annotations here", "none"),
    ]
    ds.write(records, stage="annotate")
    return ds


def test_resolve_writes_decisions_and_an_adjudication_queue(dataset: Dataset) -> None:
    require("crowdkit", "pip install --no-deps crowd-kit")
    summary = resolve_dataset(dataset, questions=QUESTIONS)
    assert (summary.resolved, summary.adjudicate, summary.unannotated) == (3, 2, 1)
    version = dataset.version()
    assert version.stage == "resolve" and version.parent == 1
    assert version.counts == {"records": 6, "resolved": 3, "adjudicate": 2, "adjudicated": 0}
    records = list(dataset.records())
    assert len(records) == 6 and "resolve" not in records[5].decisions

    first = records[0].decisions["resolve"]
    assert first.outcome == "resolved" and first.by == "majority+median"
    assert first.details["annotators"] == 3
    safe = first.details["questions"]["safe"]  # type: ignore[index, call-overload]
    assert safe["value"] == "safe" and safe["agreement"] == 1.0 and safe["annotators"] == 3
    assert first.details["questions"]["quality"]["value"] == 4.5  # type: ignore[index, call-overload]

    second = records[1].decisions["resolve"].details["questions"]  # type: ignore[index]
    assert second["safe"]["value"] == "unsafe"  # type: ignore[index, call-overload]
    assert second["quality"]["reason"] == "one annotator"  # type: ignore[index, call-overload]

    tie = records[2].decisions["resolve"]
    assert tie.outcome == "adjudicate" and "tie between 'safe' and 'unsafe'" in tie.reason
    spread = records[3].decisions["resolve"]
    assert spread.outcome == "adjudicate" and "quality: agreement 0.00" in spread.reason

    better = records[4].decisions["resolve"].details["questions"]["better"]  # type: ignore[index, call-overload]
    assert better["value"]["chosen"] == 1 and better["agreement"] == pytest.approx(2 / 3)  # type: ignore[index]

    queue = list(adjudication_queue(dataset.records()))
    assert [r.id for r in queue] == [records[2].id, records[3].id]
    # Two annotators preferred m2's candidate over m1's; the tie compares nothing.
    assert [(m.name, m.wins, m.losses) for m in summary.models] == [("m2", 2, 0), ("m1", 0, 2)]
    assert version.stats["models"]["m2"]["wins"] == 2  # type: ignore[index, call-overload]
    by_key = {t.key: t for t in summary.agreement}
    assert set(by_key) == {"safe", "quality", "better"}
    assert by_key["safe"].items == 3 and by_key["safe"].alpha is not None


def test_adjudicate_records_the_reviewer_and_what_the_crowd_said(dataset: Dataset) -> None:
    resolve_dataset(dataset, questions=QUESTIONS)
    tie = next(adjudication_queue(dataset.records()))
    done = adjudicate(tie, "rita", "unsafe", note="mentions a weapon")
    decision = done.decisions["resolve"]
    assert decision.outcome == "adjudicated" and decision.by == "reviewer:rita"
    assert decision.reason == "mentions a weapon"
    safe = decision.details["questions"]["safe"]  # type: ignore[index, call-overload]
    assert safe["value"] == "unsafe" and safe["status"] == "adjudicated"
    assert safe["reviewer"] == "rita" and safe["aggregated"] is None
    assert decision.details["previous"]["outcome"] == "adjudicate"  # type: ignore[index, call-overload]
    assert tie.decisions["resolve"].outcome == "adjudicate"  # the input is not edited

    with pytest.raises(DatamillError, match=f"record {tie.id}: question 'safe'.*not one of"):
        adjudicate(tie, "rita", "dangerous", questions=QUESTIONS)
    with pytest.raises(DatamillError, match="must be a string or integer"):
        adjudicate(tie, "rita", ["unsafe"])  # without the questions, the kind is still checked
    with pytest.raises(DatamillError, match="reviewer's name"):
        adjudicate(tie, " ", "unsafe")
    with pytest.raises(DatamillError, match="not resolved yet"):
        adjudicate(chat("x"), "rita", "safe")
    # A reviewer may overrule a resolved question too, naming it.
    resolved = next(dataset.records())
    overruled = adjudicate(resolved, "rita", {"quality": 2})
    quality = overruled.decisions["resolve"].details["questions"]["quality"]  # type: ignore[index, call-overload]
    assert quality["value"] == 2 and quality["aggregated"] == 4.5  # type: ignore[index]
    # A second reviewer's word replaces the first's; the crowd's answer is still kept.
    again = adjudicate(overruled, "sam", {"quality": 3}).decisions["resolve"]
    assert again.by == "reviewer:sam" and again.details["previous"]["by"] == "reviewer:rita"  # type: ignore[index, call-overload]
    assert again.details["questions"]["quality"]["aggregated"] == 4.5  # type: ignore[index, call-overload]


def test_adjudicate_dataset_writes_a_version_and_refuses_unknown_ids(dataset: Dataset) -> None:
    resolve_dataset(dataset, questions=QUESTIONS)
    queue = list(adjudication_queue(dataset.records()))
    before = len(dataset.versions)
    with pytest.raises(DatamillError, match="no record nope"):
        adjudicate_dataset(dataset, {"nope": Verdict("rita", "safe")})
    with pytest.raises(DatamillError, match="not one of"):  # labels from the resolve version
        adjudicate_dataset(dataset, {queue[0].id: Verdict("rita", "maybe")})
    assert len(dataset.versions) == before
    version = adjudicate_dataset(
        dataset,
        {queue[0].id: Verdict("rita", "safe"), queue[1].id: Verdict("sam", 3, "middle")},
    )
    assert version.stage == "adjudicate" and version.counts["adjudicated"] == 2
    assert list(adjudication_queue(dataset.records())) == []
    final = {r.id: r.decisions["resolve"] for r in dataset.records() if "resolve" in r.decisions}
    assert final[queue[1].id].by == "reviewer:sam"
    # Resolving again keeps what reviewers decided.
    again = resolve_dataset(dataset, questions=QUESTIONS)
    assert (again.resolved, again.adjudicate, again.adjudicated) == (3, 0, 2)
    final = {r.id: r.decisions["resolve"] for r in dataset.records() if "resolve" in r.decisions}
    assert final[queue[1].id].outcome == "adjudicated" and final[queue[1].id].by == "reviewer:sam"
    assert final[queue[1].id].details["questions"]["quality"]["value"] == 3  # type: ignore[index, call-overload]


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"question": "quality", "value": "great"}, "must be a number"),
        ({"question": "quality", "value": 11}, "outside the scale 1–5"),
        ({"question": "safe", "value": ["safe"]}, "must be a string or integer"),
        ({"question": "colour", "value": "red"}, "unknown question 'colour'"),
    ],
)
def test_malformed_annotations_name_the_record_and_write_nothing(
    tmp_path: Path, annotation: dict[str, object], message: str
) -> None:
    ds = Dataset.create(tmp_path / "ds")
    good = annotated(0, {"safe": {"a": "safe"}})
    bad = chat("bad one", "reply")
    bad = bad.model_copy(
        update={"annotations": [Annotation(annotator="x", **annotation)]}  # type: ignore[arg-type]
    )
    ds.write([good, annotated(1, {"quality": {"a": 3}}), bad], stage="annotate")
    with pytest.raises(InputError) as e:
        resolve_dataset(ds, questions=QUESTIONS)
    assert f"record {bad.id}" in str(e.value) and message in str(e.value)
    assert "annotations[0]" in str(e.value) and "version 1" in str(e.value)
    assert len(ds.versions) == 1  # nothing written
    assert sorted(p.name for p in (ds.path / "shards").iterdir()) == sorted(
        Path(s).name for s in ds.version().shards
    )


def test_gold_answers_grade_each_annotator(dataset: Dataset) -> None:
    from datamill.quality.answers import agreement

    ids = [r.id for r in dataset.records()]
    gold = {ids[0]: {"safe": "safe"}, ids[1]: {"safe": "safe", "unasked": 1}}
    found = survey(dataset, questions=QUESTIONS, gold=gold)
    safe = next(t for t in agreement(found) if t.key == "safe")
    graded = {q.annotator: (q.gold_items, q.gold_accuracy) for q in safe.annotator_quality}
    assert graded == {"a": (2, 0.5), "b": (2, 0.5), "c": (2, 1.0)}
    with pytest.raises(InputError, match=f"metadata.gold.safe.*record {ids[0]}.*not one of"):
        survey(dataset, questions=QUESTIONS, gold={ids[0]: {"safe": "dunno"}})


def test_without_a_questions_file_kinds_are_inferred_and_must_stay_consistent(
    tmp_path: Path,
) -> None:
    ds = Dataset.create(tmp_path / "ds")
    ds.write(
        [
            annotated(0, {"score": {"a": 4, "b": 4}, "note": {"a": "short"}}),
            annotated(1, {"note": {"a": "a long\nmulti-line comment", "b": "ok"}}),
        ],
        stage="annotate",
    )
    found = survey(ds)
    assert found.questions["score"].kind == "rating"
    assert found.questions["note"].kind == "text"  # widened from label by the long answer
    assert "note" not in found.tables
    ds.write([annotated(2, {"score": {"a": 4}}), annotated(3, {"score": {"a": "high"}})], "x")
    with pytest.raises(InputError, match="must be a number"):
        survey(ds)


def test_every_question_kind_resolves(tmp_path: Path) -> None:
    record = chat("Tell me about cats.", "Cats are mammals that bark.")
    hallucination = {"message": 1, "start": 20, "end": 27, "label": "hallucination"}
    answers = {
        "rubric": {"a": {"accuracy": 2, "tone": 4}, "b": {"accuracy": 1, "tone": 4}},
        "rank": {"a": [1, 0, 2], "b": [1, 2, 0]},
        "tags": {"a": ["humour"], "b": ["humour", "sarcasm"], "c": ["humour"]},
        "rewrite": {"a": {"text": "Cats are mammals.", "diff": ""}, "b": "Cats are mammals!"},
        "spans": {"a": [hallucination], "b": [hallucination], "c": []},
        "comment": {"a": "<script>alert(1)</script>", "b": "fine"},
    }
    record = record.model_copy(
        update={
            "annotations": [
                Annotation(annotator=who, question=q, value=v)  # type: ignore[arg-type]
                for q, by in answers.items()
                for who, v in by.items()
            ]
        }
    )
    ds = Dataset.create(tmp_path / "ds")
    ds.write([record], stage="annotate")
    questions = {
        "rubric": Question(name="rubric", kind="rubric", scale=(1, 5)),
        "rank": Question(name="rank", kind="ranking"),
        "tags": Question(name="tags", kind="multilabel"),
        "rewrite": Question(name="rewrite", kind="text"),
        "spans": Question(name="spans", kind="spans"),
        "comment": Question(name="comment", kind="comment"),
    }
    resolve_dataset(ds, questions=questions)
    decision = next(ds.records()).decisions["resolve"]
    got = decision.details["questions"]
    assert got["rubric"]["value"] == {"accuracy": 1.5, "tone": 4.0}  # type: ignore[index, call-overload]
    assert got["rank"]["value"][0] == 1 and got["rank"]["method"] == "bradley_terry"  # type: ignore[index, call-overload]
    assert got["tags"]["value"] == ["humour"]  # type: ignore[index, call-overload]
    assert got["rewrite"]["method"] == "medoid"  # type: ignore[index, call-overload]
    assert got["spans"]["value"] == [hallucination]  # type: ignore[index, call-overload]
    assert got["comment"]["value"] == ["<script>alert(1)</script>", "fine"]  # type: ignore[index, call-overload]
    assert json.loads(json.dumps(decision.details)) == decision.details


def test_an_annotators_latest_answer_counts(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    record = chat("q", "a").model_copy(
        update={
            "annotations": [
                Annotation(annotator="a", question="safe", value="safe", created_at=late),
                Annotation(annotator="a", question="safe", value="unsafe", created_at=early),
                Annotation(annotator="b", question="safe", value="safe"),
            ]
        }
    )
    ds = Dataset.create(tmp_path / "ds")
    ds.write([record], stage="annotate")
    resolve_dataset(ds, questions=QUESTIONS)
    safe = next(ds.records()).decisions["resolve"].details["questions"]["safe"]  # type: ignore[index, call-overload]
    assert (safe["value"], safe["annotators"], safe["agreement"]) == ("safe", 2, 1.0)  # type: ignore[index]


def test_label_sets_get_one_agreement_table_per_tag(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    ds.write(
        [
            annotated(0, {"tags": {"a": ["humour"], "b": ["humour", "sarcasm"], "c": []}}),
            annotated(1, {"tags": {"a": [], "b": [], "c": ["sarcasm"]}}),
        ],
        stage="annotate",
    )
    found = survey(ds, questions={"tags": Question(name="tags", kind="multilabel")})
    assert sorted(found.tables) == ["tags[humour]", "tags[sarcasm]"]
    humour = found.tables["tags[humour]"]
    assert len(humour) == 6  # every answer, the empty ones too
    assert sorted(zip(humour.items, map(humour.label, humour.values), strict=True)) == [
        (0, False),
        (0, True),
        (0, True),
        (1, False),
        (1, False),
        (1, False),
    ]


def test_dawid_skene_runs_across_records_in_two_passes(tmp_path: Path) -> None:
    require("crowdkit", "pip install --no-deps crowd-kit")
    import numpy as np

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 120)
    accuracy = {"careful1": 0.95, "careful2": 0.95, "sloppy1": 0.3, "sloppy2": 0.3, "sloppy3": 0.3}
    records = []
    for i, t in enumerate(truth):
        labels = {}
        for who, acc in accuracy.items():
            right = rng.random() < acc
            labels[who] = ["safe", "unsafe"][int(t if right else 1 - t)]
        records.append(annotated(i, {"safe": labels}))
    ds = Dataset.create(tmp_path / "ds")
    ds.write(records, stage="annotate")
    by_method = {}
    for method in ("majority", "dawid_skene"):
        settings = Settings(method=method, min_agreement=0.0)  # type: ignore[arg-type]
        resolve_dataset(ds, version=1, questions=QUESTIONS, settings=settings)
        values = [
            r.decisions["resolve"].details["questions"]["safe"]["value"]  # type: ignore[index, call-overload]
            for r in ds.records()
        ]
        by_method[method] = np.mean(
            [v == ["safe", "unsafe"][t] for v, t in zip(values, truth, strict=True)]
        )
        assert next(ds.records()).decisions["resolve"].by == method
    assert by_method["dawid_skene"] > by_method["majority"] + 0.1
    auto = resolve_dataset(ds, version=1, questions=QUESTIONS, settings=Settings(ds_min_items=100))
    assert auto.methods["safe"] == "dawid_skene"


def test_pass_one_keeps_a_few_bytes_per_answer_not_the_records(tmp_path: Path) -> None:
    """Between the passes only the compact answer tables stay in memory, so resolving a
    version costs memory in answers (bytes each), never in records (kilobytes each)."""
    ds = Dataset.create(tmp_path / "ds")
    with ds.writer("annotate") as w:
        for i in range(3000):
            w.write(annotated(i, {"quality": {"a": i % 5 + 1, "b": (i + 1) % 5 + 1}}))
    survey(ds, questions=QUESTIONS)  # warm up: imports and caches are not the answers
    tracemalloc.start()
    found = survey(ds, questions=QUESTIONS)
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(found.tables["quality"]) == 6000
    assert kept / 6000 < 48, kept


def test_questions_come_from_the_annotation_projects_pulled_into_the_lineage(
    tmp_path: Path,
) -> None:
    from datamill.annotate.questions import parse_questions

    configs = [
        q.model_dump(mode="json")
        for q in parse_questions(
            [
                {"type": "label", "name": "safe", "options": ["safe", "unsafe"]},
                {"type": "write", "name": "better"},
            ]
        )
    ]
    ds = Dataset.create(tmp_path / "ds")
    answers = {"safe": {"a": "safe", "b": "safe"}, "better": {"a": "ok", "b": "okay"}}
    ds.write([annotated(0, answers)], stage="annotate", params={"questions": configs})
    resolve_dataset(ds)
    got = next(ds.records()).decisions["resolve"].details["questions"]
    # A short written answer is still a text, as the project says.
    assert got["better"]["method"] == "medoid"  # type: ignore[index, call-overload]
    bad = annotated(1, {"safe": {"a": "maybe"}})
    ds.write([bad], stage="annotate", params={"questions": configs})
    with pytest.raises(InputError, match="not one of"):
        resolve_dataset(ds)


def datamill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datamill", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_commands_as_a_user_runs_them(dataset: Dataset, tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(
        "safe: {kind: label, labels: ['safe', 'unsafe']}\n"
        "quality: {kind: rating, scale: [1, 5]}\n"
        "better: pairwise\n"
    )
    out = datamill("resolve", dataset.path, "--questions", questions, "--method", "majority")
    assert out.returncode == 0, out.stderr
    assert "resolved 3, sent to adjudication 2, without annotations 1 → version 2" in out.stdout
    assert "Krippendorff" in out.stdout and "safe" in out.stdout

    queue = datamill("adjudicate", dataset.path)
    assert queue.returncode == 0 and "2 record(s) waiting for a reviewer" in queue.stdout
    first, second = (line.split()[0] for line in queue.stdout.splitlines()[:2])
    done = datamill("adjudicate", dataset.path, first, "--reviewer", "rita", "--value", "unsafe")
    assert done.returncode == 0, done.stderr
    assert "rita decided record" in done.stdout and "version 3" in done.stdout
    bad = datamill("adjudicate", dataset.path, second, "--reviewer", "rita", "--value", "[1]")
    assert bad.returncode == 1 and "must be a number" in bad.stderr
    assert "Traceback" not in bad.stderr
    again = datamill("adjudicate", dataset.path, first, "--reviewer", "rita", "--value", "safe")
    assert again.returncode == 1 and "open: none" in again.stderr

    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps({second: {"quality": 3}}))
    agreement = datamill("agreement", dataset.path, "--questions", questions, "--gold", gold)
    assert agreement.returncode == 0, agreement.stderr
    assert "annotators" in agreement.stdout and "Fleiss" in agreement.stdout
    # Gold says 3; a said 1, b 5, c 3: only c is within a point of it.
    lines = agreement.stdout.splitlines()
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line[:1] == "│"]
    gold_accuracy = {row[0]: row[3] for row in cells}
    assert [gold_accuracy[a] for a in "abc"] == ["0.000", "0.000", "1.000"]

    hostile = Dataset.create(tmp_path / "hostile")
    name = "[red]<i>x</i>"
    hostile.write([annotated(0, {"safe": {name: "safe", "b": "safe"}})], stage="annotate")
    shown = datamill("agreement", hostile.path, "--questions", questions)
    assert shown.returncode == 0 and name in shown.stdout  # text, not taken as markup

    broken = tmp_path / "broken.yaml"
    broken.write_text("safe: colour\n")
    out = datamill("resolve", dataset.path, "--questions", broken)
    assert out.returncode == 1 and str(broken) in out.stderr.replace("\n", "")
