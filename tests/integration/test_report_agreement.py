"""The report's agreement table is resolve's: the same survey, with the question kinds of
the annotation project pulled into the version, so it matches ``datamill agreement``."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from datamill.cli import app
from datamill.quality.answers import agreement
from datamill.records import Annotation
from datamill.report import collect
from datamill.resolve import survey
from datamill.store import Dataset
from support import chat

# As the app stores them; `note` is a comment (never voted on) though its answers are short,
# and the rubric's scale is 1-5 though nobody answered 1 or 5.
QUESTIONS = [
    {"type": "rubric", "name": "quality", "scale": 5, "criteria": [{"name": "accuracy"}]},
    {"type": "comment", "name": "note"},
]


def _annotated(tmp_path: Path) -> Dataset:
    ds = Dataset.create(tmp_path / "ds")
    records = [chat(f"Question {i}?", f"Answer {i}.") for i in range(8)]
    ds.write(records, stage="import", parent=None)
    out = []
    for i, record in enumerate(ds.records()):
        answers = [
            Annotation(
                annotator=who,
                question=question,
                value=value,
                project="p",
                seconds=20.0,
            )
            for who, shift in (("ann", 0), ("ben", i % 2), ("cat", (i + 1) % 2))
            for question, value in (
                ("quality", {"accuracy": 2 + (i + shift) % 3}),
                ("note", "ok" if (i + shift) % 2 else "fine"),
            )
        ]
        out.append(record.model_copy(update={"annotations": answers}))
    ds.write(out, stage="annotate", params={"project": "p", "questions": QUESTIONS})
    return ds


def test_report_agreement_is_the_agreement_command(tmp_path: Path) -> None:
    ds = _annotated(tmp_path)
    expected = agreement(survey(ds))
    shown = collect(ds).agreement
    assert [row["question"] for row in shown] == [row.key for row in expected]
    assert [row["question"] for row in shown] == ["quality.accuracy"]  # no comment row
    for row, want in zip(shown, expected, strict=True):
        assert (row["level"], row["items"], row["answers"]) == (
            want.level,
            want.items,
            want.answers,
        )
        assert (row["alpha"], row["fleiss"], row["cohen"]) == (want.alpha, want.fleiss, want.cohen)
        flagged = [q.annotator for q in want.annotator_quality if q.flagged]
        assert row["flagged"] == flagged

    result = CliRunner().invoke(app, ["agreement", str(ds.path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    printed = re.findall(r"│ (\S+)\s+│ (?:interval|ordinal|nominal)", result.output)
    assert printed == [row["question"] for row in shown]
    alpha = f"{shown[0]['alpha']:.3f}"
    assert alpha in result.output
