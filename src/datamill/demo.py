"""``datamill demo``: a small end-to-end run on the embedded model, offline.

Three task families generate into one dataset, each run extending the version before it
(domain questions from the packs × personas, verified math, support conversations) with
dedup against the pool; then exact dedup, length and safety checks; then routing
(high-risk domains and safety flags to humans, a sample of the rest audited); then an SFT
export of what was accepted automatically and passed every check.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import JsonValue
from rich.progress import Progress

from datamill.checks.dedup import ExactDedup
from datamill.checks.length import Length
from datamill.checks.safety import Safety
from datamill.checks.stage import check_dataset
from datamill.export.sft import write_sft_jsonl
from datamill.generate.pool_dedup import DedupConfig
from datamill.generate.run import run_generation
from datamill.llm.config import BackendConfig
from datamill.recipe import Recipe
from datamill.route import Policy, route_dataset
from datamill.store import Dataset, Version

# Each family's share of the records, and parameters that keep the embedded model quick.
FAMILIES: list[tuple[str, int, dict[str, JsonValue]]] = [
    ("domain_instructions", 2, {"max_tokens": 160}),
    ("math_cot", 1, {"max_tokens": 256}),
    ("support", 1, {"min_turns": 1, "max_turns": 1, "max_tokens": 120}),
]
POLICY = Policy.model_validate(
    {
        "name": "demo",
        "project": "review",
        "rules": [
            {"name": "failed check", "check": ["exact_dedup", "length", "math_verified"],
             "failed": True, "route": "reject"},
            {"name": "safety flag", "check": "safety", "failed": True, "route": "human",
             "project": "safety-review", "expertise": ["safety"], "k": 2},
        ],
        "audit": {"rate": 0.1},
    }
)  # fmt: skip


def split(n: int) -> list[int]:
    """``n`` records shared between the families by their weights; the first takes the rest."""
    total = sum(weight for _, weight, _ in FAMILIES)
    shares = [n * weight // total for _, weight, _ in FAMILIES]
    shares[0] += n - sum(shares)
    return shares


def demo_recipes(n: int, seed: int, backend: BackendConfig | None = None) -> list[Recipe]:
    backends = {"generator": backend or BackendConfig(kind="embedded")}
    return [
        Recipe(
            name=f"demo-{family}",
            family=family,
            n=share,
            seed=seed,
            backends=backends,
            params=params,
            dedup=DedupConfig(),
        )
        for (family, _, params), share in zip(FAMILIES, split(n), strict=True)
        if share
    ]


@dataclass
class DemoResult:
    dataset: Path
    generated: list[Version]  # one per family, each extending the one before
    checked: Version
    routed: Version
    sft: Path
    exported: int
    seconds: float


def run_demo(
    out: Path,
    n: int = 20,
    seed: int = 0,
    backend: BackendConfig | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    progress = progress or Progress()
    start = time.perf_counter()
    dataset = Dataset.create(out / "dataset", name="demo")
    generated: list[Version] = []
    with progress:
        for recipe in demo_recipes(n, seed, backend):
            task = progress.add_task(recipe.family.replace("_", " ")[:9], total=recipe.n)
            run = run_generation(
                recipe, dataset, advance=lambda t=task: progress.advance(t), append=bool(generated)
            )
            generated.append(asyncio.run(run))
        last = generated[-1]
        checks = [ExactDedup(on="prompt"), Length(min_words=5, max_words=400), Safety()]
        specs: list[dict[str, Any]] = [{"name": c.name, "options": {}} for c in checks]
        task = progress.add_task("check", total=last.counts["records"])
        check = check_dataset(dataset, checks, specs, last.version, lambda: progress.advance(task))
        checked = asyncio.run(check)
        task = progress.add_task("route", total=checked.counts["records"])
        routed = route_dataset(dataset, POLICY, checked.version, lambda: progress.advance(task))
    accepted = (
        r for r in dataset.records(routed.version) if r.decisions["route"].outcome == "accept"
    )
    sft = out / "sft.jsonl"
    exported = write_sft_jsonl(accepted, sft).written
    return DemoResult(
        dataset=dataset.path,
        generated=generated,
        checked=checked,
        routed=routed,
        sft=sft,
        exported=exported,
        seconds=time.perf_counter() - start,
    )
