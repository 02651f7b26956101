"""The quality heuristics: each rule on crafted text, and real answers from Open-Assistant."""

from __future__ import annotations

import pytest

from datamill.checks import make_check
from datamill.checks.heuristics import (
    Heuristics,
    dup_ngram_frac,
    echo_frac,
    top_ngram_frac,
    unfinished,
)
from support import chat, oasst_replies

PROSE = (
    "Photosynthesis is the process by which green plants turn light into chemical energy. "
    "Chlorophyll in the leaves absorbs sunlight, mostly in the red and blue parts of the "
    "spectrum. The plant combines carbon dioxide from the air with water drawn up by its "
    "roots, and it releases oxygen as a by-product. The sugars it makes feed the plant and, "
    "through food chains, nearly every other living thing on Earth."
)

OTHER = (
    "Plants also need minerals such as nitrogen and phosphorus, which they take from the "
    "soil. Without enough of them, leaves turn yellow and growth slows down."
)


def failed(reply: str, prompt: str = "Explain photosynthesis.", **options: object) -> dict:
    result = Heuristics(**options).check(chat(prompt, reply))  # type: ignore[arg-type]
    return {f["rule"]: f["value"] for f in result.details["failed"]}  # type: ignore[index,union-attr]


def test_a_clean_answer_passes_every_rule() -> None:
    result = Heuristics().check(chat("Explain photosynthesis.", PROSE))
    assert result.passed is True and result.score == 1.0
    assert result.details == {"failed": []}


@pytest.mark.parametrize("reply", ["", "   \n\t", "\u200b\u200f", "...", None])
def test_empty_answers_fail_as_empty_only(reply: str | None) -> None:
    result = Heuristics().check(chat("Hi?", reply))
    assert result.passed is False and result.score == 0.0
    assert result.details == {"failed": [{"rule": "empty"}]}


def test_short_answers_skip_the_statistics() -> None:
    assert failed("42") == {}
    assert failed("Paris.", "Capital of France?") == {}


def test_repeated_lines_and_ngrams_are_measured() -> None:
    looping = "\n".join(["I am happy to help you with that request today."] * 8)
    rules = failed(looping)
    assert rules["dup_line_frac"] == pytest.approx(7 / 8)
    assert {"dup_line_char_frac", "dup_5_gram_frac", "top_4_gram_frac"} <= set(rules)
    words = ["a", "b", "c", "d", "e", "a", "b", "c", "d", "e"]
    assert dup_ngram_frac(words, 5) == 1.0
    assert dup_ngram_frac(["one", "two", "three", "four", "five", "six"], 2) == 0.0
    assert top_ngram_frac(["x", "y", "z"], 2) == 0.0  # a single occurrence is no repetition
    assert top_ngram_frac(["ab", "cd", "ab", "cd"], 2) == 1.0


def test_symbols_ellipses_and_non_words() -> None:
    tags = PROSE + " " + " ".join(f"#tag{i}" for i in range(12))
    assert "hash_word_ratio" in failed(tags)
    headed = "## Summary\n" + PROSE + "\n### Details\n" + OTHER
    assert failed(headed) == {}  # Markdown headings are not hash symbols
    trailing = "\n".join(f"{s.strip()}..." for s in PROSE.split(".") if s.strip())
    assert "ellipsis_line_frac" in failed(trailing)
    words = PROSE.split()
    hesitant = " ".join(w + ("..." if i % 5 == 0 else "") for i, w in enumerate(words)) + "."
    assert failed(hesitant)["ellipsis_word_ratio"] > 0.1
    table = "Results:\n" + "\n".join(f"| -- | => | %% | ok{i} |" for i in range(20))
    assert failed(table)["non_alpha_word_frac"] > 0.8
    sums = " ".join(
        f"Then {i} + {i + 1} = {2 * i + 1} apples remain in basket {i}." for i in range(8)
    )
    assert "non_alpha_word_frac" not in failed(sums)  # numbers are words in math answers


def test_mean_word_length_bounds_and_dense_scripts() -> None:
    assert "mean_word_length" in failed(" ".join(["supercalifragilisticexpialidocious"] * 60))
    assert "mean_word_length" in failed(" ".join(["a", "I", "an", "it"] * 20))
    chinese = "。".join(["光合作用是绿色植物利用光能制造有机物的过程 它释放氧气"] * 3)
    spaced = " ".join([chinese] * 25)
    assert "mean_word_length" not in failed(spaced, skip=["dup_line_frac"])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Here is the code:\n```python\nprint('hi')\n", "unclosed code fence"),
        ("The three steps are as follows, and the first one is", "ends mid-sentence"),
        ("You will need flour, eggs,", "ends with ','"),
        ("The story goes on like this [truncated]", "ends with a cut-off mark"),
        ("And then the story continues…", "ends with a cut-off mark"),
    ],
)
def test_unfinished_answers(text: str, why: str) -> None:
    assert unfinished(text) == why
    assert failed(text)["unfinished"] == why


@pytest.mark.parametrize(
    "text",
    [
        "Done.",
        "Paris",
        "Options:\n- apples\n- oranges and other citrus fruit from Spain",
        "Use this:\n```python\nprint('hi')\n```",
        "B. The importance of the theme of time in the novel",
        "#### 72",
    ],
)
def test_finished_answers(text: str) -> None:
    assert unfinished(text) is None


def test_boilerplate_phrases_are_named() -> None:
    reply = "As an AI language model, I don’t have personal opinions. I’m sorry, but I can’t."
    assert failed(reply)["boilerplate"] == [
        "as an ai",
        "i don't have personal opinions",
        "i'm sorry, but i can't",
    ]
    assert "boilerplate" not in failed("Aisle seven has the main course.")


def test_echoed_prompts() -> None:
    prompt = "Write a haiku about the quiet autumn rain on the roof."
    assert failed(prompt, prompt)["echo_frac"] == 1.0
    assert failed("Write a haiku about the quiet autumn rain on the roof!!", prompt)
    assert echo_frac("Soft rain on the roof, leaves drift in amber silence", prompt) < 0.5
    assert "echo_frac" not in failed(prompt, prompt, on="prompt")  # no answer to compare


def test_options_skip_and_thresholds_through_the_registry() -> None:
    looping = "\n".join(["I am happy to help you with that request today."] * 8)
    relaxed = make_check("heuristics", {"skip": ["dup_line_frac"], "max_dup_line_char_frac": 1})
    rules = {f["rule"] for f in relaxed.check(chat("q", looping)).details["failed"]}
    assert "dup_line_frac" not in rules and "dup_line_char_frac" not in rules
    assert "dup_5_gram_frac" in rules
    # n-gram limits come from the command line as YAML lists of pairs
    loose = make_check("heuristics", {"dup_ngram_fracs": [[5, 1.0]], "top_ngram_fracs": []})
    rules = {f["rule"] for f in loose.check(chat("q", looping)).details["failed"]}
    assert not {r for r in rules if "gram" in r}
    assert failed("one two three", min_words=5)["word_count"] == 3
    with pytest.raises(ValueError, match="above max_words"):
        Heuristics(min_words=9, max_words=1)


def test_score_is_the_fraction_of_rules_passed() -> None:
    result = Heuristics().check(chat("q", "You will need flour, eggs,"))
    # word_count, unfinished, boilerplate, echo_frac applied; one failed
    assert result.score == 0.75 and result.passed is False


def test_hostile_texts() -> None:
    huge = (PROSE + "\n") * 2500  # about 1 MB, every paragraph the same
    result = Heuristics(max_words=1_000_000).check(chat("q", huge))
    assert result.passed is False
    rules = {f["rule"] for f in result.details["failed"]}
    assert {"dup_line_frac", "dup_10_gram_frac"} <= rules
    html = "<div><p>" + PROSE + "</p><script>alert(1)</script></div>"
    assert Heuristics().check(chat("q", html)).score is not None
    odd = "\x00\x07Bidi \u202etext\u202c with \u200bzero width\ufeff. " + PROSE
    assert failed(odd) == {}
    mixed = PROSE + " Привет мир. مرحبا بالعالم. こんにちは世界。"
    assert "mean_word_length" not in failed(mixed)


def test_real_answers_mostly_pass_and_broken_ones_fail() -> None:
    records = oasst_replies()
    check = Heuristics()
    passed = sum(bool(check.check(r).passed) for r in records)
    assert passed / len(records) >= 0.85  # measured: 110 of 120
    # repeated four times: the statistics need 50 words, so replies of 13 words or more
    long = [r.response or "" for r in records if len((r.response or "").split()) >= 13]
    looped = [chat("q", (reply + "\n") * 4) for reply in long]
    assert all(check.check(r).passed is False for r in looped)
    cut = [chat("q", " ".join((r.response or "").split()[:40]) + ",") for r in records]
    assert all(check.check(r).passed is False for r in cut)
