"""Near-duplicates by MinHash LSH: verdicts around the threshold, reference pools, odd
inputs, order and determinism; and the hashing and sketching underneath (the index and
what it stores: test_lsh.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamill.checks import make_check, run_checks
from datamill.checks import workers as hashing
from datamill.checks.lsh import jaccard
from datamill.checks.near_dup import NearDup
from datamill.checks.shingles import (
    Shingling,
    Sketched,
    normalise,
    sketch_texts,
    word_hashes,
)
from datamill.checks.sketches import shared_pairs, sorted_sets
from datamill.checks.stage import check_dataset
from datamill.checks.workers import CHUNK_TEXTS, LIMIT, chunked
from datamill.errors import DatamillError
from datamill.records import CheckResult, Message, Provenance, Record
from datamill.store import Dataset

DATA = Path(__file__).parents[1] / "data"
VOCAB = [f"w{i}" for i in range(3000)]


def rec(text: str, id: str = "") -> Record:
    messages = [Message(role="user", content=text)]
    return Record(id=id, messages=messages, provenance=Provenance(source="synthetic"))


def verdicts(texts: list[str], **options: object) -> list[CheckResult]:
    records = [rec(t, id=f"r{i}") for i, t in enumerate(texts)]
    return [r.checks["near_dup"] for r in run_checks(records, [NearDup(**options)])]  # type: ignore[arg-type]


def grams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of an ASCII text, computed independently of the check."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def exact(a: str, b: str) -> float:
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def document(rng: random.Random, words: int = 200) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words))


def variant(rng: random.Random, text: str, target: float) -> str:
    """Substitute random words until the 5-gram Jaccard similarity falls to ``target``."""
    words = text.split()
    while exact(text, " ".join(words)) > target:
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def test_near_duplicates_around_the_threshold() -> None:
    rng = random.Random(1)
    base = document(rng)
    close, far = variant(rng, base, 0.92), variant(rng, base, 0.6)
    out = verdicts([base, close, far, document(rng)])
    assert [v.passed for v in out] == [True, False, True, True]
    assert out[1].details == {
        "duplicate_of": "r0",
        "similarity": round(exact(base, close), 4),
        "in_reference": False,
    }
    # sketches hold every shingle of a text this short: the similarity is exact
    assert out[1].score == pytest.approx(exact(base, close), abs=1e-4)
    at = exact(base, close)
    assert verdicts([base, close], threshold=at)[1].passed is False
    assert verdicts([base, close], threshold=at + 0.001)[1].passed is True


def test_exact_duplicates_whatever_the_case_spacing_and_punctuation() -> None:
    rng = random.Random(2)
    base = document(rng, 60)
    noisy = "  " + base.upper().replace(" ", ",\t ") + "!!"
    out = verdicts([base, noisy, base])
    assert [v.passed for v in out] == [True, False, False]
    assert [v.details["duplicate_of"] for v in out[1:]] == ["r0", "r0"]
    assert out[1].score == 1.0


def test_real_prompts_are_kept_and_their_recased_copies_caught() -> None:
    lines = (DATA / "oasst" / "prompt_lottery_en_250_text.jsonl").read_text().splitlines()
    prompts = [json.loads(line) for line in lines]
    copies = [re.sub(r"[^\w\s]", " ", p).lower() for p in prompts]
    out = verdicts(prompts + copies)
    originals, recased = out[: len(prompts)], out[len(prompts) :]
    assert all(v.passed for v in originals)
    wordy = [i for i, p in enumerate(prompts) if re.search(r"\w", p)]
    assert all(recased[i].details["duplicate_of"] == f"r{i}" for i in wordy)
    assert all(recased[i].details["similarity"] == 1.0 for i in wordy)


def test_a_reference_pool_is_matched_first(tmp_path: Path) -> None:
    lines = (DATA / "gsm8k" / "test_head30.jsonl").read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines]
    reference = Dataset.create(tmp_path / "benchmark")
    with reference.writer("import") as w:
        w.write_all(rec(q, id=f"gsm8k-{i}") for i, q in enumerate(questions))
    leaked = questions[3].upper() + "  "
    texts = [document(random.Random(3)), leaked, leaked, questions[7]]
    out = verdicts(texts, reference=str(tmp_path / "benchmark"))
    assert out[0].passed is True
    assert out[1].details == {"duplicate_of": "gsm8k-3", "similarity": 1.0, "in_reference": True}
    assert out[2].details["in_reference"] is True  # the reference, not the first leak
    assert out[3].details["duplicate_of"] == "gsm8k-7"


def test_empty_huge_and_odd_texts() -> None:
    rng = random.Random(4)
    huge = document(rng, 180_000)  # just over 1 MB
    assert len(huge) > 1_000_000
    html = "<p>Hello&nbsp;<b>world</b></p>\n<script>alert(1)</script> " + document(rng, 80)
    hidden = document(rng, 80)
    marked = "\u200f" + hidden.replace(" ", " \x00\x07\u200b ") + "\u202e\x1b"
    texts = ["", "  !!! \t\n", huge, huge + " tail", html, html, hidden, marked]
    out = verdicts(texts)
    assert out[0].details == out[1].details == {"reason": "no words"}
    assert out[0].passed is out[1].passed is True
    assert out[3].details["duplicate_of"] == "r2"
    assert out[3].score is not None and out[3].score > 0.99  # a bottom-512 estimate here
    assert out[5].details["duplicate_of"] == "r4"
    assert out[7].details == {"duplicate_of": "r6", "similarity": 1.0, "in_reference": False}


def test_mixed_scripts_control_characters_and_lone_surrogates() -> None:
    rng = random.Random(11)
    words = ["alpha", "Привет", "мир", "東京", "タワー", "नमस्ते", "مرحبا", "Ünïcödé", "straße"]
    base = " ".join(f"{rng.choice(words)}{rng.randrange(40)}" for _ in range(120))
    texts = [
        base,
        base.replace(" ", " \ud800 "),  # lone surrogates: separators, like punctuation
        base.replace(" ", "\x00\x01\x1f\x7f "),
        base.upper().replace("STRASSE", "STRAßE"),  # casefolding: ß and ss agree
        "\udfff \ud800\udc00",
        "\x00\x1b\x07\x7f\t\u200b",
        base[: len(base) // 2],  # half the shingles: not a duplicate
    ]
    out = verdicts(texts)
    assert [v.passed for v in out] == [True, False, False, False, True, True, True]
    assert all(v.details["similarity"] == 1.0 for v in out[1:4])
    assert out[4].details == out[5].details == {"reason": "no words"}


class Watched(NearDup):
    """Says whether it hashed in worker processes."""

    pooled = False

    async def aclose(self) -> None:
        self.pooled = self.hashing.pool is not None
        await super().aclose()


def test_the_pairs_found_do_not_depend_on_order_or_on_workers() -> None:
    rng = random.Random(5)
    bases = [document(rng, rng.randrange(100, 300)) for _ in range(400)]
    texts = bases + [variant(rng, b, 0.95) for b in bases[:150]]
    found = []
    # in process; in workers from a server, up; in process while they start; forked
    runs = ((0, 1, False, True), (1, 1, False, True), (2, 2, True, False), (3, 2, False, False))
    for seed, workers, wait, fork in (*runs, (4, 2, False, True)):
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        records = [rec(texts[i], id=str(i)) for i in order]
        check = Watched(workers=workers)
        check.hashing.fork = fork
        if wait:
            check.hashing.start()
        out = list(run_checks(records, [check]))
        assert check.pooled is (workers > 1)
        pairs = {
            frozenset((int(r.id), int(r.checks["near_dup"].details["duplicate_of"])))  # type: ignore[arg-type]
            for r in out
            if r.checks["near_dup"].passed is False
        }
        found.append(pairs)
    assert found[0] == found[1] == found[2] == found[3] == found[4]
    assert found[0] == {frozenset((i, len(bases) + i)) for i in range(150)}


def test_the_same_input_gives_the_same_verdicts() -> None:
    rng = random.Random(6)
    bases = [document(rng) for _ in range(30)]
    texts = bases + [variant(rng, b, 0.85) for b in bases]
    assert verdicts(texts) == verdicts(texts)
    a = sketch_texts(texts, Shingling())
    b = sketch_texts(texts, Shingling())
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 0}, "threshold must be in"),
        ({"num_perm": 100}, "power of two"),
        ({"bands": 32, "rows": 8}, "at most num_perm"),
        ({"on": "everything"}, "on must be one of"),
        ({"reference": "/nonexistent/dataset"}, "not a datamill dataset"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(DatamillError, match=message):
        make_check("near_dup", options)


def test_words_are_the_same_wherever_they_sit_and_whatever_the_script() -> None:
    hashes, owner = word_hashes(["Hello, world!", "", "say HELLO", "x" * 20 + " x" * 3])
    assert owner.tolist() == [0, 0, 2, 2, 3, 3, 3, 3]
    assert hashes[0] == hashes[3] and hashes[0] != hashes[1]
    assert len(set(hashes[4:].tolist())) == 2  # a 20-letter word is not its prefix
    long = ["internationalization", "internationalisation", "externationalization", "x" * 24]
    assert len(set(word_hashes([" ".join(long), "x" * 16])[0].tolist())) == 5
    # the ASCII fast path and the Unicode path agree on ASCII text
    assert (
        word_hashes(["Tea, or coffee?"])[0].tolist()
        == word_hashes([" tea or coffee é"])[0][:3].tolist()
    )
    assert normalise("नमस्ते दुनिया") == "नमस्ते दुनिया"  # vowel signs stay inside words
    assert normalise("Ｆｕｌｌ\u200bwidth — “quoted”") == "full width quoted "


def test_a_long_text_keeps_its_smallest_distinct_shingles() -> None:
    rng = random.Random(7)
    texts = [document(rng, 40), document(rng, 900), "just three words"]
    sk = sketch_texts(texts, Shingling(sketch=100))
    assert sk.sizes.tolist()[1:] == [896, 1]
    whole = sketch_texts(texts[1:2], Shingling(sketch=10_000))
    kept = sk.hashes[sk.offsets[1] : sk.offsets[2]]
    assert kept.tolist() == whole.hashes[:100].tolist()
    assert np.array_equal(sk.keys[1], whole.keys[0])  # cutting the sketch leaves the keys


def test_jaccard_is_exact_on_whole_sets_and_estimated_on_bottom_k() -> None:
    a, b = np.arange(0, 300, dtype=np.uint32), np.arange(100, 400, dtype=np.uint32)
    assert jaccard(a, b, 512) == 200 / 400
    rng = np.random.default_rng(1)
    universe = rng.choice(2**31, 6000, replace=False).astype(np.uint32)
    x, y = np.sort(universe[:4000]), np.sort(universe[1000:5000])  # true Jaccard 0.6
    assert jaccard(x[:512], y[:512], 512) == pytest.approx(0.6, abs=0.06)


@settings(max_examples=100, deadline=None)
@given(
    st.sets(st.integers(0, 2**32 - 1) | st.integers(0, 300)),
    st.sets(st.integers(0, 2**32 - 1) | st.integers(0, 300)),
    st.sampled_from([1, 4, 64, 512]),
)
def test_jaccard_of_sketches_is_what_sets_say(x: set[int], y: set[int], k: int) -> None:
    a, b = (np.array(sorted(s)[:k], np.uint32) for s in (x, y))
    got = jaccard(a, b, k)
    if not x or not y:
        assert got == 0.0
    elif len(x) < k and len(y) < k:
        assert got == len(x & y) / len(x | y)
    else:
        union = sorted(set(a.tolist()) | set(b.tolist()))[:k]
        both = set(a.tolist()) & set(b.tolist())
        assert got == sum(v in both for v in union) / len(union)


def test_a_large_batch_in_workers_finds_what_one_process_finds() -> None:
    rng = random.Random(9)
    bases = [document(rng, rng.randrange(100, 150)) for _ in range(1200)]
    texts = bases + [variant(rng, b, 0.95) for b in bases[:100]]
    random.Random(10).shuffle(texts)
    found = []
    for workers in (1, 2):
        check = Watched(workers=workers)
        check.hashing.start()
        out = list(run_checks([rec(t, id=str(i)) for i, t in enumerate(texts)], [check]))
        assert check.pooled is (workers > 1)
        found.append([r.checks["near_dup"] for r in out])
    assert found[0] == found[1]
    assert sum(v.passed is False for v in found[0]) == 100


def test_sketches_workers_wrote_outlive_the_workers() -> None:
    rng = random.Random(12)
    texts = [document(rng, rng.randrange(30, 60)) for _ in range(1100)]
    check = Watched(workers=2)
    check.hashing.start()
    folder = Path(check.hashing._folder)
    first = list(run_checks([rec(t, id=f"a{i}") for i, t in enumerate(texts)], [check]))
    assert check.pooled and all(r.checks["near_dup"].passed for r in first)
    assert not folder.exists()  # gone with the workers
    again = [rec(texts[i].upper(), id=f"b{i}") for i in (5, 700)]
    out = [r.checks["near_dup"] for r in run_checks(again, [check])]
    assert [v.details["duplicate_of"] for v in out] == ["a5", "a700"]


@pytest.mark.parametrize("streamed", [True, False])
def test_chunks_split_by_count_and_by_characters(streamed: bool) -> None:
    async def cut(texts: list[str]) -> list[tuple[int, int]]:
        async def stream() -> AsyncIterator[str]:
            for text in texts:
                yield text

        spans, start = [], 0
        async for group, chunk in chunked(stream() if streamed else texts, lambda t: t):
            assert group == chunk
            spans.append((start, start + len(chunk)))
            start += len(chunk)
        return spans

    assert asyncio.run(cut([])) == []
    assert asyncio.run(cut(["a"] * 1100)) == [(0, 512), (512, 1024), (1024, 1100)]
    big = "x" * (1 << 20)
    assert asyncio.run(cut([big, "a", "b", big + big, "c"])) == [(0, 1), (1, 3), (3, 4), (4, 5)]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=70), max_size=12),
    st.sampled_from([1, 3, 512]),
)
def test_sorted_sets_are_each_texts_smallest_distinct_values(
    texts: list[list[int]], k: int
) -> None:
    counts = np.array([len(t) for t in texts], np.int64)
    values = np.array([v for t in texts for v in t], np.uint32)
    got, sizes = sorted_sets(values, counts, k)
    assert got.tolist() == [v for t in texts for v in sorted(set(t))[:k]]
    assert sizes.tolist() == [len(set(t)) for t in texts]


def test_a_text_far_wider_than_the_rest_is_sorted_on_its_own() -> None:
    rng = np.random.default_rng(2)
    counts = np.array([3, 20_000, 0, 5])
    values = rng.integers(0, 1000, counts.sum()).astype(np.uint32)
    got, sizes = sorted_sets(values, counts, 10_000)
    ends = np.cumsum(counts)
    want = [np.unique(values[e - c : e])[:10_000] for e, c in zip(ends, counts, strict=True)]
    assert got.tolist() == np.concatenate(want).tolist()
    assert sizes.tolist() == [
        len(np.unique(values[e - c : e])) for e, c in zip(ends, counts, strict=True)
    ]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.lists(st.integers(0, 4), min_size=3, max_size=3), st.booleans())),
    st.integers(1, 4),
)
def test_shared_pairs_are_the_earlier_texts_of_each_bucket(
    texts: list[tuple[list[int], bool]], limit: int
) -> None:
    keys = np.array([k for k, _ in texts], np.uint64).reshape(len(texts), 3)
    keys += np.arange(3, dtype=np.uint64) * np.uint64(100)  # each band its own keys
    sizes = np.array([int(words) for _, words in texts], np.int64)
    order = np.argsort(keys.ravel(), kind="stable")
    got = shared_pairs(keys, sizes, order, limit).tolist()
    want = set()
    for band in range(3):
        buckets: dict[int, list[int]] = {}
        for t in np.flatnonzero(sizes).tolist():
            buckets.setdefault(int(keys[t, band]), []).append(t)
        for members in buckets.values():
            want |= {(a, b) for r, b in enumerate(members) for a in members[: min(r, limit)]}
    assert got == [list(p) for p in sorted(want, key=lambda p: (p[1], p[0]))]


def test_a_duplicate_names_the_kept_text_whatever_its_id() -> None:
    rng = random.Random(8)
    base = document(rng, 50)
    odd = ["é<script>alert(1)</script>", "\ud800lone", "x" * 3000]
    records = [rec(base, id=i) for i in odd] + [rec(document(rng, 50), id="other")]
    check = NearDup(workers=1)
    out = [r.checks["near_dup"] for r in run_checks(records[1:2] + records, [check])]
    assert out[0].passed is True
    assert [v.details["duplicate_of"] for v in out[1:4]] == [odd[1]] * 3
    assert out[4].passed is True


def test_verdicts_stream_out_before_the_input_ends() -> None:
    rng = random.Random(13)
    texts = [document(rng, 10) for _ in range(40_000)] + [document(rng, 10)] * 2
    pulled = 0

    async def records() -> AsyncIterator[Record]:
        nonlocal pulled
        for i, text in enumerate(texts):
            pulled += 1
            yield rec(text, id=str(i))

    async def first_and_rest(check: NearDup) -> tuple[int, list[Record]]:
        out = check.run(records())
        first = await anext(out)
        seen = pulled
        rest = [r async for r in out]
        await check.aclose()
        return seen, [first, *rest]

    seen, out = asyncio.run(first_and_rest(NearDup(workers=2)))
    assert seen <= (LIMIT + 1) * CHUNK_TEXTS < len(texts)  # a window, not the whole input
    assert [r.id for r in out] == [str(i) for i in range(len(texts))]
    assert [r.id for r in out if r.checks["near_dup"].passed is False] == ["40001"]


def test_plain_texts_get_the_verdicts_their_records_get() -> None:
    rng = random.Random(14)
    bases = [document(rng, 150) for _ in range(700)]
    texts = bases + [variant(rng, b, 0.95) for b in bases[:40]]
    random.Random(15).shuffle(texts)

    async def scanned() -> list[CheckResult]:
        check = NearDup(workers=2)
        pairs = ((f"r{i}", t) for i, t in enumerate(texts))
        out = [result async for results in check.scan(pairs) for result in results]
        await check.aclose()
        return out

    got = asyncio.run(scanned())
    assert got == verdicts(texts, workers=1)
    assert sum(v.passed is False for v in got) == 40


class KillsItsWorkers(NearDup):
    """Kills its worker processes once it has judged a few chunks."""

    judged = 0

    def _judge(self, ids: list[str], sketched: Sketched) -> list[CheckResult]:
        self.judged += 1
        if self.judged == 3 and self.hashing.pool is not None:
            for pid in list(self.hashing.pool._processes):  # type: ignore[attr-defined]
                os.kill(pid, signal.SIGKILL)
        return super()._judge(ids, sketched)


def test_a_killed_worker_stops_the_check_and_nothing_is_written(tmp_path: Path) -> None:
    rng = random.Random(16)
    dataset = Dataset.create(tmp_path / "texts")
    with dataset.writer("import") as w:
        w.write_all(rec(document(rng, 30), id=str(i)) for i in range(20_000))
    check = KillsItsWorkers(workers=2)
    with pytest.raises(DatamillError, match="ended abruptly"):
        asyncio.run(check_dataset(dataset, [check], [{"name": "near_dup"}]))
    assert [v.version for v in Dataset.open(tmp_path / "texts").versions] == [1]
    assert sum(1 for _ in dataset.records()) == 20_000


def test_freed_memory_is_kept_only_while_a_stream_of_chunks_runs() -> None:
    async def kept_while_scanning(count: int) -> set[int]:
        check, kept = NearDup(workers=1), set()
        async for _ in check.scan((str(i), f"text number {i}") for i in range(count)):
            kept.add(hashing._keeping)
        await check.aclose()
        return kept

    assert asyncio.run(kept_while_scanning(10)) == {0}  # one chunk: the process as it was
    assert asyncio.run(kept_while_scanning(3 * CHUNK_TEXTS)) == {1}
    assert hashing._keeping == 0  # and let go at the end
