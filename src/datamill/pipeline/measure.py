"""Stages that measure a version and write files beside it, never a version: the HTML
report and the diversity profile (with a warning when diversity fell)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from datamill.pipeline.stages import Params, StepContext, StepOutcome, stage


class ReportParams(Params):
    out: Path = Path("report.html")
    rates: Path | None = None  # rates.yaml (relative: to the recipe)


@stage("report", ReportParams, writes_version=False)
def _report(ctx: StepContext, params: ReportParams) -> StepOutcome:
    from datamill.ledger import Rates
    from datamill.report import collect, write_report

    rates = Rates.load(ctx.input(params.rates)) if params.rates else None
    path = write_report(collect(ctx.dataset, ctx.parent, rates, None), ctx.output(params.out))
    return StepOutcome(files=[path], summary=f"report → {path}")


class DiversityParams(Params):
    out: Path = Path("diversity.json")
    against: Literal["generated", "none"] = "generated"  # the version generation wrote
    reference: Path | None = None  # or a human reference set (dataset dir or data file)
    part: Literal["response", "prompt", "conversation"] = "response"
    threshold: float = Field(0.15, gt=0, lt=1)
    sample: int = Field(1000, ge=2)
    seed: int = 0


@stage("diversity", DiversityParams, writes_version=False)
def _diversity(ctx: StepContext, params: DiversityParams) -> StepOutcome:
    from datamill.ingest import read_records
    from datamill.quality.collapse import compare
    from datamill.quality.diversity import Profiler
    from datamill.store import MANIFEST, Dataset, atomic_write_bytes

    def profiler(records):  # type: ignore[no-untyped-def]
        made = Profiler(part=params.part, sample=params.sample, seed=params.seed)
        return made.add_all(records)

    current = profiler(ctx.dataset.records(ctx.parent))
    baseline = None
    if params.reference is not None:
        ref = ctx.input(params.reference)
        is_dataset = (ref / MANIFEST).exists()
        baseline = profiler(Dataset.open(ref).records() if is_dataset else read_records(ref))
    elif params.against == "generated":
        root = next(v for v in ctx.dataset.versions if v.stage == "generate")
        if root.version != ctx.parent:
            baseline = profiler(ctx.dataset.records(root.version))
    limit = None if baseline is None else min(current.sampled, baseline.sampled)
    profile = current.profile(limit)
    out: dict[str, object] = {"version": ctx.parent, "profile": profile.model_dump(mode="json")}
    d2 = profile.distinct_2
    summary = f"distinct-2 {'unknown' if d2 is None else f'{d2:.3f}'}"
    if baseline is not None:
        comparison = compare(baseline.profile(limit), profile, params.threshold)
        out["comparison"] = comparison.model_dump()
        fell = [f"{c.label} fell {c.drop:.0%}" for c in comparison.warnings]
        summary += f"; warning: {', '.join(fell)}" if fell else "; no collapse"
    path = ctx.output(params.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(out, indent=2).encode())
    return StepOutcome(files=[path], summary=f"{summary} → {path}")
