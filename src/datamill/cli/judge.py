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
    records: list[Record],
    configs: list[BackendConfig] | None,
    cache: Path | None,
    max_chars: int | None,
    temperature: float,
) -> list[Record]:
    """The records with the pairwise judges' verdicts, with a progress bar."""
    from datamill.checks import run_checks
    from datamill.checks.pairwise import Pairwise

    if max_chars is None:  # the embedded model's context holds 2048 tokens, prompt and answer
        embedded = configs is None or any(c.kind == "embedded" for c in configs)
        max_chars = EMBEDDED_CHARS if embedded else 6000
    check = Pairwise(
        backend=list(configs) if configs else None,
        cache=str(cache) if cache else None,
        max_chars=max_chars,
        temperature=temperature,
    )
    judged = []
    with progress_bar() as progress:
        task = progress.add_task("judge", total=len(records))
        for record in run_checks(records, [check]):
            judged.append(record)
            progress.advance(task)
    return judged


def _each_judge(
    records: list[Record], human: list[int], where: str
) -> tuple[Calibration, list[dict[str, Any]]]:
    """The judges' combined calibration, printed with each judge's own when there are
    several; and each judge's figures, for the JSON."""
    from datamill.quality.calibration import calibrate_pairwise
    from datamill.quality.judged import judge_verdict, judge_verdicts, judges_of

    def figures(verdicts: list[tuple[Any, ...]]) -> Calibration:
        return calibrate_pairwise(
            [v[0] for v in verdicts],
            human,
            forward=[v[1] for v in verdicts],
            reverse=[v[2] for v in verdicts],
        )

    labels = list(dict.fromkeys(label for r in records for label in judges_of(r)))
    each = []
    for label in labels if len(labels) > 1 else []:
        cal = figures([judge_verdicts(r).get(label, (None, None, None)) for r in records])
        console.print(_pairwise_table(f"judge {escape(label)} vs humans on {where}", cal))
        each.append({"judge": label, **cal.as_dict()})
    combined = figures([judge_verdict(r) for r in records])
    if len(labels) > 1:
        title = f"the {len(labels)} judges' majority vs humans on {where}"
    else:
        title = f"judge {escape(', '.join(labels) or 'none')} vs humans on {where}"
    console.print(_pairwise_table(title, combined))
    if len(labels) == 1:
        each.append({"judge": labels[0], **combined.as_dict()})
    return combined, each


def _reference(
    name: str,
    limit: int | None,
    seed: int,
    configs: list[BackendConfig] | None,
    cache: Path | None,
    max_chars: int | None,
    temperature: float,
) -> dict[str, Any]:
    from datamill.quality.references import load_reference

    reference = load_reference(name, limit, seed)
    records = [p.record() for p in reference.pairs]
    judged = _judge(records, configs, cache, max_chars, temperature)
    cal, each = _each_judge(judged, [p.label for p in reference.pairs], name)
    failed = sum(bool(r.checks["pairwise"].details.get("failures")) for r in judged)
    entries = [r.provenance.params["judge"] for r in judged if "judge" in r.provenance.params]
    models = entries[0]["pairwise"]["models"] if entries else []  # type: ignore[index,call-overload]
    if failed:
        console.print(f"  {failed} pairs had a failed judge call (see the records' details)")
    for reason, n in reference.left_out.items():
        console.print(f"  left out of {escape(name)}: {n} pairs ({escape(reason)})")
    return {
        "reference": name,
        "models": models,
        "failed": failed,
        **cal.as_dict(),
        "judges": each,
    }


def _dataset(path: Path, version: int | None, question: str | None) -> dict[str, Any]:
    from datamill.quality.calibration import calibrate_ratings
    from datamill.quality.judged import preferences, rating_columns
    from datamill.store import Dataset

    ds = Dataset.open(path)
    preferred = list(preferences(ds.records(version), question or "preference"))
    judge, human = rating_columns(ds.records(version), question or "rating")
    if not preferred and not judge:
        raise DatamillError(
            f"{path}: no record has both a judge result (checks judge or pairwise) and a human "
            f"answer to '{question or 'preference/rating'}'; name the question with --question"
        )
    figures: dict[str, Any] = {"dataset": str(path)}
    if preferred:
        records, humans = [r for r, _ in preferred], [h for _, h in preferred]
        cal, each = _each_judge(records, humans, "human preferences")
        figures["pairwise"] = {**cal.as_dict(), "judges": each}
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
    judges: Annotated[
        Path | None,
        typer.Option(
            help="YAML list of judge backends, as a recipe names them (several judges: each "
            "is measured, and their majority); instead of --backend/--base-url/--model.",
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option(min=0.0, max=2.0, help="Judges' sampling temperature.")
    ] = 0.0,
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
        configs = [config] if config is not None else None
        if judges is not None:
            if config is not None:
                raise DatamillError("give --judges, or --backend/--base-url/--model, not both")
            configs = _judge_configs(judges)
        figures = _reference(reference, limit, seed, configs, cache, max_chars, temperature)
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


def _judge_configs(path: Path) -> list[BackendConfig]:
    """The judges a YAML file names: a list of backend mappings (or ``{backend: [...]}``)."""
    from datamill.checks.llm_judge import backend_configs
    from datamill.yamlfile import read_yaml

    raw = read_yaml(path)
    if isinstance(raw, dict) and "backend" in raw:
        raw = raw["backend"]
    if not isinstance(raw, list):
        raise DatamillError(
            f"{path}: expected a list of judge backends, such as [{{kind: embedded}}]"
        )
    try:
        return backend_configs(raw)
    except ValueError as e:
        raise DatamillError(f"{path}: {e}") from None
