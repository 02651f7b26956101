"""Commands on human answers: resolve, agreement, adjudicate."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datamill.cli.common import DatasetArg, VersionOpt, app, console
from datamill.errors import DatamillError

if TYPE_CHECKING:
    from datamill.quality.answers import TableAgreement
    from datamill.quality.consensus import Strength
    from datamill.quality.questions import Question

QuestionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--questions",
        "-q",
        help="YAML/JSON file of questions and their kinds (default: inferred from answers).",
    ),
]


class MethodChoice(StrEnum):
    auto = "auto"
    majority = "majority"
    dawid_skene = "dawid_skene"


class RobustChoice(StrEnum):
    median = "median"
    trimmed_mean = "trimmed_mean"


def _questions(path: Path | None) -> dict[str, Question] | None:
    from datamill.quality.questions import load_questions

    return load_questions(path) if path else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _agreement_table(rows: list[TableAgreement], methods: dict[str, str] | None = None) -> Table:
    table = Table(
        title="agreement per question",
        caption="items: with two or more answers; α: Krippendorff's alpha; "
        "Cohen κ: mean over pairs of annotators",
    )
    # After resolving, the method replaces the level and answer count (80 columns).
    columns = ["question", "items", "raters", "method"] if methods else ["question", "level"]
    columns += [] if methods else ["items", "answers", "raters"]
    columns += ["α", "Fleiss κ", "Cohen κ"]
    for column in columns:
        left = column in ("question", "level", "method")
        table.add_column(column, justify="left" if left else "right")
    for row in rows:
        if methods:
            cells = [str(row.items), str(row.annotators), escape(methods.get(row.question, ""))]
        else:
            cells = [row.level, str(row.items), str(row.answers), str(row.annotators)]
        cells += [_fmt(row.alpha), _fmt(row.fleiss), _fmt(row.cohen)]
        table.add_row(escape(row.key), *cells)
    return table


@app.command()
def resolve(
    dataset: DatasetArg,
    version: VersionOpt = None,
    questions: QuestionsOpt = None,
    method: Annotated[
        MethodChoice,
        typer.Option(help="For labels; auto: Dawid–Skene from --ds-min-items items on."),
    ] = MethodChoice.auto,
    min_agreement: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Below it (or on a tie) → adjudication.")
    ] = 0.5,
    min_annotators: Annotated[int, typer.Option(min=1, help="Fewer → adjudication.")] = 1,
    ratings: Annotated[
        RobustChoice, typer.Option(help="How ratings combine.")
    ] = RobustChoice.median,
    ds_min_items: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Combine human answers into one decision per record; send the rest to adjudication."""
    from datamill.resolve import Settings, resolve_dataset
    from datamill.store import Dataset

    settings = Settings(
        method=method.value,  # type: ignore[arg-type]
        min_agreement=min_agreement,
        min_annotators=min_annotators,
        robust=ratings.value,  # type: ignore[arg-type]
        ds_min_items=ds_min_items,
    )
    ds = Dataset.open(dataset)
    summary = resolve_dataset(ds, version, _questions(questions), settings)
    kept = f", decided by reviewers {summary.adjudicated}" if summary.adjudicated else ""
    console.print(
        f"resolved {summary.resolved}, sent to adjudication {summary.adjudicate}{kept}, "
        f"without annotations {summary.unannotated} → version {summary.version.version}"
    )
    if summary.open_questions:
        console.print(
            "  open questions: "
            + ", ".join(f"{escape(q)} {n}" for q, n in summary.open_questions.most_common())
            + f" — list them with: datamill adjudicate {escape(str(dataset))}"
        )
    if summary.agreement:
        console.print(_agreement_table(summary.agreement, summary.methods))
    if summary.models:
        console.print(_models_table(summary.models))


def _models_table(models: list[Strength]) -> Table:
    table = Table(title="human preference between models (Bradley–Terry)")
    for column in ("model", "strength", "wins", "losses"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for m in models:
        table.add_row(escape(m.name), f"{m.score:+.2f}", str(m.wins), str(m.losses))
    return table


@app.command()
def agreement(
    dataset: DatasetArg,
    version: VersionOpt = None,
    questions: QuestionsOpt = None,
    gold: Annotated[
        Path | None,
        typer.Option(help="JSON/YAML: record id → {question: gold answer} (as annotate push)."),
    ] = None,
) -> None:
    """Inter-annotator agreement per question and each annotator's quality."""
    from datamill.quality.answers import agreement as measure
    from datamill.resolve import survey
    from datamill.store import Dataset
    from datamill.yamlfile import read_yaml

    answers = read_yaml(gold) if gold else None  # JSON is YAML
    if answers is not None and not isinstance(answers, dict):
        raise DatamillError(f"{gold}: expected a mapping from record id to gold answers")
    found = survey(Dataset.open(dataset), version, _questions(questions), answers)
    rows = measure(found)
    console.print(f"{found.annotated} of {found.records} records have annotations")
    if not rows:
        console.print("no rated, labelled or ranked answers to measure agreement on")
        return
    console.print(_agreement_table(rows))
    console.print(_annotator_table(rows))
    if found.model_wins:
        from datamill.quality.consensus import strengths

        console.print(_models_table(strengths(found.model_wins)))


def _annotator_table(rows: list[TableAgreement]) -> Table:
    """One line per annotator over every question: answers, agreement with the consensus,
    accuracy on gold, and why they are flagged."""
    totals: dict[str, dict[str, float]] = {}
    reasons: dict[str, list[str]] = {}
    for row in rows:
        for q in row.annotator_quality:
            t = totals.setdefault(
                q.annotator, dict.fromkeys(("n", "agree", "agree_n", "gold", "gold_n"), 0.0)
            )
            t["n"] += q.answers
            if q.agreement is not None:
                t["agree"] += q.agreement * q.answers
                t["agree_n"] += q.answers
            if q.gold_accuracy is not None:
                t["gold"] += q.gold_accuracy * q.gold_items
                t["gold_n"] += q.gold_items
            if q.flagged:
                reasons.setdefault(q.annotator, []).append(f"{row.key}: {q.reason}")
    table = Table(title="annotators")
    for column in ("annotator", "answers", "agrees with consensus", "gold accuracy", "flagged"):
        table.add_column(column, justify="left" if column in ("annotator", "flagged") else "right")
    for name, t in sorted(totals.items(), key=lambda kv: (kv[0] not in reasons, kv[0])):
        table.add_row(
            escape(name),
            str(int(t["n"])),
            _fmt(t["agree"] / t["agree_n"] if t["agree_n"] else None),
            _fmt(t["gold"] / t["gold_n"] if t["gold_n"] else None),
            f"[red]{escape('; '.join(reasons[name]))}[/]" if name in reasons else "",
        )
    return table


@app.command()
def adjudicate(
    dataset: DatasetArg,
    record: Annotated[str | None, typer.Argument(help="Record id to decide.")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who decides.")] = None,
    value: Annotated[
        str | None, typer.Option(help='The answer, as JSON: "unsafe", 3, or {"q": …}.')
    ] = None,
    note: Annotated[str, typer.Option(help="Why.")] = "",
    version: VersionOpt = None,
) -> None:
    """List the adjudication queue, or record a reviewer's decision on one record."""
    from datamill.resolve import Verdict, adjudicate_dataset, adjudication_queue
    from datamill.store import Dataset

    ds = Dataset.open(dataset)
    if record is None:
        waiting = 0
        for r in adjudication_queue(ds.records(version)):
            waiting += 1
            console.print(f"{r.id}  {escape(r.decisions['resolve'].reason)}")
        console.print(f"{waiting} record(s) waiting for a reviewer")
        return
    if not reviewer or value is None:
        raise DatamillError("adjudicating a record needs --reviewer and --value")
    try:
        answer = json.loads(value)
    except json.JSONDecodeError:
        answer = value  # a bare word is a label
    done = adjudicate_dataset(ds, {record: Verdict(reviewer, answer, note)}, version)
    console.print(f"{escape(reviewer)} decided record {escape(record)} → version {done.version}")
