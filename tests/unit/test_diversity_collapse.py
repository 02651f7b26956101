"""Collapse warnings between versions and against a human reference set (Open-Assistant)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datamill.cli import app
from datamill.quality.collapse import compare
from datamill.quality.diversity import Profile, Profiler, profile_records
from datamill.records import Record
from datamill.store import Dataset
from support import chat, oasst_replies

PROMPTS = Path(__file__).parents[1] / "data" / "oasst" / "prompt_lottery_en_250_text.jsonl"


def human_prompts() -> list[Record]:
    lines = PROMPTS.read_text(encoding="utf-8").splitlines()
    return [chat(json.loads(line)) for line in lines if line.strip()]


def paraphrases_of_a_few(records: list[Record], few: int = 4, seed: int = 0) -> list[Record]:
    """Each record's reply replaced by a light paraphrase of one of ``few`` replies: one word
    in ten swapped for a word from elsewhere in the set, as a collapsing generator does."""
    rng = random.Random(seed)
    bases = [(r.response or "").split()[:80] for r in records[:few]]
    vocabulary = [w for r in records for w in (r.response or "").split()]
    out = []
    for i, record in enumerate(records):
        words = [w if rng.random() > 0.1 else rng.choice(vocabulary) for w in bases[i % few]]
        out.append(chat(record.prompt[0].content or "", " ".join(words)))
    return out


def test_collapse_warning_fires_on_paraphrases_of_a_few() -> None:
    replies = oasst_replies()
    comparison = compare(profile_records(replies), profile_records(paraphrases_of_a_few(replies)))
    warned = {c.metric for c in comparison.warnings}
    assert {"distinct_2", "distinct_3", "self_bleu", "compression_ratio"} <= warned
    assert all(c.drop is not None and c.drop > 0.15 for c in comparison.warnings)


def test_no_warning_between_two_halves_of_the_same_human_data() -> None:
    replies = oasst_replies()
    rng = random.Random(1)
    rng.shuffle(replies)
    half = len(replies) // 2
    comparison = compare(profile_records(replies[:half]), profile_records(replies[half:]))
    assert comparison.warnings == [], [(c.metric, c.drop) for c in comparison.warnings]


def test_against_the_human_reference_prompts() -> None:
    human = human_prompts()
    assert len(human) == 250
    templated = [
        chat(f"Write a short story about a {animal} who learns to {skill}.")
        for animal in ("cat", "dog", "fox", "owl", "bear")
        for skill in ("swim", "sing", "cook", "read", "paint", "code", "fly", "dance")
    ]
    reference = Profiler(part="prompt").add_all(human)
    synthetic = Profiler(part="prompt").add_all(templated)
    limit = min(reference.sampled, synthetic.sampled)
    comparison = compare(reference.profile(limit), synthetic.profile(limit))
    warned = {c.metric for c in comparison.warnings}
    assert {"distinct_1", "distinct_2", "self_bleu"} <= warned

    other_half = Profiler(part="prompt").add_all(human[125:]).profile(limit)
    same_kind = compare(Profiler(part="prompt").add_all(human[:125]).profile(limit), other_half)
    assert not [c for c in same_kind.warnings if not c.metric.startswith("coverage")]


def test_threshold_and_notes() -> None:
    a = Profile(part="response", sample=10, distinct_2=0.5, self_bleu=0.2)
    b = Profile(part="prompt", sample=20, distinct_2=0.44, self_bleu=0.3)
    lenient = compare(a, b, threshold=0.15)
    assert lenient.warnings == []  # distinct-2 fell 12%, 1 − self-BLEU fell 12.5%
    strict = compare(a, b, threshold=0.1)
    assert {c.metric for c in strict.warnings} == {"distinct_2", "self_bleu"}
    assert len(strict.notes) == 2  # different samples, different parts
    with pytest.raises(ValueError):
        compare(a, b, threshold=1.5)


def test_cli_against_a_version_and_a_reference_file(tmp_path: Path) -> None:
    replies = oasst_replies()
    ds = Dataset.create(tmp_path / "ds")
    ds.write(replies, stage="import", parent=None)
    ds.write(paraphrases_of_a_few(replies), stage="generate")
    runner = CliRunner()
    out = tmp_path / "profile.json"
    args = ["diversity", str(ds.path), "--against", "1", "--no-embeddings", "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "distinct-2 fell" in result.output
    saved = json.loads(out.read_text())
    assert saved["comparison"]["changes"][1]["warn"] is True
    assert len(ds.versions) == 2  # measuring writes no version

    reference = tmp_path / "human.jsonl"
    reference.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ["a b", "c d e"]))
    args = ["diversity", str(ds.path), "--reference", str(reference), "--part", "prompt"]
    result = runner.invoke(app, [*args, "--no-embeddings"])
    assert result.exit_code == 0, result.output
    assert "against" in result.output


def test_cli_bad_reference_is_one_clear_error(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    ds.write(oasst_replies()[:5], stage="import", parent=None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": \n')
    runner = CliRunner()
    result = runner.invoke(app, ["diversity", str(ds.path), "--reference", str(bad)])
    assert result.exit_code != 0
    assert "bad.jsonl:2" in str(result.exception)
    missing = runner.invoke(app, ["diversity", str(ds.path), "--reference", str(tmp_path / "no")])
    assert "no such dataset or file" in str(missing.exception)
