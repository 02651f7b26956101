"""``datamill demo``: a thin end-to-end run on the embedded model, offline.

generate (domain packs × personas) → exact dedup + length check → SFT export.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

from datamill.checks import run_checks
from datamill.checks.dedup import ExactDedup
from datamill.checks.length import Length
from datamill.export.sft import write_sft_jsonl
from datamill.generate.run import run_generation
from datamill.llm.config import BackendConfig
from datamill.recipe import Recipe
from datamill.records import Record
from datamill.store import Dataset, Version


def demo_recipe(n: int, seed: int, backend: BackendConfig | None = None) -> Recipe:
    return Recipe(
        name="demo",
        description="Domain questions and answers from the built-in packs.",
        family="domain_instructions",
        n=n,
        seed=seed,
        backends={"generator": backend or BackendConfig(kind="embedded")},
    )


@dataclass
class DemoResult:
    dataset: Path
    generated: Version
    checked: Version
    sft: Path
    exported: int
    seconds: float

    @property
    def llm(self) -> dict[str, Any]:
        return self.generated.stats["llm"]["generator"]  # type: ignore[index,return-value]


def _ticking(records: Iterable[Record], progress: Progress, task: TaskID) -> Iterator[Record]:
    for record in records:
        progress.advance(task)
        yield record


def run_demo(
    out: Path,
    n: int = 30,
    seed: int = 0,
    backend: BackendConfig | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    progress = progress or Progress()
    start = time.perf_counter()
    dataset = Dataset.create(out / "dataset", name="demo")
    recipe = demo_recipe(n, seed, backend)
    with progress:
        task = progress.add_task("generate", total=n)
        generated = asyncio.run(
            run_generation(recipe, dataset, advance=lambda: progress.advance(task))
        )
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
        seconds=time.perf_counter() - start,
    )
