"""The language check: right and wrong languages, and no verdict where one would be a guess."""

from __future__ import annotations

import pytest

from datamill.checks import make_check
from datamill.checks.language import Language, base_code, main_script
from datamill.errors import DatamillError
from support import chat, oasst_replies

CHECK = Language()

SAMPLES = {
    "fr": "Bonjour, comment allez-vous aujourd'hui ? Je vais très bien, merci beaucoup.",
    "es": "Hola amigo, ¿cómo estás? Estoy bien, gracias por preguntar.",
    "pt": "Olá amigo, como você está? Estou bem, obrigado por perguntar.",
    "de": "Guten Morgen! Das Wetter ist heute schön, wir gehen im Park spazieren.",
    "sw": "Habari yako? Mimi ni mzima, asante sana kwa kuuliza.",
    "zh": "这是一个测试句子，用来检测语言。今天天气很好。",
    "ja": "今日はとても良い天気ですね。散歩に行きましょう。",
    "ru": "Сегодня хорошая погода, и мы идём гулять в парк.",
    "ar": "الطقس جميل اليوم وسنذهب للتنزه في الحديقة.",
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_the_expected_language_passes(code: str) -> None:
    result = CHECK.check(chat("q", SAMPLES[code], language=code))
    assert result.passed is True, result.details
    assert result.details["detected"] == code
    assert result.score == result.details["confidence"] and result.score >= 0.5  # type: ignore[operator]


@pytest.mark.parametrize(("expected", "text"), [("en", "fr"), ("es", "pt"), ("de", "ru")])
def test_a_wrong_language_fails(expected: str, text: str) -> None:
    result = CHECK.check(chat("q", SAMPLES[text], language=expected))
    assert result.passed is False
    assert result.details["expected"] == expected and result.details["detected"] == text
    assert result.score is not None and result.score < 0.5  # confidence in the expected one


def test_regional_codes_and_unknown_languages() -> None:
    assert base_code("pt-BR") == "pt" and base_code("en_US") == "en" and base_code("ZH") == "zh"
    assert CHECK.check(chat("q", SAMPLES["pt"], language="pt-BR")).passed is True
    result = CHECK.check(chat("q", SAMPLES["fr"], language="tlh"))
    assert result.passed is None and result.details["reason"] == "no language model for 'tlh'"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ok", "too short to tell"),
        ("42 + 7 = 49", "too short to tell"),
        ("", "too short to tell"),
        ("Hello my friend, how are you? 你好朋友你好吗今天天气很好我们去公园", "mixed scripts"),
        ("Das ist ein Haus. This is a house. C'est une maison.", "unsure"),
    ],
)
def test_no_verdict_rather_than_a_guess(text: str, reason: str) -> None:
    result = CHECK.check(chat("q", text or None, language="en"))
    assert result.passed is None
    assert str(result.details["reason"]).startswith(reason)


def test_a_quoted_word_or_code_does_not_change_the_language() -> None:
    quoted = "The word 你好 means hello in Mandarin and it is used as a greeting."
    assert CHECK.check(chat("q", quoted, language="en")).passed is True
    coded = SAMPLES["fr"] + "\n```python\nfor item in items:\n    print(item)\n```\n"
    assert CHECK.check(chat("q", coded, language="fr")).passed is True


def test_without_an_expected_language_it_only_detects() -> None:
    result = CHECK.check(chat("q", SAMPLES["es"]))
    assert result.passed is None
    assert result.details["expected"] is None and result.details["detected"] == "es"


def test_options() -> None:
    record = chat(SAMPLES["de"], SAMPLES["fr"], language="de")
    assert make_check("language", {"on": "prompt"}).check(record).passed is True
    assert make_check("language").check(record).passed is False
    assert make_check("language", {"min_confidence": 1.01}).check(record).passed is None
    assert make_check("language", {"languages": ["sw", "zu"]}).languages == ("sw", "zu")
    with pytest.raises(DatamillError, match="no model for the language 'xx'"):
        make_check("language", {"languages": ["en", "xx"]})


def test_scripts() -> None:
    assert main_script("Hello world Привет") == ("LATIN", 10 / 16, "Hello world       ")
    assert main_script("今日はとても良い")[:2] == ("CJK", 1.0)  # kana and kanji are one
    assert main_script("123 !!") == ("", 0.0, "")


def test_hostile_texts() -> None:
    huge = SAMPLES["fr"] + " " + "x" * 1_000_000
    assert CHECK.check(chat("q", huge, language="fr")).passed is True  # read up to max_chars
    odd = "\x00\u202e" + SAMPLES["es"] + "\u200b<br/>\x1b"
    assert CHECK.check(chat("q", odd, language="es")).passed is True


def test_real_english_conversations() -> None:
    records = oasst_replies()
    results = [CHECK.check(r) for r in records]
    wrong = [r.details for r in results if r.passed is False]
    undecided = sum(r.passed is None for r in results)
    assert len(wrong) <= 2  # measured: none of 120
    assert undecided <= 6  # measured: none
