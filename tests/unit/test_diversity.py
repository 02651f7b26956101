"""Diversity metrics on crafted sets, against reference implementations, and streaming memory."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest

from datamill.quality import diversity as div
from datamill.quality.diversity import Profiler, distinct_n, profile_records, tokenize
from datamill.quality.self_bleu import self_bleu
from datamill.records import Record
from support import chat, oasst_replies, require

WORDS = [f"w{i}" for i in range(40)]


def random_texts(seed: int, n: int, vocab: list[str] = WORDS, longest: int = 25) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(vocab) for _ in range(rng.randint(1, longest))] for _ in range(n)]


def test_identical_texts_have_minimal_distinct_n_and_self_bleu_one() -> None:
    text = "The quick brown fox jumps over the lazy dog ."
    profile = profile_records([chat("q", text) for _ in range(50)])
    n_tokens = len(tokenize(text))
    assert profile.distinct_1 == pytest.approx(len(set(tokenize(text))) / (50 * n_tokens))
    assert profile.distinct_2 == pytest.approx((n_tokens - 1) / (50 * (n_tokens - 1)))
    assert profile.self_bleu == pytest.approx(1.0)
    assert profile.compression_ratio > 10


def test_varied_texts_score_high() -> None:
    replies = oasst_replies()
    profile = profile_records(replies)
    assert profile.distinct_2 > 0.5 and profile.distinct_3 > 0.75
    assert profile.self_bleu < 0.5
    assert profile.compression_ratio < 4
    assert profile.texts == len(replies) and profile.sample == len(replies)


def test_self_bleu_equals_sacrebleu_sentence_bleu() -> None:
    bleu = require("sacrebleu.metrics", "pip install 'datamill[dev]'").BLEU(
        tokenize="none", effective_order=True
    )
    sets = [
        random_texts(1, 40),
        random_texts(2, 30, WORDS[:6], longest=6),  # many shared n-grams, ties in length
        [["a"], ["a"], ["b", "c"], ["a", "b", "c", "d", "e"]],  # shorter than the order
        [tokenize(r.response or "") for r in oasst_replies()[:25]],
    ]
    for texts in sets:
        expected = [
            bleu.sentence_score(" ".join(t), [" ".join(o) for j, o in enumerate(texts) if j != i])
            for i, t in enumerate(texts)
        ]
        mean = sum(s.score for s in expected) / len(expected) / 100
        assert self_bleu(texts) == pytest.approx(mean, abs=1e-9)


def test_self_bleu_needs_two_texts() -> None:
    assert self_bleu([["only", "one"]]) is None
    assert profile_records([chat("q", "just one reply")]).self_bleu is None


def test_distinct_n_matches_brute_force() -> None:
    texts = random_texts(3, 60)
    for n in (1, 2, 3):
        grams = [tuple(t[i : i + n]) for t in texts for i in range(len(t) - n + 1)]
        assert distinct_n(texts, n) == pytest.approx(len(set(grams)) / len(grams))
    assert distinct_n([["a"]], 2) is None


def test_mattr_slides_over_the_stream_and_falls_back_to_ttr() -> None:
    short = Profiler(window=100)
    short.add_text("a b a c")
    assert short.profile().mattr == pytest.approx(3 / 4)
    windowed = Profiler(window=2)
    windowed.add_text("a a b")  # windows: [a a] 1/2, [a b] 2/2
    windowed.add_text("b")  # [b b] 1/2
    assert windowed.profile().mattr == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_mattr_does_not_fall_with_more_of_the_same_kind_of_text() -> None:
    texts = [" ".join(t) for t in random_texts(4, 400, [f"v{i}" for i in range(300)])]
    small, large = Profiler(), Profiler()
    for t in texts[:50]:
        small.add_text(t)
    for t in texts:
        large.add_text(t)
    assert large.profile().mattr == pytest.approx(small.profile().mattr, rel=0.05)


def test_coverage_counts_fields_and_metadata() -> None:
    records = [
        chat(
            "q",
            f"reply {i}",
            domain="legal" if i % 4 else "finance",
            metadata={"topic": f"t{i % 2}"},
        )
        for i in range(8)
    ] + [chat("q", "x", metadata={"persona": {"mood": "angry"}})]
    cov = profile_records(records).coverage
    assert cov["domain"].distinct == 2 and cov["domain"].records == 8
    assert cov["domain"].top[0] == ("legal", 6)
    assert cov["topic"].evenness == pytest.approx(1.0)
    assert cov["topic"].effective == pytest.approx(2.0)
    assert cov["persona"].top == [('{"mood": "angry"}', 1)]
    assert "task" not in cov


def test_coverage_values_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(div, "MAX_VALUES", 5)
    cov = profile_records([chat("q", "r", metadata={"topic": str(i)}) for i in range(20)]).coverage
    assert cov["topic"].distinct == 5 and cov["topic"].capped and cov["topic"].records == 20


def test_sample_is_reproducible_and_limited() -> None:
    records = [chat("q", " ".join(t)) for t in random_texts(5, 300)]
    a = profile_records(records, sample=50, seed=7)
    b = profile_records(records, sample=50, seed=7)
    c = profile_records(records, sample=50, seed=8)
    assert a == b and a.sample == 50 and a.distinct_2 != c.distinct_2
    full = Profiler(sample=100).add_all(records)
    assert full.profile(limit=30).sample == 30


def test_empty_hostile_and_huge_texts() -> None:
    records = [
        chat("q"),  # no response at all
        chat("q", "   "),
        chat("q", "<script>alert(1)</script>\x00\x1b[31m"),
        chat("q", "word " * 250_000),  # ~1.25 MB
        chat("q", "Привет мир 你好世界 مرحبا"),
    ]
    profile = profile_records(records)
    assert profile.records == 5 and profile.texts == 3
    assert profile.tokens > 250_000
    empty = profile_records([chat("q")])
    assert empty.distinct_1 is None and empty.mattr is None and empty.compression_ratio is None


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        Profiler(sample=1)
    with pytest.raises(ValueError):
        Profiler(window=0)


def _stream(n: int) -> Iterator[Record]:
    rng = random.Random(n)
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        yield chat(
            f"prompt {i}", f"{words} {i}", domain=f"d{i % 7}", metadata={"topic": f"t{i % 50}"}
        )


def _peak(n: int) -> int:
    tracemalloc.start()
    try:
        profiler = Profiler(sample=200)
        for record in _stream(n):
            profiler.add(record)
        profiler.profile()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_stream_grows() -> None:
    small, large = _peak(1_000), _peak(10_000)
    assert large < small * 1.3, (small, large)
