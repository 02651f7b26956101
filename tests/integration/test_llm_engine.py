"""The engine against the loopback stub server: faults, order, concurrency, cache, accounting.

Every call goes over real HTTP through the OpenAI-compatible backend; the server is the
real stub server, or a subclass of it that watches what arrives.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from pydantic import BaseModel

from datamill.llm import ChatRequest, Completion
from datamill.llm.cache import RequestCache
from datamill.llm.engine import Engine, Outcome, usage_of
from datamill.llm.limits import RateLimits
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.prices import Price, PriceTable
from datamill.llm.retry import RetryPolicy
from datamill.llm.stub_server import StubServer
from datamill.records import Message

T = TypeVar("T")
MODEL = "stub-model"
FAST_RETRY = RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=1.0)
TIMING_KEYS = {"llm_seconds", "wall_seconds"}


def ask(text: str, **params: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)


def make_engine(server: StubServer, timeout: float = 30.0, **options: Any) -> Engine:
    options.setdefault("retry", FAST_RETRY)
    return Engine(OpenAICompatBackend(server.url, MODEL, timeout=timeout), **options)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a new loop; fail if the loop saw an error nobody handled."""
    unhandled: list[dict[str, Any]] = []

    async def main() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        return await coro

    result = asyncio.run(main())
    assert not unhandled, unhandled
    return result


async def run_all(engine: Engine, requests: list[ChatRequest]) -> list[Outcome]:
    async with engine:
        return [o async for o in engine.map(requests)]


def summary(engine: Engine) -> dict[str, Any]:
    return {k: v for k, v in engine.stats.as_dict().items() if k not in TIMING_KEYS}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


# -- faults ------------------------------------------------------------------------------


def test_faults_are_retried_and_the_summary_counts_them_by_cause() -> None:
    # The client gives up on "slow" after 2 s; the server answers it after 2.5 s.
    with StubServer(slow_seconds=2.5) as stub:
        stub.fail("alpha", "429")
        stub.fail("bravo", "500")
        stub.fail("charlie", "drop")
        stub.fail("delta", "garbage")
        stub.fail("echo", "slow")
        stub.fail("foxtrot", "400")
        stub.fail("golf", "500", "500", "500")
        stub.fail("hotel", "429", "429", "429")
        names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
        names += ["india", "juliet"]
        engine = make_engine(stub, timeout=2.0)
        outcomes = run(run_all(engine, [ask(f"{name} question") for name in names]))
        calls = dict(stub.calls)

    by_name = dict(zip(names, outcomes, strict=True))
    for name in ["alpha", "bravo", "charlie", "delta", "echo"]:
        assert by_name[name].ok and by_name[name].attempts == 2, name
        assert by_name[name].completion is not None
        assert by_name[name].completion.text.endswith(f"to: {name} question")
    for name in ["india", "juliet"]:
        assert by_name[name].ok and by_name[name].attempts == 1, name
    failed = {name: o.error for name, o in by_name.items() if o.error is not None}
    assert {name: e.cause for name, e in failed.items()} == {
        "foxtrot": "http_400",
        "golf": "http_500",
        "hotel": "rate_limited",
    }
    assert not failed["foxtrot"].retryable
    assert "maximum context length" in failed["foxtrot"].detail
    assert by_name["foxtrot"].attempts == 1
    assert by_name["golf"].attempts == by_name["hotel"].attempts == FAST_RETRY.max_attempts
    assert failed["hotel"].retry_after == pytest.approx(0.05)  # the server's Retry-After
    assert all(o.completion is None for o in by_name.values() if not o.ok)
    # The server saw exactly the attempts the outcomes report.
    assert calls == {f"{name} question": o.attempts for name, o in by_name.items()}

    ok = [o.completion for o in outcomes if o.completion is not None]
    assert summary(engine) == {
        "requests": 10,
        "succeeded": 7,
        "cached": 0,
        "retries": {
            "rate_limited": 1 + 2,
            "http_500": 1 + 2,
            "connection": 1,
            "bad_response": 1,
            "timeout": 1,
        },
        "failures": {"http_400": 1, "http_500": 1, "rate_limited": 1},
        "prompt_tokens": sum(c.prompt_tokens for c in ok),
        "completion_tokens": sum(c.completion_tokens for c in ok),
        "cost": 0.0,
        "unpriced_calls": 7,
    }


def test_a_rate_limited_prompt_succeeds_on_its_second_attempt(stub: StubServer) -> None:
    stub.fail("limited", "429")
    engine = make_engine(stub)
    outcome, other = run(run_all(engine, [ask("limited prompt"), ask("free prompt")]))
    assert outcome.ok and outcome.attempts == 2
    assert other.ok and other.attempts == 1
    assert engine.stats.retries == {"rate_limited": 1}
    assert engine.stats.succeeded == 2 and not engine.stats.failures
    assert stub.calls == {"limited prompt": 2, "free prompt": 1}


# -- order and concurrency ---------------------------------------------------------------


class Watched(StubServer):
    """The stub server, noting how many calls are in flight and in which order they end."""

    def __init__(self, latency: float = 0.0, slow_prompt: str | None = None) -> None:
        super().__init__(latency=latency)
        self.slow_prompt = slow_prompt
        self.in_flight = 0
        self.peak = 0
        self.finished: list[str] = []

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            prompt = (await request.json())["messages"][-1]["content"]
            if prompt == self.slow_prompt:
                await asyncio.sleep(0.5)
            response = await super()._chat(request)
            self.finished.append(prompt)
            return response
        finally:
            self.in_flight -= 1


def test_map_yields_in_input_order_whatever_finishes_first() -> None:
    requests = [ask(f"ordered {i}") for i in range(12)]
    with Watched(slow_prompt="ordered 0") as server:
        outcomes = run(run_all(make_engine(server, concurrency=12), requests))
        finished = list(server.finished)
    assert finished[0] != "ordered 0"  # the first request was answered last...
    assert [o.request for o in outcomes] == requests  # ...and still came out first
    assert [o.completion.text.split("to: ")[1] for o in outcomes if o.completion] == [
        f"ordered {i}" for i in range(12)
    ]


def test_never_more_calls_in_flight_than_the_concurrency() -> None:
    with Watched(latency=0.05) as server:
        # Retries keep their slot while they wait: they must not raise the count either.
        server.fail("wave 3 ", "429", "500")
        server.fail("wave 7 ", "drop")
        engine = make_engine(server, concurrency=4)
        outcomes = run(run_all(engine, [ask(f"wave {i} ") for i in range(40)]))
        peak, calls = server.peak, sum(server.calls.values())
    assert all(o.ok for o in outcomes)
    assert calls == 40 + 3
    assert 1 < peak <= 4


def test_breaking_out_of_map_cancels_the_rest_without_errors(stub: StubServer) -> None:
    stub.latency = 0.05
    concurrency, wanted = 2, 3

    async def first_few() -> tuple[list[Outcome], int]:
        async with make_engine(stub, concurrency=concurrency) as engine:
            taken: list[Outcome] = []
            async for outcome in engine.map(ask(f"many {i}") for i in range(200)):
                taken.append(outcome)
                if len(taken) == wanted:
                    break
            # The abandoned generator is closed, which cancels every call it started.
            deadline = time.monotonic() + 30
            while len(asyncio.all_tasks()) > 1:
                assert time.monotonic() < deadline, asyncio.all_tasks()
                await asyncio.sleep(0.01)
            calls = sum(stub.calls.values())
            await asyncio.sleep(0.3)
            assert sum(stub.calls.values()) == calls  # nothing goes on behind our back
            assert not engine.stats.failures
            return taken, calls

    taken, calls = run(first_few())
    assert [o.request.messages[0].content for o in taken] == ["many 0", "many 1", "many 2"]
    assert all(o.ok for o in taken)
    # At most the window map keeps ahead of its consumer was ever started.
    assert wanted <= calls <= wanted + 4 * concurrency


def test_requests_per_minute_hold_back_the_call_over_the_limit(stub: StubServer) -> None:
    async def four_calls() -> None:
        async with make_engine(stub, limits=RateLimits(requests_per_minute=3)) as engine:
            tasks = [asyncio.create_task(engine.complete(ask(f"limited {i}"))) for i in range(4)]
            pending = set(tasks)
            while len(pending) > 1:
                done, pending = await asyncio.wait(
                    pending, timeout=30, return_when=asyncio.FIRST_COMPLETED
                )
                assert done, "a call within the limit did not finish"
            await asyncio.sleep(0.3)
            # The fourth call must wait 20 s for the bucket to refill one request.
            assert not next(iter(pending)).done()
            assert sum(stub.calls.values()) == 3
            pending.pop().cancel()

    run(four_calls())


# -- cache -------------------------------------------------------------------------------


def varied_requests() -> list[ChatRequest]:
    return [ask(f"cached {i}", seed=i, temperature=0.1 * (i % 5)) for i in range(20)]


def test_a_second_run_is_served_from_the_cache(stub: StubServer, tmp_path: Path) -> None:
    prices = PriceTable(models={MODEL: Price(prompt=1.0, completion=3.0)})
    cache = tmp_path / "cache.sqlite"
    first_engine = make_engine(stub, cache=RequestCache(cache), prices=prices)
    first = run(run_all(first_engine, varied_requests()))
    assert sum(stub.calls.values()) == 20

    again_engine = make_engine(stub, cache=RequestCache(cache), prices=prices)
    again = run(run_all(again_engine, varied_requests()))
    with urllib.request.urlopen(f"http://127.0.0.1:{stub.port}/stats", timeout=30) as response:
        assert sum(json.load(response)["calls"].values()) == 20  # no new call at all
    assert [o.completion for o in again] == [o.completion for o in first]
    assert all(o.cached and o.attempts == 0 for o in again)
    assert not any(o.cached for o in first)

    # Cached answers count as cached and add nothing to what this run used...
    assert summary(again_engine) == {
        "requests": 20,
        "succeeded": 20,
        "cached": 20,
        "retries": {},
        "failures": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0.0,
        "unpriced_calls": 0,
    }
    assert again_engine.stats.llm_seconds == 0
    assert first_engine.stats.cost > 0 and first_engine.stats.completion_tokens > 0
    # ...while a record built from them still tells what its answer first cost.
    assert usage_of(*again) == usage_of(*first)


def test_a_changed_request_is_a_new_call(stub: StubServer, tmp_path: Path) -> None:
    base = ask("changeable", seed=1, temperature=0.5)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    variants = [
        base.model_copy(update={"seed": 2}),
        base.model_copy(update={"temperature": 0.6}),
        base.model_copy(update={"max_tokens": 17}),
        base.model_copy(update={"json_schema": schema}),
        base.model_copy(
            update={"messages": [Message(role="system", content="Be brief."), *base.messages]}
        ),
    ]
    cache = tmp_path / "cache.sqlite"
    first = run(run_all(make_engine(stub, cache=RequestCache(cache)), [base, *variants]))
    again = run(run_all(make_engine(stub, cache=RequestCache(cache)), [base, *variants]))
    assert not any(o.cached for o in first) and all(o.cached for o in again)
    assert stub.calls == {"changeable": 6}


def test_the_cache_survives_a_new_process(stub: StubServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    first = run(run_all(make_engine(stub, cache=RequestCache(cache)), varied_requests()))
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from datamill.llm import ChatRequest
        from datamill.llm.cache import RequestCache
        from datamill.llm.engine import Engine
        from datamill.llm.openai_compat import OpenAICompatBackend

        url, model, cache = sys.argv[1:]
        requests = [ChatRequest.model_validate(r) for r in json.load(sys.stdin)]

        async def main():
            async with Engine(OpenAICompatBackend(url, model), cache=RequestCache(cache)) as e:
                outcomes = [o async for o in e.map(requests)]
            print(json.dumps([o.completion.model_dump() for o in outcomes if o.cached]))

        asyncio.run(main())
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script, stub.url, MODEL, str(cache)],
        input=json.dumps([r.model_dump(mode="json") for r in varied_requests()]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cached = [Completion.model_validate(c) for c in json.loads(child.stdout)]
    assert cached == [o.completion for o in first]
    assert sum(stub.calls.values()) == 20


def test_identical_requests_in_flight_at_once_are_sent_once(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.latency = 0.2
    twice, other = ask("same question", seed=4), ask("other question", seed=4)
    engine = make_engine(stub, cache=RequestCache(tmp_path / "cache.sqlite"))

    async def go() -> list[Outcome]:
        async with engine:
            calls = [engine.complete(twice), engine.complete(twice)]
            return [*await asyncio.gather(*calls), *[o async for o in engine.map([twice, other])]]

    first, second, third, fourth = run(go())
    assert stub.calls == {"same question": 1, "other question": 1}
    assert first.ok and not first.cached and first.attempts == 1
    assert all(o.cached and o.attempts == 0 for o in (second, third))
    assert first.completion == second.completion == third.completion
    assert fourth.ok and not fourth.cached
    assert engine.stats.requests == 4 and engine.stats.cached == 2
    assert engine.stats.completion_tokens == sum(
        o.completion.completion_tokens for o in (first, fourth) if o.completion
    )


def test_a_shared_call_that_fails_fails_for_every_caller_once(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.latency = 0.2
    stub.fail("refused", "400")
    engine = make_engine(stub, cache=RequestCache(tmp_path / "cache.sqlite"))

    async def go() -> list[Outcome]:
        async with engine:
            return list(await asyncio.gather(*(engine.complete(ask("refused")) for _ in range(3))))

    outcomes = run(go())
    assert stub.calls == {"refused": 1}
    assert [o.error.cause if o.error else None for o in outcomes] == ["http_400"] * 3
    assert engine.stats.failures == {"http_400": 3} and engine.stats.cached == 0


def test_a_caller_waiting_on_a_cancelled_call_makes_its_own(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.latency = 0.3
    engine = make_engine(stub, cache=RequestCache(tmp_path / "cache.sqlite"))

    async def go() -> Outcome:
        async with engine:
            first = asyncio.create_task(engine.complete(ask("abandoned")))
            await asyncio.sleep(0.1)
            second = asyncio.create_task(engine.complete(ask("abandoned")))
            await asyncio.sleep(0.1)
            first.cancel()
            return await second

    outcome = run(go())
    assert outcome.ok and not outcome.cached and outcome.attempts == 1
    assert stub.calls == {"abandoned": 2}


def test_without_a_cache_identical_requests_are_each_sent(stub: StubServer) -> None:
    stub.latency = 0.1

    async def go(engine: Engine) -> list[Outcome]:
        async with engine:
            return list(await asyncio.gather(*(engine.complete(ask("again")) for _ in range(2))))

    outcomes = run(go(make_engine(stub)))
    assert all(o.ok and not o.cached for o in outcomes)
    assert stub.calls == {"again": 2}


# -- structured output -------------------------------------------------------------------


class Answer(BaseModel):
    answer: str
    echo: str


def words(text: str) -> int:
    return len(text.split())


def test_invalid_json_is_asked_again_and_parsed_on_the_second_attempt(stub: StubServer) -> None:
    valid = '{"answer": "Paris", "echo": "capital"}'
    stub.reply("capital", "The capital is Paris.", valid)
    engine = make_engine(stub)
    request = ask("What is the capital of France?", seed=5)

    async def go() -> Outcome:
        async with engine:
            return await engine.complete_json(request, Answer)

    outcome = run(go())
    assert outcome.ok and outcome.parsed == Answer(answer="Paris", echo="capital")
    assert stub.calls == {request.messages[0].content: 2}
    assert outcome.request.seed != 5  # asked again with another seed, so not from cache
    assert outcome.request.json_schema == Answer.model_json_schema()
    assert engine.stats.retries == {"invalid_output": 1}
    assert engine.stats.requests == engine.stats.succeeded == 1
    # Both answers were paid for: the run, the outcome and the record's usage count both.
    assert engine.stats.prompt_tokens == 2 * words(request.messages[0].content or "")
    assert engine.stats.completion_tokens == words("The capital is Paris.") + words(valid)
    assert outcome.attempts == 2 and len(outcome.rejected) == 1
    usage = usage_of(outcome)
    assert usage.calls == 2
    assert usage.prompt_tokens == engine.stats.prompt_tokens
    assert usage.completion_tokens == engine.stats.completion_tokens


def test_every_structured_attempt_is_priced_and_a_cached_rerun_charges_nothing(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.reply("capital", "Paris, I think.", "still no JSON")  # then the stub's own JSON
    prices = PriceTable(models={MODEL: Price(prompt=1.0, completion=2.0)})
    request = ask("What is the capital of France?", seed=1)

    def once() -> tuple[Outcome, Engine]:
        engine = make_engine(stub, cache=RequestCache(tmp_path / "cache.sqlite"), prices=prices)

        async def go() -> Outcome:
            async with engine:
                return await engine.complete_json(request, Answer)

        return run(go()), engine

    first, paid = once()
    assert first.ok and first.attempts == 3 and isinstance(first.parsed, Answer)
    assert stub.calls == {"What is the capital of France?": 3}
    usage = usage_of(first)
    assert usage.calls == 3
    assert usage.cost == pytest.approx(paid.stats.cost)
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert paid.stats.cost == pytest.approx(expected) and paid.stats.unpriced == 0

    again, free = once()  # every attempt is now in the cache
    assert stub.calls == {"What is the capital of France?": 3}
    assert again.parsed == first.parsed and usage_of(again) == usage
    assert free.stats.cost == 0 and free.stats.completion_tokens == 0
    assert free.stats.cached == 1 and free.stats.retries == {"invalid_output": 2}


def test_always_invalid_json_is_a_failure_that_keeps_the_raw_text(stub: StubServer) -> None:
    stub.reply("poem", *["Roses are red, {not json"] * 3)
    engine = make_engine(stub)

    async def go() -> Outcome:
        async with engine:
            return await engine.complete_json(ask("Write a poem as JSON."), Answer, attempts=3)

    outcome = run(go())
    assert outcome.error is not None and outcome.error.cause == "invalid_output"
    assert outcome.error.raw == "Roses are red, {not json"
    assert outcome.parsed is None
    assert stub.calls == {"Write a poem as JSON.": 3}
    assert outcome.attempts == 3 and usage_of(outcome).calls == 3
    assert engine.stats.failures == {"invalid_output": 1}
    assert engine.stats.retries == {"invalid_output": 2}
    assert engine.stats.completion_tokens == 3 * words("Roses are red, {not json")


def test_fenced_json_and_raw_newlines_in_strings_parse(stub: StubServer) -> None:
    stub.reply("fenced", '```json\n{"answer": "a", "echo": "b"}\n```')
    stub.reply("newline", '{"answer": "line one\nline two", "echo": "e"}')
    engine = make_engine(stub)

    async def go() -> list[Outcome]:
        async with engine:
            return [await engine.complete_json(ask(p), Answer) for p in ["fenced", "newline"]]

    fenced, newline = run(go())
    assert fenced.parsed == Answer(answer="a", echo="b")
    assert newline.parsed == Answer(answer="line one\nline two", echo="e")
    assert not engine.stats.retries and engine.stats.succeeded == 2


def test_a_failed_call_in_structured_output_is_not_an_invalid_output(stub: StubServer) -> None:
    stub.fail("refused", "400")
    engine = make_engine(stub)

    async def go() -> tuple[Outcome, Outcome]:
        async with engine:
            refused = await engine.complete_json(ask("refused"), Answer)
            return refused, await engine.complete_json(ask("fine"), Answer)

    refused, fine = run(go())
    assert refused.error is not None and refused.error.cause == "http_400"
    assert isinstance(fine.parsed, Answer)  # the stub answers JSON when asked for it
    assert engine.stats.failures == {"http_400": 1} and not engine.stats.retries
    assert stub.calls == {"refused": 1, "fine": 1}


def test_map_with_a_schema_makes_structured_calls_in_order(stub: StubServer) -> None:
    stub.reply("second", "no JSON here")  # then the stub's own answer, which fits the schema
    engine = make_engine(stub, concurrency=2)
    prompts = ["first", "second", "third", "fourth"]

    async def go() -> list[Outcome]:
        async with engine:
            return [o async for o in engine.map([ask(p) for p in prompts], schema=Answer)]

    outcomes = run(go())
    assert [o.request.messages[0].content for o in outcomes] == prompts
    assert all(isinstance(o.parsed, Answer) for o in outcomes)
    assert stub.calls == {"first": 1, "second": 2, "third": 1, "fourth": 1}
    assert engine.stats.retries == {"invalid_output": 1} and engine.stats.succeeded == 4


# -- accounting and the API key ----------------------------------------------------------


def test_costs_follow_the_price_table_and_unknown_models_are_unpriced(stub: StubServer) -> None:
    prices = PriceTable(models={MODEL: Price(prompt=2.0, completion=10.0)})
    requests = [ask(" ".join(["word"] * n)) for n in range(1, 6)]
    priced = make_engine(stub, prices=prices)
    outcomes = run(run_all(priced, requests))
    for o in outcomes:
        assert o.completion is not None
        assert o.completion.prompt_tokens > 0 and o.completion.completion_tokens > 0
        expected = (o.completion.prompt_tokens * 2.0 + o.completion.completion_tokens * 10.0) / 1e6
        assert o.cost == pytest.approx(expected)
    assert priced.stats.cost == pytest.approx(sum(o.cost or 0 for o in outcomes))
    assert priced.stats.unpriced == 0
    total = usage_of(*outcomes)
    assert total.calls == 5
    assert total.prompt_tokens == priced.stats.prompt_tokens == 1 + 2 + 3 + 4 + 5
    assert total.completion_tokens == priced.stats.completion_tokens
    assert total.cost == pytest.approx(priced.stats.cost)

    unknown = Engine(OpenAICompatBackend(stub.url, "unknown-model"), prices=prices)
    outcomes = run(run_all(unknown, requests))
    assert all(o.ok and o.cost is None for o in outcomes)
    assert unknown.stats.unpriced == 5 and unknown.stats.cost == 0
    assert usage_of(*outcomes).cost is None


class Recording(StubServer):
    """The stub server, keeping the headers and body of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        return await super()._chat(request)


def test_the_api_key_is_sent_as_a_bearer_token_and_kept_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-datamill-test-5f0c2b9e"
    monkeypatch.setenv("DATAMILL_TEST_API_KEY", key)
    cache = tmp_path / "cache.sqlite"
    request = ask("keyed", seed=3)
    with Recording() as server:
        backend = OpenAICompatBackend(server.url, MODEL, api_key_env="DATAMILL_TEST_API_KEY")
        engine = Engine(backend, cache=RequestCache(cache))

        async def go() -> Outcome:
            async with engine:
                return await engine.complete_json(request, Answer)

        outcome = run(go())
        seen = list(server.requests)
    assert outcome.ok and outcome.completion is not None

    assert [headers["Authorization"] for headers, _ in seen] == [f"Bearer {key}"]
    assert key not in json.dumps(backend.payload(request))
    assert all(key.encode() not in body for _, body in seen)
    for file in tmp_path.iterdir():  # the cache, its WAL and shared memory
        assert key.encode() not in file.read_bytes(), file
    assert key not in json.dumps(engine.stats.as_dict())
    assert key not in outcome.completion.model_dump_json()
    assert key not in repr(outcome)


def test_no_authorization_header_without_a_key() -> None:
    with Recording() as server:
        run(run_all(make_engine(server), [ask("anonymous")]))
        headers = server.requests[0][0]
    assert "Authorization" not in headers
