"""Leak-free splits: near-duplicates, shared prompts and parents stay on one side."""

from __future__ import annotations

import random

import pytest

from datamill.errors import DatamillError
from datamill.export.split import parse_split, split_records
from datamill.records import Provenance, Record
from support import chat

WORDS = [chr(ord("a") + i) * 3 for i in range(13)]  # 13 words: aaa, bbb...


def corpus(seed: int = 1) -> tuple[list[Record], list[tuple[int, int]]]:
    """400 distinct prompts, 60 of them with a near-duplicate (one word of 100 changed:
    Jaccard about 0.9) somewhere in the list, and the index pairs of those near-duplicates."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(100)) + f" item {i}" for i in range(400)]
    pairs = []
    for i in range(60):
        words = texts[i].split()
        words[rng.randrange(100)] = "zulu"
        texts.append(" ".join(words))
        pairs.append((i, len(texts) - 1))
    order = list(range(len(texts)))
    rng.shuffle(order)
    where = {old: new for new, old in enumerate(order)}
    records = [chat(texts[i], "reply") for i in order]
    return records, [(where[a], where[b]) for a, b in pairs]


def test_no_near_duplicate_pair_straddles_the_split() -> None:
    records, pairs = corpus()
    split = split_records(records, parse_split("test=0.2"), seed=3)
    sides = [split.side(i, r) for i, r in enumerate(records)]
    assert all(sides[a] == sides[b] for a, b in pairs)
    assert split.near_duplicate_links == len(pairs)
    counts = split.counts()
    assert abs(counts["test"] - 0.2 * len(records)) <= 2  # within a group's size
    # the same prompts split at random, without the grouping, would straddle
    assert split.groups == len(records) - len(pairs)


def test_the_split_is_fixed_by_its_seed() -> None:
    records, _ = corpus()
    fractions = parse_split("validation=0.1,test=0.1")
    one = split_records(records, fractions, seed=7).which.tolist()
    assert split_records(records, fractions, seed=7).which.tolist() == one
    assert split_records(records, fractions, seed=8).which.tolist() != one


def test_shared_prompts_and_parents_stay_together() -> None:
    same_prompt = [chat("What is 2+2?", f"answer {i}") for i in range(5)]
    tree = [
        Record(
            messages=chat(f"turn {i} of a long thread", "r").messages,
            provenance=Provenance(source="imported", parents=["tree-1"]),
        )
        for i in range(5)
    ]
    others = [chat(f"unrelated question number {i}", "r") for i in range(40)]
    records = same_prompt + tree + others
    for seed in range(5):
        split = split_records(records, parse_split("test=0.5"), seed=seed)
        sides = [split.side(i, r) for i, r in enumerate(records)]
        assert len(set(sides[:5])) == 1 and len(set(sides[5:10])) == 1


def test_a_changed_input_between_passes_is_an_error() -> None:
    records, _ = corpus()
    split = split_records(records[:10], parse_split("test=0.5"))
    with pytest.raises(DatamillError, match="changed"):
        split.side(0, records[11])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("test", "NAME=FRACTION"),
        ("test=0", "fraction"),
        ("test=1.5", "fraction"),
        ("test=0.6,validation=0.5", "add up"),
        ("train=0.5,test=0.2", "add up"),
        ("test=1", "nothing for train"),
        ("te st=0.1", "name"),
        ("test=0.1,test=0.2", "name"),
    ],
)
def test_bad_split_specifications(text: str, error: str) -> None:
    with pytest.raises(DatamillError, match=error):
        parse_split(text)


def test_split_specification() -> None:
    assert parse_split("test=0.1") == pytest.approx({"train": 0.9, "test": 0.1})
    assert parse_split("train=0.7,test=0.3") == {"train": 0.7, "test": 0.3}
