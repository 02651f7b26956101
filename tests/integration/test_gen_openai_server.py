"""Every shipped recipe through llama.cpp's OpenAI-compatible server: each family makes
records whose provenance names the server's backend, model and usage, and whose
verification fields are there, failed or not.

The server runs the shipped model, started once for the module. Answers are cut short
(each recipe's token limits are lowered) so that the module stays cheap; what is tested is
the wiring, not the small model's quality.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datamill.generate.run import run_generation
from datamill.generate.tally import kind_of
from datamill.llm.config import BackendConfig
from datamill.recipe import load_recipe
from datamill.store import Dataset
from llama_server import MODEL, llama_server

pytestmark = pytest.mark.model

RECIPES = Path(__file__).parents[2] / "recipes"
# family: (items, parameters over the recipe's, the check on every record or None)
RUNS: dict[str, tuple[int, dict[str, Any], str | None]] = {
    "coding": (1, {"max_tokens": 200, "min_tests": 1, "timeout_seconds": 5}, "tests_pass"),
    "domain_instructions": (2, {"max_tokens": 32}, None),
    "evol_instruct": (2, {"evolve_max_tokens": 48, "max_tokens": 32}, None),
    "grounded_qa": (2, {"max_tokens": 128}, "grounded"),
    "math_cot": (2, {"max_tokens": 96}, "math_verified"),
    "multilingual": (2, {"max_tokens": 64}, "language"),
    "responses": (1, {"max_tokens": 24}, None),
    "safety": (2, {"max_tokens": 48}, "expected_behaviour"),
    "self_instruct": (2, {"task_max_tokens": 48, "max_tokens": 32, "batch_size": 2}, None),
    "support": (1, {"max_tokens": 48, "min_turns": 1, "max_turns": 1}, None),
    "workflows": (
        1,
        {"max_tokens": 128, "max_steps": 1, "only": ["stock_question"], "distractors": 0},
        "tool_use",
    ),
}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llama-server")) as url:
        yield url


def test_every_recipe_is_covered() -> None:
    shipped = {load_recipe(p).family for p in RECIPES.glob("*.yaml") if p.stem != "loop"}
    assert shipped == set(RUNS)


@pytest.mark.parametrize("family", sorted(RUNS))
def test_a_recipe_on_the_server(
    family: str, server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n, params, check = RUNS[family]
    monkeypatch.chdir(RECIPES.parent)  # recipes name their documents relative to the repo
    recipe = load_recipe(RECIPES / f"{family}.yaml")
    recipe = recipe.model_copy(update={"params": {**recipe.params, **params}, "dedup": None})
    server = BackendConfig(
        kind="openai", base_url=server_url, model=MODEL, structured="json_object", timeout=600
    )
    dataset = Dataset.create(tmp_path / "ds")
    overrides = dict.fromkeys(recipe.backends, server)
    version = asyncio.run(run_generation(recipe, dataset, n=n, overrides=overrides))

    records = list(dataset.records(version.version))
    summary: dict[str, Any] = version.stats["summary"]  # type: ignore[assignment]
    failures: dict[str, int] = version.stats["failures"]  # type: ignore[assignment]
    assert records, f"{family} made no record: {failures}"
    assert version.counts["records"] + version.counts["failed"] == n
    assert summary["kept"] == len(records)
    assert summary["call_errors"] == 0, failures
    by_kind = {k: sum(v for c, v in failures.items() if kind_of(c) == k) for k in summary}
    assert all(summary[k] == by_kind[k] for k in ("parse_failures", "rejected"))
    roles: dict[str, dict[str, Any]] = version.stats["llm"]  # type: ignore[assignment]
    requests = sum(role["requests"] for role in roles.values())
    assert requests > 0 and all(role["completion_tokens"] > 0 for role in roles.values())

    for record in records:
        assert record.provenance.source == "synthetic" and record.provenance.recipe == recipe.name
        assert record.provenance.backend == "openai" and record.provenance.model == MODEL
        usage = record.provenance.usage
        assert usage is not None
        if usage.calls:  # grounded_qa puts a call's usage on its first pair only
            assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        if family == "responses":  # a prompt and its candidate replies, for preferences
            assert record.messages[-1].role == "user" and len(record.candidates) >= 2
            assert {(c.backend, c.model) for c in record.candidates} == {("openai", MODEL)}
        else:
            assert record.messages and record.messages[-1].role == "assistant"
        assert all(m.content or m.tool_calls for m in record.messages)
        if check is not None:
            result = record.checks[check]
            assert result.passed in (True, False, None) and isinstance(result.details, dict)
    if check is not None:
        failed = sum(r.checks[check].passed is False for r in records)
        assert summary["verification"][check]["failed"] == failed  # type: ignore[index]
    # A record's usage counts every call behind it, answers rejected as invalid included.
    assert sum(r.provenance.usage.calls for r in records if r.provenance.usage) > 0
