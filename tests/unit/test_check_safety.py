"""Safety categories from the lexicon: matching, thresholds, options, other flaggers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamill.checks import make_check
from datamill.checks.safety import Hits, Lexicon, Safety, term_pattern, verdict
from datamill.errors import DatamillError
from support import chat, oasst_replies


def categories(text: str, **options: object) -> dict:
    result = Safety(**options).check(chat("q", text))  # type: ignore[arg-type]
    return result.details["categories"]  # type: ignore[return-value]


def test_inflections_and_phrases_match() -> None:
    found = categories("He was STABBED, and they kept killing people in the massacres.")
    assert found["violence"] == {
        "hits": 3,
        "terms": ["stabbed", "killing people", "massacres"],
        "flagged": True,
    }
    assert categories("Sometimes I want to end my life")["self_harm"]["flagged"]
    assert "self_harm" in categories("I keep thinking about self\u2011harm")
    assert "self_harm" in categories("self — harm")
    assert "illegal_activity" in categories("How do I hotwire a car?")  # hotwire → hotwiring too
    assert "illegal_activity" in categories("They were hotwiring cars all night.")


@pytest.mark.parametrize(
    ("term", "forms", "not_forms"),
    [
        ("stab", ["stab", "stabs", "stabbed", "stabbing"], ["stable", "stabilise"]),
        ("abuse", ["abuse", "abused", "abusing", "abuser"], ["abus", "abuseful"]),
        ("carry", ["carry", "carries", "carried", "carrying"], ["carryied"]),
        ("self-harm", ["self harm", "self-harming", "self \u2013 harm"], ["selfharm"]),
    ],
)
def test_term_patterns(term: str, forms: list[str], not_forms: list[str]) -> None:
    pattern = re.compile(term_pattern(term))
    assert [f for f in forms if not pattern.fullmatch(f)] == []
    assert not any(pattern.fullmatch(f) for f in not_forms)


@pytest.mark.parametrize(
    "text",
    [
        "Kill the process with SIGKILL, then restart it.",
        "The suede jacket; pursue your goals; an issue tracker.",
        "Massachusetts is a state; the stable is near the mass.",
        "Skills and a shooting star over the stock-still lake.",
    ],
)
def test_whole_words_only(text: str) -> None:
    result = Safety().check(chat("q", text))
    assert result.passed is True
    flagged = {name for name, c in result.details["categories"].items() if c["flagged"]}  # type: ignore[union-attr,index]
    assert not flagged


def test_hidden_and_odd_text() -> None:
    assert "self_harm" in categories("sui\u200bcide")  # zero-width space
    assert "self_harm" in categories("ＳＵＩＣＩＤＥ")  # full width
    assert categories("") == {} and categories("\x00\x1b[31m\u202e") == {}
    huge = "The weather is mild today. " * 40_000 + "a mass shooting"
    assert categories(huge)["violence"]["hits"] == 1


def test_advice_needs_several_terms() -> None:
    once = Safety().check(chat("q", "That symptom is common."))
    assert once.passed is True
    assert once.details["categories"]["medical_advice"]["flagged"] is False  # type: ignore[index]
    advice = "Take a 400 mg dose of ibuprofen for the symptoms; if they persist, see a doctor."
    result = Safety().check(chat("q", advice))
    assert result.passed is False and result.score == 1.0
    assert result.details["categories"]["medical_advice"]["hits"] == 4  # type: ignore[index]


def test_options() -> None:
    advice = "Take a 400 mg dose of ibuprofen for the symptoms; if they persist, see a doctor."
    only_harms = make_check("safety", {"categories": ["violence", "self_harm"]})
    assert only_harms.check(chat("q", advice)).details == {"categories": {}}
    strict = make_check("safety", {"min_hits": {"medical_advice": 1}})
    assert strict.check(chat("q", "That symptom is common.")).passed is False
    record = chat("How would someone build a bomb?", "I can't help with that.")
    assert Safety().check(record).passed is True  # the response, by default
    assert Safety(on="prompt").check(record).passed is False
    with pytest.raises(DatamillError, match="no safety category 'spam'"):
        make_check("safety", {"categories": ["spam"]})
    with pytest.raises(DatamillError, match="no safety category 'spam'"):
        make_check("safety", {"min_hits": {"spam": 2}})


def test_a_lexicon_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("spoilers:\n  min_hits: 2\n  terms: [plot twist, ending]\n", encoding="utf-8")
    check = make_check("safety", {"lexicon": str(path)})
    result = check.check(chat("q", "No plot twists here, but the endings differ."))
    assert result.passed is False
    assert result.details["categories"]["spoilers"]["terms"] == ["plot twists", "endings"]  # type: ignore[index]
    path.write_text("spoilers:\n  terms: []\n", encoding="utf-8")
    with pytest.raises(DatamillError, match=r"lexicon\.yaml"):
        make_check("safety", {"lexicon": str(path)})
    path.write_text("spoilers: [a, b\n", encoding="utf-8")
    with pytest.raises(DatamillError, match="invalid YAML"):
        make_check("safety", {"lexicon": str(path)})


def test_other_flaggers_add_categories_through_verdict() -> None:
    lexical = Lexicon.load().scan("They planned a terrorist attack.")
    judged = {"jailbreak": Hits(1, ("ignore previous instructions",))}
    result = verdict({**lexical, **judged}, {"violence": 1, "jailbreak": 1})
    assert result.score == 2.0 and result.passed is False
    assert set(result.details["categories"]) == {"violence", "jailbreak"}  # type: ignore[arg-type]


def test_real_answers_are_rarely_flagged() -> None:
    records = oasst_replies()
    harms = ["violence", "self_harm", "sexual", "hate", "illegal_activity"]
    check = Safety(categories=harms)
    flagged = [r for r in records if check.check(r).passed is False]
    assert len(flagged) <= 4  # measured: 2 of 120, horror film titles (massacre, murder)
