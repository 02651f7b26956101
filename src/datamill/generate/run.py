"""Run a recipe's generation: engines per backend role, the family, a new dataset version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import JsonValue

from datamill.errors import LLMError
from datamill.generate.family import Context
from datamill.generate.pool_dedup import PoolDedup
from datamill.generate.tally import Tally
from datamill.llm.config import BackendConfig
from datamill.llm.gc_tuning import relaxed_gc
from datamill.recipe import Recipe
from datamill.store import Dataset, Version


def default_cache(dataset: Dataset) -> Path:
    return dataset.path / ".cache" / "llm.sqlite"


async def run_generation(
    recipe: Recipe,
    dataset: Dataset,
    n: int | None = None,
    cache: Path | None = None,
    overrides: dict[str, BackendConfig] | None = None,
    advance: Callable[[], None] | None = None,
    append: bool = False,
) -> Version:
    """Generate ``n`` (default: the recipe's) items into a new root version of ``dataset``,
    or, with ``append``, into a version that extends the latest one with them.

    Every call goes through the request cache, so a killed run started again pays only for
    what it had not received, and produces the same records in the same order.
    """
    family, params = recipe.task()
    n = n or recipe.n
    backends = {**recipe.backends, **(overrides or {})}
    prices = recipe.price_table()
    cache = cache or default_cache(dataset)
    engines = {role: config.engine(cache, prices) for role, config in backends.items()}
    ctx = Context(engines, recipe.name, recipe.seed, recipe.temperature)
    spec = recipe.model_copy(update={"backends": backends}).model_dump(mode="json")
    tally = Tally()
    dedup = PoolDedup(recipe.dedup, dataset) if recipe.dedup is not None else None
    try:
        parent = dataset.version().version if append else None
        run: dict[str, JsonValue] = {"recipe": spec, "n": n}
        # Records wait in the family between its engine calls: collect them young, too.
        with relaxed_gc(), dataset.writer("generate", run, parent=parent, extend=append) as w:
            async for out in family.generate(ctx, params, n):
                if isinstance(out, LLMError):
                    tally.failure(out)
                elif dedup is None or await dedup.keep(out):
                    w.write(out)
                    tally.record(out)
                if advance is not None:
                    advance()
            w.counts["failed"] = tally.failures.total()
            w.stats = {
                "failures": dict(tally.failures),
                "summary": tally.as_dict(),
                "llm": {role: engine.stats.as_dict() for role, engine in engines.items()},
            }
            if dedup is not None:
                w.counts["near_duplicates"] = dedup.dropped
                w.stats["dedup"] = dedup.stats()
    finally:
        if dedup is not None:
            await dedup.aclose()
        for engine in engines.values():
            await engine.aclose()
    assert w.committed is not None
    return w.committed
