"""The engine and the OpenAI-compatible backend against a real server: llama.cpp's.

The server runs the shipped model in a subprocess for the whole module. It answers at
about 60 tokens a second, so these tests are few and ask for short answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from datamill.llm import ChatRequest
from datamill.llm.engine import Engine, Outcome, samples
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.prices import Price, PriceTable
from datamill.records import Message
from llama_server import MODEL, llama_server

pytestmark = pytest.mark.model

T = TypeVar("T")
PRICES = PriceTable(models={MODEL: Price(prompt=0.5, completion=1.5)})


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llama-server")) as url:
        yield url


def ask(text: str, **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)


def run(server_url: str, work: Callable[[Engine], Awaitable[T]]) -> tuple[T, Engine]:
    """Run ``work`` on a fresh engine (no cache: every call reaches the server)."""

    async def main() -> tuple[T, Engine]:
        backend = OpenAICompatBackend(server_url, MODEL, structured="json_object")
        async with Engine(backend, concurrency=4, prices=PRICES) as engine:
            return await work(engine), engine

    return asyncio.run(main())


def test_a_completion_with_token_counts_and_cost(server_url: str) -> None:
    request = ask("What is the capital of France?", max_tokens=16, seed=1)
    outcome, engine = run(server_url, lambda engine: engine.complete(request))
    assert outcome.ok and outcome.completion is not None, outcome.error
    c = outcome.completion
    assert c.text.strip() and c.model == MODEL and c.backend == "openai"
    assert c.prompt_tokens > 5 and 0 < c.completion_tokens <= 16
    assert c.finish_reason in {"stop", "length"}
    assert outcome.cost == pytest.approx((c.prompt_tokens * 0.5 + c.completion_tokens * 1.5) / 1e6)
    stats = engine.stats.as_dict()
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (
        c.prompt_tokens,
        c.completion_tokens,
    )
    assert stats["cost"] == round(outcome.cost, 6) and stats["unpriced_calls"] == 0
    assert stats["succeeded"] == 1 and stats["llm_seconds"] > 0


def test_the_same_seed_gives_the_same_text(server_url: str) -> None:
    request = ask("Write a short poem about rivers.", temperature=1.0, max_tokens=16, seed=7)

    async def twice(engine: Engine) -> list[str]:
        first = await engine.complete(request)
        await engine.complete(ask("Something else entirely.", max_tokens=8, seed=3))
        again = await engine.complete(request)
        return [o.completion.text for o in (first, again) if o.completion]

    texts, _ = run(server_url, twice)
    assert len(texts) == 2 and texts[0] == texts[1]


def test_samples_give_one_outcome_each(server_url: str) -> None:
    request = ask("Name a colour.", temperature=1.2, max_tokens=8, seed=20)

    async def all_samples(engine: Engine) -> list[Outcome]:
        return [o async for o in engine.map(samples(request, 3))]

    outcomes, engine = run(server_url, all_samples)
    assert [o.request.seed for o in outcomes] == [20, 21, 22]
    assert all(o.ok and o.completion and o.completion.text.strip() for o in outcomes)
    assert engine.stats.succeeded == 3 and engine.stats.completion_tokens > 0


class Quiz(BaseModel):
    question: str
    answer: str


def test_structured_output_is_parsed_or_recorded_as_invalid(server_url: str) -> None:
    request = ask("Write a quiz question and its answer as JSON.", max_tokens=200, seed=2)

    outcome, engine = run(server_url, lambda engine: engine.complete_json(request, Quiz, 2))
    assert outcome.completion is not None and engine.stats.completion_tokens > 0
    if outcome.error is None:
        assert isinstance(outcome.parsed, Quiz) and outcome.parsed.question
    else:  # the small model may still write JSON that does not fit
        assert outcome.error.cause == "invalid_output"
        assert outcome.error.raw == outcome.completion.text
        assert engine.stats.failures == {"invalid_output": 1}
