"""The stages a pipeline can name, each a parameter model and a function over one version.

A stage reads the version ``ctx.parent`` and either writes a new version (check, filter,
route, annotate, resolve), or writes files beside the dataset (export, report), or pauses
the run until something outside it happens (annotate, while humans are answering).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.store import Dataset, Version


@dataclass
class StepContext:
    dataset: Dataset
    parent: int  # the version this step reads
    base: Path  # the recipe's directory: relative input paths start here
    out: Path  # the pipeline's output directory: relative output paths start here
    tick: Callable[[int | None], Callable[[], None]] = lambda total: lambda: None

    def input(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base / path

    def output(self, path: Path) -> Path:
        return path if path.is_absolute() else self.out / path


@dataclass
class StepOutcome:
    version: Version | None = None  # the version written, if any
    files: list[Path] = field(default_factory=list)
    summary: str = ""
    paused: str | None = None  # why the run stops here for now


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def reads(self, base: Path) -> list[Path]:
        """Files the step reads: when one changes, a resumed run makes the step again."""
        return []


@dataclass(frozen=True)
class Stage:
    params: type[Params]
    run: Callable[[StepContext, Any], StepOutcome]
    writes_version: bool = True  # False: always re-run (cheap outputs such as exports)


STAGES: dict[str, Stage] = {}


def stage(name: str, params: type[Params], writes_version: bool = True) -> Callable:
    def register(fn: Callable[[StepContext, Any], StepOutcome]) -> Callable:
        STAGES[name] = Stage(params, fn, writes_version)
        return fn

    return register


# -- check and filter --------------------------------------------------------------------


class CheckSpec(Params):
    name: str
    options: dict[str, JsonValue] = Field(default_factory=dict)


class CheckParams(Params):
    checks: list[str | CheckSpec] = Field(min_length=1)

    def specs(self) -> list[CheckSpec]:
        return [CheckSpec(name=c) if isinstance(c, str) else c for c in self.checks]


@stage("check", CheckParams)
def _check(ctx: StepContext, params: CheckParams) -> StepOutcome:
    from datamill.checks import make_check
    from datamill.checks.stage import check_dataset

    specs = params.specs()
    made = [make_check(s.name, s.options) for s in specs]
    advance = ctx.tick(ctx.dataset.count(ctx.parent))
    dumped = [s.model_dump(mode="json") for s in specs]
    done = asyncio.run(check_dataset(ctx.dataset, made, dumped, ctx.parent, advance=advance))
    failed = {k.removeprefix("failed_"): n for k, n in done.counts.items() if k != "records"}
    return StepOutcome(done, summary=f"{done.counts['records']} records, failed: {failed or 0}")


class FilterParams(Params):
    rules: list[str] = Field(min_length=1)
    rejected: Path = Path("rejected")


@stage("filter", FilterParams)
def _filter(ctx: StepContext, params: FilterParams) -> StepOutcome:
    from datamill.checks.rules import parse_rule
    from datamill.checks.stage import filter_dataset

    rules = [parse_rule(r) for r in params.rules]
    bin_ = Dataset.create(ctx.output(params.rejected), name=f"{ctx.dataset.path.name}-rejected")
    keep, drop = filter_dataset(ctx.dataset, rules, bin_, ctx.parent)
    summary = f"kept {keep.counts['records']}, rejected {drop.counts['records']}"
    return StepOutcome(keep, summary=summary)


# -- route -------------------------------------------------------------------------------


class RouteParams(Params):
    policy: Path
    project: str | None = None  # default: the policy's
    budget: int | None = Field(None, ge=0)  # default: the policy's

    def reads(self, base: Path) -> list[Path]:
        from datamill.route import load_policy

        path = base / self.policy
        calibration = load_policy(path).calibration_path()
        return [path] if calibration is None else [path, calibration]


@stage("route", RouteParams)
def _route(ctx: StepContext, params: RouteParams) -> StepOutcome:
    from datamill.route import load_policy, route_dataset

    policy = load_policy(ctx.input(params.policy))
    updates = {"project": params.project, "budget": params.budget}
    policy = policy.model_copy(update={k: v for k, v in updates.items() if v is not None})
    advance = ctx.tick(ctx.dataset.count(ctx.parent))
    done = route_dataset(ctx.dataset, policy, ctx.parent, advance=advance)
    c = done.counts
    summary = f"accept {c['accept']}, reject {c['reject']}, human {c['human']} (audit {c['audit']})"
    return StepOutcome(done, summary=summary)


# -- export ------------------------------------------------------------------------------


class ExportParams(Params):
    format: Literal["sft", "preference", "kto", "reward", "openai", "sharegpt"] = "sft"
    out: Path
    file_format: Literal["jsonl", "parquet"] = "jsonl"
    style: Literal["conversational", "standard"] = "conversational"
    all: bool = False  # include records that failed a check
    split: dict[str, float] | None = None  # e.g. {train: 0.9, test: 0.1}; out is a directory
    seed: int = 0
    card: bool = True


@stage("export", ExportParams, writes_version=False)
def _export(ctx: StepContext, params: ExportParams) -> StepOutcome:
    from datamill.export import make_format
    from datamill.export.run import export_dataset

    path = ctx.output(params.out)
    report = export_dataset(
        ctx.dataset.path,
        path,
        make_format(params.format),
        version=ctx.parent,
        file_format=params.file_format,
        style=params.style,
        only_passed=False if params.all else None,
        split=params.split,
        seed=params.seed,
        card=params.card,
    )
    files = [*report.paths.values(), *([report.card] if report.card else [])]
    summary = f"{params.format}: {report.written} rows → {path}"
    return StepOutcome(files=files, summary=summary)


# The stages where people answer (annotate, resolve, adjudicate) and those that measure
# (report, diversity) register themselves from their own modules.
from datamill.pipeline import human, measure  # noqa: E402, F401
