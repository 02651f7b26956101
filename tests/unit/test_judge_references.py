"""The shipped human-labelled reference pairs, their parsing, and bad files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from datamill.errors import InputError
from datamill.quality.judged import human_preference, human_rating, judge_verdict
from datamill.quality.references import (
    load_hh_rlhf,
    load_llmbar,
    load_pandalm,
    load_reference,
    transcript_turns,
)
from datamill.records import Annotation, CheckResult
from support import chat


def test_every_shipped_reference_loads() -> None:
    sizes = {"llmbar-natural": 100, "llmbar-mtbench": 200, "pandalm": 999, "hh-rlhf": 2307}
    for name, size in sizes.items():
        reference = load_reference(name)
        assert len(reference.pairs) == size, name
        assert {p.label for p in reference.pairs} <= {0, 1, 2}
        assert all(p.prompt and (p.a or p.b) for p in reference.pairs)  # some are empty
    assert load_reference("hh-rlhf").left_out == {"conversations differ before the last turn": 5}


def test_pandalm_majority_and_ties() -> None:
    pairs = {p.id: p for p in load_reference("pandalm").pairs}
    assert sum(p.label == 0 for p in pairs.values()) == 105  # majority said tie
    first = pairs["pandalm:0"]
    assert first.votes == (2, 2, 2) and first.label == 2
    mixed = [p for p in pairs.values() if len(set(p.votes)) > 1]
    assert all(p.votes.count(p.label) >= 2 for p in mixed)


def test_hh_rlhf_balances_positions_and_keeps_the_conversation() -> None:
    pairs = load_reference("hh-rlhf").pairs
    firsts = sum(p.label == 1 for p in pairs) / len(pairs)
    assert 0.45 < firsts < 0.55  # a judge that always says "first" gets about half
    multi = next(p for p in pairs if len(p.prompt) > 1)
    assert multi.prompt[0].role == "user" and multi.prompt[-1].role == "user"


def test_sample_is_fixed_by_seed_and_keeps_order() -> None:
    a, b = load_reference("pandalm", limit=10, seed=3), load_reference("pandalm", limit=10, seed=3)
    assert [p.id for p in a.pairs] == [p.id for p in b.pairs]
    numbers = [int(p.id.split(":")[1]) for p in a.pairs]
    assert numbers == sorted(numbers) and len(numbers) == 10
    with pytest.raises(ValueError, match="known: llmbar-natural"):
        load_reference("nope")


def test_pair_as_record_has_two_candidates_and_no_response() -> None:
    record = load_reference("llmbar-natural", limit=1).pairs[0].record()
    assert record.response is None and len(record.candidates) == 2
    assert record.metadata["label"] in (1, 2)


def test_transcripts_split_into_turns() -> None:
    text = (
        "\n\nHuman: hi <script>x</script>\n\nAssistant: hello"
        "\n\nHuman: Assistant: no\n\nAssistant: ok"
    )
    turns = transcript_turns(text)
    assert [(m.role, m.content) for m in turns] == [
        ("user", "hi <script>x</script>"),
        ("assistant", "hello"),
        ("user", "Assistant: no"),
        ("assistant", "ok"),
    ]
    with pytest.raises(ValueError):
        transcript_turns("no markers at all")


def test_bad_files_name_what_is_wrong(tmp_path: Path) -> None:
    bad_label = tmp_path / "labels.json"
    row = {"input": "q", "output_1": "a", "output_2": "b", "label": "1"}
    bad_label.write_text(json.dumps([row, {**row, "label": "3"}]))
    with pytest.raises(InputError, match=r"labels.json: field '\[1\].label'"):
        load_llmbar(bad_label, "x")
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps([{"input": "q"}]))
    with pytest.raises(InputError, match=r"'\[0\].output_1': missing"):
        load_llmbar(missing, "x")
    garbage = tmp_path / "garbage.json.gz"
    garbage.write_bytes(b"\xff\xfe not gzip")
    with pytest.raises(InputError, match="not a readable JSON"):
        load_pandalm(garbage)
    hh = tmp_path / "hh.jsonl.gz"
    good = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    hh.write_bytes(gzip.compress(f"{json.dumps(good)}\n{{broken\n".encode()))
    with pytest.raises(InputError, match=r"hh.jsonl.gz:2"):
        load_hh_rlhf(hh)
    with pytest.raises(InputError, match="not a readable gzip"):
        load_hh_rlhf(garbage)


def answer(value: object, question: str = "preference", who: str = "ann") -> Annotation:
    return Annotation(annotator=who, question=question, value=value)  # type: ignore[arg-type]


def test_human_answers_in_every_stored_shape() -> None:
    votes = [answer("A", who="x"), answer({"chosen": 1, "tie": False, "pair": [0, 1]}, who="y")]
    assert human_preference(chat("q", annotations=votes), "preference") is None  # 1 vs 2
    votes.append(answer({"choice": "B"}, who="z"))
    assert human_preference(chat("q", annotations=votes), "preference") == 2
    tie = [answer({"chosen": None, "tie": True, "pair": [2, 3]})]
    assert human_preference(chat("q", annotations=tie), "preference") == 0
    second = [answer({"chosen": 3, "pair": [2, 3]})]
    assert human_preference(chat("q", annotations=second), "preference") == 2
    assert human_preference(chat("q", annotations=[answer(True)]), "preference") is None
    ratings = [
        answer(4, "rating"),
        answer({"accuracy": 2, "tone": 4}, "rating"),
        answer("x", "rating"),
    ]
    assert human_rating(chat("q", annotations=ratings), "rating") == 3.5


def test_judge_verdict_from_pairwise_details() -> None:
    pair = {"a": "candidate 0", "b": "candidate 1", "forward": "B", "reverse": "A"}
    record = chat("q").with_check(
        "pairwise", CheckResult(details={"pairs": [{**pair, "winner": "candidate 1"}]})
    )
    assert judge_verdict(record) == (2, 2, 1)
    inconsistent = chat("q").with_check(
        "pairwise", CheckResult(details={"pairs": [{**pair, "reverse": "B", "winner": None}]})
    )
    assert judge_verdict(inconsistent) == (None, 2, 2)
    assert judge_verdict(chat("q")) == (None, None, None)
