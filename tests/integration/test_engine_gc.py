"""The engine's garbage collector thresholds: larger while map runs, the process's again after."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from datamill.llm.base import ChatRequest
from datamill.llm.engine import Engine
from datamill.llm.gc_tuning import YOUNG, relaxed_gc
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.stub_server import StubServer
from datamill.records import Message


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, ...]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def ask(i: int) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=f"question {i}")])


def test_nested_blocks_restore_the_thresholds_when_the_last_ends() -> None:
    with relaxed_gc():
        assert gc.get_threshold() == (YOUNG, 10, 10)
        with relaxed_gc():
            assert gc.get_threshold()[0] == YOUNG
        assert gc.get_threshold()[0] == YOUNG
    assert gc.get_threshold() == (700, 10, 10)


def test_the_thresholds_come_back_after_an_error() -> None:
    with pytest.raises(RuntimeError), relaxed_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_larger_young_generation_is_kept() -> None:
    gc.set_threshold(50_000, 10, 10)
    with relaxed_gc():
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_map_relaxes_the_collector_while_it_runs_and_restores_it() -> None:
    seen: list[int] = []

    async def main() -> int:
        with StubServer() as stub:
            async with Engine(OpenAICompatBackend(stub.url, "m"), concurrency=4) as engine:
                async for outcome in engine.map(ask(i) for i in range(10)):
                    assert outcome.ok, outcome.error
                    seen.append(gc.get_threshold()[0])
                # Two maps at once, one abandoned early: the thresholds still come back.
                first = engine.map(ask(i) for i in range(10))
                await anext(first)
                async for _ in engine.map(ask(i) for i in range(3)):
                    pass
                assert gc.get_threshold()[0] == YOUNG
                await first.aclose()
        return gc.get_threshold()[0]

    assert asyncio.run(main()) == 700
    assert seen == [YOUNG] * 10
