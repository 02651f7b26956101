"""Benchmark decontamination: shipped benchmarks, user files, and paraphrase recall."""

from __future__ import annotations

import gzip
import json
import random
import re
from importlib import resources
from pathlib import Path

import pytest

from datamill.checks import make_check
from datamill.checks.decontam import Decontam, build_index, ngram_hashes
from datamill.errors import DatamillError
from support import chat

BENCHMARKS = resources.files("datamill.data") / "benchmarks"


def gsm8k_questions() -> list[str]:
    lines = (BENCHMARKS / "gsm8k" / "test.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines]


def test_the_shipped_benchmarks_are_indexed_once() -> None:
    check = Decontam()
    assert {item.benchmark for item in check.index.items} == {"gsm8k", "human_eval", "mt_bench"}
    assert sum(item.benchmark == "gsm8k" for item in check.index.items) == 1319
    assert Decontam().index is check.index  # built once per process
    for name in ("gsm8k", "human_eval", "mt_bench"):
        assert (BENCHMARKS / name / "LICENSE").is_file()
        assert (BENCHMARKS / name / "SOURCE.md").is_file()


def test_a_copied_question_is_caught_through_case_and_punctuation() -> None:
    question = gsm8k_questions()[0]
    shouted = "SOLVE THIS!!! " + re.sub(r"[.,?$]", " ; ", question.upper())
    result = Decontam().check(chat(shouted, "The answer is 18."))
    assert result.passed is False and result.score == 1.0
    [match] = result.details["matches"]  # type: ignore[misc]
    assert match["benchmark"] == "gsm8k" and match["item"] == "0"  # type: ignore[index]
    assert match["shared"] == match["of"]  # type: ignore[index]


def test_human_eval_prompts_and_mt_bench_turns() -> None:
    rows = gzip.decompress((BENCHMARKS / "human_eval" / "HumanEval.jsonl.gz").read_bytes())
    prompt = json.loads(rows.decode().splitlines()[3])["prompt"]
    result = Decontam(on="response").check(chat("Complete this.", prompt + "    pass\n"))
    assert result.details["matches"][0]["item"] == "HumanEval/3"  # type: ignore[index]
    first_turn = json.loads(
        (BENCHMARKS / "mt_bench" / "question.jsonl").read_text("utf-8").splitlines()[1]
    )["turns"][0]
    result = Decontam().check(chat(first_turn))
    assert result.details["matches"][0]["benchmark"] == "mt_bench"  # type: ignore[index]
    assert result.details["matches"][0]["item"] == "82"  # type: ignore[index]


def test_clean_and_short_texts_pass() -> None:
    check = Decontam()
    for text in ["", "Janet's ducks", "Write a poem about the sea in the style of Keats."]:
        result = check.check(chat(text or "x"))
        assert result.passed is True and result.score == 0.0
        assert result.details == {"n": 13}
    assert ngram_hashes("one two three", 13) == set()
    assert len(ngram_hashes("a b c d", 2)) == 3


def test_min_shared_and_part() -> None:
    question = gsm8k_questions()[5]
    words = question.split()
    piece = " ".join(words[:14])  # two 13-grams of the question
    assert Decontam().check(chat(piece)).passed is False
    assert Decontam(min_shared=3).check(chat(piece)).passed is True
    assert Decontam(on="response").check(chat(piece, "No idea.")).passed is True
    with pytest.raises(DatamillError, match="at least 1"):
        make_check("decontam", {"n": 0})


def test_extra_benchmark_files(tmp_path: Path) -> None:
    secret = (
        "the lighthouse keeper counted forty seven ships passing before the great storm "
        "finally arrived"
    )
    plain = tmp_path / "house_eval.jsonl"
    plain.write_text(json.dumps({"id": "q7", "text": secret}) + "\n\n", encoding="utf-8")
    packed = tmp_path / "listy.jsonl.gz"
    row = {"turns": ["unrelated words here", secret.replace("forty seven", "many")]}
    packed.write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))
    check = make_check(
        "decontam", {"benchmarks": [], "extra": {str(plain): "text", str(packed): "turns"}}
    )
    result = check.check(chat(f"Story: {secret}."))
    found = {(m["benchmark"], m["item"]) for m in result.details["matches"]}  # type: ignore[index,union-attr]
    assert found == {("house_eval", "q7")}  # the gzip row lost its 13-grams to the edit
    assert Decontam(n=6, benchmarks=[], extra={str(packed): "turns"}).check(chat(secret)).details[
        "matches"
    ] == [{"benchmark": "listy", "item": "0", "shared": 3, "of": 11}]


def test_bad_benchmark_options(tmp_path: Path) -> None:
    with pytest.raises(DatamillError, match="no benchmark 'mmlu'"):
        make_check("decontam", {"benchmarks": ["mmlu"]})
    with pytest.raises(DatamillError, match="no benchmark file"):
        make_check("decontam", {"extra": {str(tmp_path / "missing.jsonl"): "text"}})
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"question": "a b c"}\n', encoding="utf-8")
    with pytest.raises(DatamillError, match="line 1: no field 'text'"):
        make_check("decontam", {"extra": {str(wrong): "text"}})
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DatamillError, match="cannot read the benchmark file"):
        make_check("decontam", {"extra": {str(broken): "text"}})


def test_hostile_texts() -> None:
    check = Decontam()
    question = gsm8k_questions()[9]
    hidden = "\x00<div>\u202e" + question + "</div>\u200b" + "x " * 500_000  # ~1 MB
    assert check.check(chat(hidden)).passed is False
    assert check.check(chat("\u0627\u0644\u0633\u0644\u0627\u0645 " * 1000)).passed is True


SYNONYMS = {"buys": "purchases", "has": "owns", "each": "every", "total": "overall",
            "makes": "earns", "sells": "trades", "gets": "receives", "bought": "purchased",
            "wants": "would like", "needs": "requires"}  # fmt: skip


def paraphrase(question: str, rng: random.Random) -> str:
    """Light edits: every number changed, a few synonyms, three word swaps, two sentences
    added around it."""
    words = [re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), w)
             for w in question.split()]  # fmt: skip
    words = [SYNONYMS.get(w, w) for w in words]
    for _ in range(3):
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return "Here is a word problem for you. " + " ".join(words) + " Explain your reasoning."


def test_recall_on_lightly_paraphrased_gsm8k() -> None:
    sample = random.Random(7).sample(gsm8k_questions(), 50)
    edited = [paraphrase(q, random.Random(i)) for i, q in enumerate(sample)]
    caught = {}
    for n in (13, 8):
        check = Decontam(n=n)
        assert all(check.check(chat(q)).passed is False for q in sample)
        caught[n] = sum(check.check(chat(q)).passed is False for q in edited)
    print(f"paraphrased GSM8K caught: 13-gram {caught[13]}/50, 8-gram {caught[8]}/50")
    # measured: 23/50 at 13 words, 39/50 at 8
    assert caught[13] >= 21
    assert caught[8] >= 37


def test_no_false_alarms_on_real_prompts() -> None:
    path = Path(__file__).parents[1] / "data" / "oasst" / "prompt_lottery_en_250_text.jsonl"
    prompts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    check = Decontam(n=8)
    assert not [p for p in prompts if check.check(chat(p)).passed is False]
    assert build_index.cache_info().currsize >= 2
