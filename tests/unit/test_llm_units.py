"""The LLM engine's parts on their own: retries, payloads, cache keys, parsing, limits, prices."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from datamill.errors import DatamillError, InputError, LLMError
from datamill.llm import ChatRequest, Completion
from datamill.llm.cache import RequestCache, cache_key
from datamill.llm.engine import Engine, Outcome, RunStats, parse_json, samples, usage_of
from datamill.llm.limits import Bucket, RateLimits
from datamill.llm.openai_compat import OpenAICompatBackend, _retry_after
from datamill.llm.prices import Price, PriceTable
from datamill.llm.retry import RetryPolicy
from datamill.records import Message

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def ask(text: str = "hello", **params: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)  # type: ignore[arg-type]


def completion(text: str = "hi", prompt: int = 10, done: int = 5, model: str = "m") -> Completion:
    return Completion(
        text=text,
        prompt_tokens=prompt,
        completion_tokens=done,
        seconds=0.5,
        model=model,
        backend="openai",
    )


# -- retries -----------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(base_seconds=0.5, max_seconds=3.0)
    error = LLMError("http_500", "boom", retryable=True)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (10, 3.0)]:
        delays = [policy.delay(attempt, error, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling


def test_backoff_never_waits_less_than_retry_after() -> None:
    policy = RetryPolicy(base_seconds=0.01, max_seconds=60.0)
    rng = random.Random(2)
    error = LLMError("rate_limited", "slow down", retryable=True, retry_after=2.5)
    assert all(policy.delay(a, error, rng) >= 2.5 for a in range(1, 6) for _ in range(50))
    assert policy.delay(1, error, rng) == 2.5  # the jitter (at most 0.01 s) is smaller
    # A Retry-After past the longest wait is capped there.
    huge = LLMError("rate_limited", "come back tomorrow", retryable=True, retry_after=86_400)
    assert policy.delay(1, huge, rng) == 60.0


def test_only_retryable_errors_are_retried_and_only_up_to_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    retryable = LLMError("timeout", "late", retryable=True)
    assert policy.should_retry(1, retryable) and policy.should_retry(2, retryable)
    assert not policy.should_retry(3, retryable)
    assert not policy.should_retry(1, LLMError("http_400", "too long"))


def test_retry_after_header_in_seconds_or_as_a_date() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after("0.05") == 0.05
    assert _retry_after("-3") == 0.0
    assert _retry_after(None) is None and _retry_after("") is None
    assert _retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 20 < (_retry_after(later) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert _retry_after(earlier) == 0.0


# -- payloads ----------------------------------------------------------------------------


def test_payload_carries_the_messages_and_sampling_parameters() -> None:
    backend = OpenAICompatBackend("http://127.0.0.1:1/v1/", "some-model")
    assert backend.base_url == "http://127.0.0.1:1/v1"
    body = backend.payload(ask("hi", temperature=0.2, max_tokens=9, seed=4, stop=["\n"]))
    assert body == {
        "model": "some-model",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 1.0,
        "max_tokens": 9,
        "seed": 4,
        "stop": ["\n"],
    }
    assert "seed" not in backend.payload(ask("hi"))  # unset parameters are left out


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "json_schema",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": SCHEMA},
                }
            },
        ),
        ("json_object", {"response_format": {"type": "json_object", "schema": SCHEMA}}),
        ("guided_json", {"guided_json": SCHEMA}),
    ],
)
def test_payload_asks_for_json_the_way_the_server_understands(
    mode: str, expected: dict[str, object]
) -> None:
    backend = OpenAICompatBackend("http://127.0.0.1:1/v1", "m", structured=mode)  # type: ignore[arg-type]
    body = backend.payload(ask(json_schema=SCHEMA))
    assert {k: v for k, v in body.items() if k in {"response_format", "guided_json"}} == expected
    plain = backend.payload(ask())
    assert "response_format" not in plain and "guided_json" not in plain


def test_a_missing_api_key_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMILL_ABSENT_KEY", raising=False)
    with pytest.raises(DatamillError, match="DATAMILL_ABSENT_KEY"):
        OpenAICompatBackend("http://127.0.0.1:1/v1", "m", api_key_env="DATAMILL_ABSENT_KEY")
    monkeypatch.setenv("DATAMILL_ABSENT_KEY", "")
    with pytest.raises(DatamillError, match="DATAMILL_ABSENT_KEY"):
        OpenAICompatBackend("http://127.0.0.1:1/v1", "m", api_key_env="DATAMILL_ABSENT_KEY")


# -- cache -------------------------------------------------------------------------------


def test_cache_key_changes_with_everything_that_changes_the_answer() -> None:
    base = ask("question", seed=1, temperature=0.5)
    key = cache_key("openai:m", base)
    assert cache_key("openai:m", ask("question", seed=1, temperature=0.5)) == key
    variants = [
        base.model_copy(update={"seed": 2}),
        base.model_copy(update={"seed": None}),
        base.model_copy(update={"temperature": 0.6}),
        base.model_copy(update={"top_p": 0.9}),
        base.model_copy(update={"max_tokens": 100}),
        base.model_copy(update={"stop": ["."]}),
        base.model_copy(update={"json_schema": SCHEMA}),
        base.model_copy(update={"messages": [Message(role="user", content="question?")]}),
        base.model_copy(
            update={"messages": [Message(role="system", content="Be brief."), *base.messages]}
        ),
    ]
    keys = {cache_key("openai:m", v) for v in variants}
    assert len(keys) == len(variants) and key not in keys
    assert cache_key("openai:other", base) != key
    # The schema's key order is not part of what was asked.
    reordered = dict(reversed(SCHEMA.items()))
    assert cache_key("openai:m", ask(json_schema=reordered)) == cache_key(
        "openai:m", ask(json_schema=SCHEMA)
    )


def test_the_server_address_is_not_part_of_the_cache_identity() -> None:
    here = Engine(OpenAICompatBackend("http://127.0.0.1:8000/v1", "m"))
    there = Engine(OpenAICompatBackend("http://10.0.0.7:9000/v1", "m"))
    elsewhere = Engine(OpenAICompatBackend("http://127.0.0.1:8000/v1", "other"))
    assert here.identity == there.identity != elsewhere.identity


def test_cache_writes_in_batches_and_reads_its_own_pending_answers(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    writer = RequestCache(path, batch=3, max_delay=3600)
    reader = RequestCache(path)
    writer.put("a", completion("A"))
    writer.put("b", completion("B"))
    assert writer.get("a") == completion("A")  # pending, not on disk yet
    assert reader.get("a") is None
    writer.put("c", completion("C"))  # the batch is full: written by the writer thread
    deadline = time.monotonic() + 30
    while reader.get("c") is None:
        assert time.monotonic() < deadline, "the full batch was never written"
        time.sleep(0.01)
    assert reader.get("a") == completion("A") and writer.get("b") == completion("B")
    writer.put("d", completion("D"))
    writer.close()  # closing writes what is left
    reader.close()
    again = RequestCache(path)
    assert len(again) == 4 and again.get("d") == completion("D")
    assert again.get("missing") is None
    again.close()


def test_a_failed_cache_write_is_raised_and_its_answers_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = RequestCache(path, batch=2, max_delay=3600)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    cache._write_db.execute("PRAGMA busy_timeout=50")
    cache.put("a", completion("A"))
    cache.put("b", completion("B"))  # handed to the writer, which cannot get the lock
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        cache.flush()
    assert cache.get("a") == completion("A")  # still served, and written once it can be
    blocker.rollback()
    blocker.close()
    cache.close()
    again = RequestCache(path)
    assert len(again) == 2
    again.close()


# -- parsing and samples -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"answer": "x"}',
        '  {"answer": "x"}\n',
        '```json\n{"answer": "x"}\n```',
        '```\n{"answer": "x"}\n```\n',
    ],
)
def test_parse_json_accepts_bare_and_fenced_json(text: str) -> None:
    assert parse_json(text) == {"answer": "x"}


def test_parse_json_allows_raw_newlines_in_strings_and_refuses_prose() -> None:
    assert parse_json('{"answer": "one\ntwo\ttabs"}') == {"answer": "one\ntwo\ttabs"}
    with pytest.raises(ValueError):
        parse_json("Sure! Here is the JSON you asked for.")


def test_samples_are_the_same_prompt_with_consecutive_seeds() -> None:
    request = ask("name a colour", seed=10, temperature=1.0)
    copies = samples(request, 3)
    assert [c.seed for c in copies] == [10, 11, 12]
    assert all(
        c.model_dump(exclude={"seed"}) == request.model_dump(exclude={"seed"}) for c in copies
    )
    assert len({cache_key("openai:m", c) for c in copies}) == 3
    assert [c.seed for c in samples(ask(), 2)] == [0, 1]


# -- accounting --------------------------------------------------------------------------


def test_price_table_cost_is_per_million_tokens() -> None:
    prices = PriceTable(models={"m": Price(prompt=0.15, completion=0.6)})
    assert prices.cost("m", 1_000_000, 0) == pytest.approx(0.15)
    assert prices.cost("m", 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.6) / 1e6)
    assert prices.cost("m", 0, 0) == 0
    assert prices.cost("unknown", 10, 10) is None


def test_price_table_loads_yaml_and_names_the_bad_field(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text("currency: EUR\nmodels:\n  m: {prompt: 1.0, completion: 2.0}\n")
    table = PriceTable.load(good)
    assert table.currency == "EUR" and table.cost("m", 1000, 1000) == pytest.approx(0.003)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {prompt: -1, completion: 2.0}\n")
    with pytest.raises(InputError, match=r"models\.m\.prompt"):
        PriceTable.load(bad)
    with pytest.raises(InputError, match=r"missing\.yaml"):
        PriceTable.load(tmp_path / "missing.yaml")


def test_usage_of_adds_up_the_calls_behind_a_record() -> None:
    a = Outcome(ask(), completion(prompt=10, done=5), attempts=1, cost=0.25)
    b = Outcome(ask(), completion(prompt=7, done=3), cached=True, cost=0.5)
    failed = Outcome(ask(), error=LLMError("http_400", "no"), attempts=1)
    usage = usage_of(a, b, failed)
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (2, 17, 8)
    assert usage.seconds == pytest.approx(1.0) and usage.cost == pytest.approx(0.75)
    assert usage_of(Outcome(ask(), completion())).cost is None  # no price known
    assert usage_of().calls == 0


def test_run_stats_count_outcomes_by_cause_and_charge_only_paid_calls() -> None:
    stats = RunStats()
    stats.add(Outcome(ask(), completion(prompt=10, done=5), attempts=1, cost=0.25))
    stats.add(Outcome(ask(), completion(prompt=4, done=4), attempts=2))  # unpriced
    stats.add(Outcome(ask(), completion(prompt=99, done=99), cached=True, cost=9.0))
    stats.add(Outcome(ask(), error=LLMError("timeout", "late", retryable=True), attempts=6))
    stats.add(Outcome(ask(), error=LLMError("timeout", "late", retryable=True), attempts=6))
    summary = stats.as_dict()
    assert summary["requests"] == 5 and summary["succeeded"] == 3 and summary["cached"] == 1
    assert summary["failures"] == {"timeout": 2}
    assert (summary["prompt_tokens"], summary["completion_tokens"]) == (14, 9)
    assert summary["cost"] == 0.25 and summary["unpriced_calls"] == 1
    assert summary["llm_seconds"] == 1.0
    assert json.loads(json.dumps(summary)) == summary


def test_engine_refuses_a_concurrency_below_one() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Engine(OpenAICompatBackend("http://127.0.0.1:1/v1", "m"), concurrency=0)


# -- rate limits -------------------------------------------------------------------------


def test_a_bucket_gives_its_capacity_at_once_then_makes_the_next_taker_wait() -> None:
    async def go() -> None:
        bucket = Bucket(6)  # 6 a minute: one more every 10 s
        for _ in range(6):
            await asyncio.wait_for(bucket.take(1), 10)
        assert bucket.level < 1
        seventh = asyncio.create_task(bucket.take(1))
        await asyncio.sleep(0.2)
        assert not seventh.done()
        seventh.cancel()

    asyncio.run(go())


def test_a_take_larger_than_the_bucket_still_runs() -> None:
    async def go() -> None:
        bucket = Bucket(6)
        await asyncio.wait_for(bucket.take(1000), 10)  # one huge call: capped at capacity
        assert bucket.level < 1

    asyncio.run(go())


def test_overspending_a_bucket_makes_later_takers_pay_it_back() -> None:
    async def go() -> None:
        bucket = Bucket(60)
        await bucket.take(10)
        bucket.adjust(100)  # the call used 100 more than it reserved
        assert bucket.level < -40
        later = asyncio.create_task(bucket.take(1))
        await asyncio.sleep(0.2)
        assert not later.done()
        later.cancel()
        bucket.adjust(-1000)  # a refund never fills it past its capacity
        assert bucket.level == 60

    asyncio.run(go())


def test_rate_limits_reserve_an_estimate_and_settle_on_the_real_usage() -> None:
    async def go() -> None:
        limits = RateLimits(requests_per_minute=2, tokens_per_minute=600)
        assert limits.requests is not None and limits.tokens is not None
        await asyncio.wait_for(limits.acquire(200), 10)
        assert limits.requests.level < 1.5  # refills 1/30 a second
        assert 400 <= limits.tokens.level < 450  # refills 10 a second
        limits.settle(200, 50)  # 150 fewer tokens used than reserved: refunded
        assert 550 <= limits.tokens.level <= 600

    asyncio.run(go())


def test_no_limits_never_wait() -> None:
    async def go() -> None:
        limits = RateLimits()
        assert limits.requests is None and limits.tokens is None
        for _ in range(1000):
            await asyncio.wait_for(limits.acquire(10**9), 10)
        limits.settle(10, 10**9)

    asyncio.run(go())


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Bucket(0)
