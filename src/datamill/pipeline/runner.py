"""Run a pipeline step by step, remembering finished steps so that a rerun resumes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from datamill.errors import DatasetError
from datamill.llm.config import BackendConfig
from datamill.pipeline.model import Pipeline
from datamill.pipeline.stages import STAGES, StepContext, StepOutcome
from datamill.store import Dataset, atomic_write_bytes

STATE = "pipeline.json"
_STARTED = "_started"
Tick = Callable[[str, int | None], Callable[[], None]]


@dataclass
class PipelineResult:
    dataset: Dataset
    steps: list[tuple[str, StepOutcome]] = field(default_factory=list)
    version: int | None = None  # the version the last finished step left
    paused: str | None = None


def _key(previous: str, name: str, params: object) -> str:
    text = json.dumps([previous, name, params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _State:
    """``OUT/pipeline.json``: step key → the version that step wrote, and the steps started
    but not recorded (key → start time), so that a version committed just before a kill is
    taken up instead of made again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started: dict[str, str] = {}
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: cannot read the pipeline state ({e})") from None
        self.started = data.pop(_STARTED, {})
        self.done: dict[str, int] = data

    def save(self) -> None:
        data = {**self.done, **({_STARTED: self.started} if self.started else {})}
        atomic_write_bytes(self.path, json.dumps(data, indent=1).encode())

    def start(self, key: str) -> None:
        self.started[key] = datetime.now(UTC).isoformat()
        self.save()

    def finish(self, key: str, version: int | None) -> None:
        self.started.pop(key, None)
        if version is not None:
            self.done[key] = version
        self.save()

    def orphan(self, key: str, dataset: Dataset, stage: str, parent: int | None) -> int | None:
        """The version a started step committed before the run was killed, if any."""
        since = self.started.get(key)
        if since is None:
            return None
        found = [
            v.version
            for v in dataset.versions
            if v.parent == parent and v.stage == stage and v.created_at.isoformat() >= since
        ]
        return found[-1] if found else None


def run_pipeline(
    pipeline: Pipeline,
    out: Path,
    n: int | None = None,
    overrides: dict[str, BackendConfig] | None = None,
    tick: Tick | None = None,
) -> PipelineResult:
    """Generate, then run each stage on the version the one before left.

    Stops early, with ``paused`` set, when a step waits for something outside the run.
    """
    from datamill.generate.run import run_generation

    tick = tick or (lambda _name, _total: lambda: None)
    dataset = Dataset.create(out / "dataset", name=pipeline.recipe.name)
    state = _State(out / STATE)
    present = {v.version for v in dataset.versions}
    state.done = {k: v for k, v in state.done.items() if v in present}
    result = PipelineResult(dataset)
    backends = {k: v.model_dump(mode="json") for k, v in (overrides or {}).items()}
    key = _key("", "generate", [pipeline.recipe.model_dump(mode="json"), n, backends])
    version = state.done.get(key) or state.orphan(key, dataset, "generate", None)
    if version is None:
        state.start(key)
        advance = tick("generate", n or pipeline.recipe.n)
        run = run_generation(pipeline.recipe, dataset, n=n, overrides=overrides, advance=advance)
        done = asyncio.run(run)
        version = done.version
        result.steps.append(("generate", StepOutcome(done, summary=_generated(done.counts))))
    state.finish(key, version)
    for step in pipeline.steps:
        stage = STAGES[step.name]
        key = _key(key, step.name, step.key_params(pipeline.base))
        if stage.writes_version:
            found = state.done.get(key) or state.orphan(key, dataset, step.name, version)
            if found is not None:
                state.finish(key, found)
                version = found
                continue
            state.start(key)
        ctx = StepContext(
            dataset, version, pipeline.base, out, lambda total, name=step.name: tick(name, total)
        )
        outcome = stage.run(ctx, step.params)
        result.steps.append((step.name, outcome))
        if outcome.paused is not None:
            result.paused = outcome.paused
            break
        if outcome.version is not None:
            version = outcome.version.version
        if stage.writes_version:
            state.finish(key, outcome.version.version if outcome.version else None)
    result.version = version
    return result


def _generated(counts: dict[str, int]) -> str:
    return f"{counts['records']} records, {counts.get('failed', 0)} failed"
