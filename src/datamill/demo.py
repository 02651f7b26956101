"""``datamill demo``: a thin end-to-end run on the embedded model, offline.

generate (domain packs × personas) → exact dedup + length check → SFT export.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from datamill.checks import ExactDedup, Length, run_checks
from datamill.export.sft import write_sft_jsonl
from datamill.generate import instructions
from datamill.generate.packs import builtin_packs, load_pack
from datamill.llm.base import Backend
from datamill.llm.cache import RequestCache
from datamill.llm.engine import Engine, RunStats
from datamill.records import Record
from datamill.store import Dataset, Version

RECIPE = "demo"


@dataclass
class DemoResult:
    dataset: Path
    generated: Version
    checked: Version
    sft: Path
    exported: int
    llm: RunStats
    seconds: float


async def _generate(
    engine: Engine, dataset: Dataset, n: int, seed: int, progress: Progress
) -> Version:
    packs = [load_pack(name) for name in builtin_packs()]
    slots = instructions.plan(packs, n, seed)
    task = progress.add_task("generate", total=len(slots))
    params = {"recipe": RECIPE, "n": n, "seed": seed, "model": engine.backend.model}
    async with engine:
        with dataset.writer("generate", params, parent=None) as w:
            w.counts["failed"] = 0
            async for out in instructions.generate(engine, slots, recipe=RECIPE):
                if isinstance(out, Record):
                    w.write(out)
                else:
                    w.counts["failed"] += 1
                progress.advance(task)
    assert w.committed is not None
    return w.committed


def _ticking(records: Iterable[Record], progress: Progress, task: TaskID) -> Iterator[Record]:
    for record in records:
        progress.advance(task)
        yield record


def run_demo(
    backend: Backend, out: Path, n: int = 30, seed: int = 0, console: Console | None = None
) -> DemoResult:
    console = console or Console()
    start = time.perf_counter()
    dataset = Dataset.create(out / "dataset", name="demo")
    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        engine = Engine(backend, cache=RequestCache(out / "llm-cache.sqlite"))
        generated = asyncio.run(_generate(engine, dataset, n, seed, progress))
        checks = [ExactDedup(on="prompt"), Length(min_words=5, max_words=400)]
        task = progress.add_task("check", total=generated.counts["records"])
        checked = dataset.write(
            _ticking(run_checks(dataset.records(generated.version), checks), progress, task),
            stage="check",
            params={"checks": [c.name for c in checks]},
            parent=generated.version,
        )
    sft = out / "sft.jsonl"
    exported = write_sft_jsonl(dataset.records(checked.version), sft).written
    return DemoResult(
        dataset=dataset.path,
        generated=generated,
        checked=checked,
        sft=sft,
        exported=exported,
        llm=engine.stats,
        seconds=time.perf_counter() - start,
    )
