"""Commands that measure judges: calibrate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from datamill.cli.common import VersionOpt, app, console, progress_bar
from datamill.cli.generation import (
    BackendKind,
    BaseUrlOpt,
    ConcurrencyOpt,
    KeyEnvOpt,
    ModelOpt,
    backend_override,
)
from datamill.errors import DatamillError

if TYPE_CHECKING:
    from datamill.llm.config import BackendConfig
    from datamill.quality.calibration import Calibration
    from datamill.records import Record


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


EMBEDDED_CHARS = 1500
JudgeBackendOpt = Annotated[
    BackendKind | None, typer.Option("--backend", help="Judge backend (default: embedded).")
]


def _finite(value: Any) -> Any:
    """``value`` with NaN (an undefined figure) as null, which JSON can hold."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def _pairwise_table(title: str, cal: Calibration) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("pairs", str(cal.items)),
        ("no verdict (failed or inconsistent)", str(cal.no_verdict)),
        ("accuracy (human ties left out)", _fmt(cal.accuracy)),
        ("accuracy (judge tie = half)", _fmt(cal.accuracy_half_ties)),
        ("accuracy (ties must match)", _fmt(cal.accuracy_strict)),
        ("Cohen's kappa (1 / 2 / tie)", _fmt(cal.kappa)),
        ("Spearman (preference direction)", _fmt(cal.spearman)),
    ]
    if cal.position_bias is not None:
        bias = cal.position_bias
        rows += [
            ("consistent across both orders", _fmt(bias.consistency)),
            ("position bias rate", _fmt(bias.rate)),
            ("  first shown won both orders", _fmt(bias.first)),
            ("  second shown won both orders", _fmt(bias.second)),
        ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _judge(
    records: list[Record], config: BackendConfig | None, cache: Path | None, max_chars: int | None
) -> list[Record]:
    """The records with the pairwise judge's verdict, with a progress bar."""
    from datamill.checks import run_checks
    from datamill.checks.pairwise import Pairwise

    if max_chars is None:  # the embedded model's context holds 2048 tokens, prompt and answer
        max_chars = EMBEDDED_CHARS if config is None or config.kind == "embedded" else 6000
    check = Pairwise(backend=config, cache=str(cache) if cache else None, max_chars=max_chars)
    judged = []
    with progress_bar() as progress:
        task = progress.add_task("judge", total=len(records))
        for record in run_checks(records, [check]):
            judged.append(record)
            progress.advance(task)
    return judged


def _reference(
    name: str,
    limit: int | None,
    seed: int,
    config: BackendConfig | None,
    cache: Path | None,
    max_chars: int | None,
) -> dict[str, Any]:
    from datamill.quality.calibration import calibrate_pairwise
    from datamill.quality.judged import judge_verdict
    from datamill.quality.references import load_reference

    reference = load_reference(name, limit, seed)
    judged = _judge([p.record() for p in reference.pairs], config, cache, max_chars)
    verdicts = [judge_verdict(r) for r in judged]
    cal = calibrate_pairwise(
        [v[0] for v in verdicts],
        [p.label for p in reference.pairs],
        forward=[v[1] for v in verdicts],
        reverse=[v[2] for v in verdicts],
    )
    failed = sum(bool(r.checks["pairwise"].details.get("failures")) for r in judged)
    entries = [r.provenance.params["judge"] for r in judged if "judge" in r.provenance.params]
    models = entries[0]["pairwise"]["models"] if entries else []  # type: ignore[index,call-overload]
    title = f"judge {escape(', '.join(models))} vs humans on {name}"  # type: ignore[arg-type]
    console.print(_pairwise_table(title, cal))
    if failed:
        console.print(f"  {failed} pairs had a failed judge call (see the records' details)")
    for reason, n in reference.left_out.items():
        console.print(f"  left out of {escape(name)}: {n} pairs ({escape(reason)})")
    return {"reference": name, "models": models, "failed": failed, **cal.as_dict()}


def _dataset(path: Path, version: int | None, question: str | None) -> dict[str, Any]:
    from datamill.quality.calibration import calibrate_pairwise, calibrate_ratings
    from datamill.quality.judged import pairwise_columns, rating_columns
    from datamill.store import Dataset

    ds = Dataset.open(path)
    pairs = pairwise_columns(ds.records(version), question or "preference")
    judge, human = rating_columns(ds.records(version), question or "rating")
    if not pairs.human and not judge:
        raise DatamillError(
            f"{path}: no record has both a judge result (checks judge or pairwise) and a human "
            f"answer to '{question or 'preference/rating'}'; name the question with --question"
        )
    figures: dict[str, Any] = {"dataset": str(path)}
    if pairs.human:
        cal = calibrate_pairwise(pairs.judge, pairs.human, pairs.forward, pairs.reverse)
        console.print(_pairwise_table("pairwise judge vs human preferences", cal))
        figures["pairwise"] = cal.as_dict()
    if judge:
        ratings = calibrate_ratings(judge, human)
        table = Table(title="rubric judge vs human ratings", title_justify="left")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row("items", str(len(judge)))
        table.add_row("Spearman", _fmt(ratings["spearman"]))
        table.add_row("pairwise accuracy (order of two items)", _fmt(ratings["pairwise_accuracy"]))
        table.add_row("Cohen's kappa (rounded, quadratic)", _fmt(ratings["kappa_quadratic"]))
        console.print(table)
        figures["ratings"] = ratings
    return figures


@app.command()
def calibrate(
    reference: Annotated[
        str,
        typer.Option(
            help="llmbar-natural, llmbar-mtbench, pandalm, hh-rlhf, or a dataset directory "
            "whose records carry judge checks and human annotations."
        ),
    ] = "llmbar-natural",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Judge a random sample of this many pairs.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    question: Annotated[
        str | None,
        typer.Option(help="Dataset: the annotation question (default: preference / rating)."),
    ] = None,
    version: VersionOpt = None,
    backend: JudgeBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: KeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    cache: Annotated[Path | None, typer.Option(help="Request cache file.")] = None,
    max_chars: Annotated[
        int | None,
        typer.Option(
            min=100,
            help="Cut each text in the prompt to this many characters "
            f"(default: {EMBEDDED_CHARS} on the embedded model, else 6000).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON.")] = None,
) -> None:
    """Measure the LLM judge against human labels: kappa, accuracy, Spearman, position bias."""
    from datamill.quality.references import REFERENCES

    if reference in REFERENCES:
        config = backend_override(backend, base_url, model, api_key_env, concurrency)
        figures = _reference(reference, limit, seed, config, cache, max_chars)
    elif Path(reference).is_dir():
        figures = _dataset(Path(reference), version, question)
    else:
        known = ", ".join(REFERENCES)
        raise DatamillError(f"--reference {reference!r} is neither a dataset nor one of {known}")
    if out is not None:
        text = json.dumps(_finite(figures), indent=2, default=str)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(out)
        console.print(f"  figures → {escape(str(out))}")
