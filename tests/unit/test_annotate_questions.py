"""Question types: configs, good answers stored as they should be, hostile answers refused
with the question and field named."""

from __future__ import annotations

from typing import Any

import pytest

from support import require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from datamill.annotate.errors import AnswerError  # noqa: E402
from datamill.annotate.questions import (  # noqa: E402
    NUANCE_TAGS,
    RUBRIC_CRITERIA,
    QuestionConfigError,
    View,
    matches_gold,
    needs_candidates,
    parse_questions,
    validate_answers,
    written_chars,
)

RESPONSE = "Paris is the capital of France.\nIt has 2 million people."
VIEW = View(
    messages=["What is the capital of France?", RESPONSE],
    candidates=["Paris.", "Lyon.", "Marseille."],
    display_order=[2, 0, 1],  # screen A shows candidate 2, B candidate 0, C candidate 1
)


def one(config: dict[str, Any], answer: Any) -> Any:
    questions = parse_questions([{"name": "q", **config}])
    return validate_answers(questions, {"q": answer}, VIEW)["q"]


def refused(config: dict[str, Any], answer: Any, field: str | None = None) -> AnswerError:
    with pytest.raises(AnswerError) as e:
        one(config, answer)
    assert e.value.question == "q"
    assert "question 'q'" in str(e.value)
    if field is not None:
        assert e.value.field == field
    return e.value


def test_rubric_defaults_and_scale() -> None:
    [rubric] = parse_questions([{"name": "q", "type": "rubric"}])
    assert [c.name for c in rubric.criteria] == list(RUBRIC_CRITERIA)  # type: ignore[union-attr]
    scores = dict.fromkeys(RUBRIC_CRITERIA, 3)
    assert one({"type": "rubric"}, scores) == scores
    seven = {"type": "rubric", "scale": 7, "anchors": {1: "wrong", 7: "perfect"}}
    assert one(seven, dict.fromkeys(RUBRIC_CRITERIA, 7))["tone"] == 7
    refused({"type": "rubric"}, {**scores, "tone": 6}, "tone")
    refused({"type": "rubric"}, {**scores, "tone": 0}, "tone")
    refused({"type": "rubric"}, {k: v for k, v in scores.items() if k != "safety"}, "safety")
    refused({"type": "rubric"}, {**scores, "charm": 3}, "charm")
    refused({"type": "rubric"}, {**scores, "tone": "5"}, "tone")  # strings are not numbers
    refused({"type": "rubric"}, {**scores, "tone": 4.5}, "tone")
    refused({"type": "rubric"}, [3, 3, 3])


def test_rubric_config_errors() -> None:
    with pytest.raises(QuestionConfigError, match="anchor 6"):
        parse_questions([{"name": "q", "type": "rubric", "anchors": {6: "x"}}])
    with pytest.raises(QuestionConfigError, match="scale"):
        parse_questions([{"name": "q", "type": "rubric", "scale": 10}])


def test_pairwise_is_stored_in_record_terms() -> None:
    # Screen A is candidate 2, screen B candidate 0.
    assert one({"type": "pairwise"}, {"choice": "A", "strength": 2}) == {
        "chosen": 2,
        "rejected": 0,
        "tie": False,
        "strength": 2,
        "pair": [2, 0],
    }
    assert one({"type": "pairwise"}, {"choice": "B"})["chosen"] == 0
    assert one({"type": "pairwise"}, {"choice": "tie"})["tie"] is True
    refused({"type": "pairwise", "allow_tie": False}, {"choice": "tie"}, "choice")
    refused({"type": "pairwise"}, {"choice": "C"}, "choice")
    refused({"type": "pairwise"}, {"choice": "A", "strength": 9}, "strength")
    refused({"type": "pairwise"}, {"choice": "A", "evil": 1}, "evil")
    refused({"type": "pairwise"}, "A")


def test_ranking_maps_screen_positions_to_candidates() -> None:
    assert one({"type": "ranking"}, [1, 2, 0]) == [0, 1, 2]
    refused({"type": "ranking"}, [0, 1])  # one left out
    refused({"type": "ranking"}, [0, 0, 1])
    refused({"type": "ranking"}, [0, 1, 7])
    refused({"type": "ranking"}, ["0", "1", "2"])


def test_edit_keeps_a_unified_diff() -> None:
    edited = RESPONSE.replace("2 million", "about 2.1 million")
    stored = one({"type": "edit"}, edited)
    assert stored["text"] == edited
    assert "-It has 2 million people." in stored["diff"]
    assert "+It has about 2.1 million people." in stored["diff"]
    assert one({"type": "edit", "candidate": 1}, "Lyon is not.")["diff"].startswith("--- original")
    refused({"type": "edit"}, "x" * 20_001)
    refused({"type": "edit"}, "   ")
    refused({"type": "edit"}, {"text": "hi"})


def test_write_comment_and_conversation() -> None:
    assert one({"type": "write"}, "<script>alert(1)</script>") == "<script>alert(1)</script>"
    refused({"type": "write", "max_chars": 10}, "x" * 11)
    refused({"type": "write"}, 42)
    questions = parse_questions([{"name": "note", "type": "comment"}])
    assert validate_answers(questions, {}, VIEW) == {}  # comments are optional
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert one({"type": "conversation"}, turns) == turns
    refused({"type": "conversation"}, turns[:1])  # fewer than two turns
    refused({"type": "conversation"}, [turns[1], turns[0]], "0.role")
    refused({"type": "conversation"}, [turns[0], {"role": "system", "content": "x"}], "1.role")
    blank = {"role": "assistant", "content": " "}
    refused({"type": "conversation"}, [turns[0], blank], "1.content")


def test_labels() -> None:
    assert one({"type": "label"}, "violence") == "violence"
    refused({"type": "label"}, "nonsense")
    refused({"type": "label"}, ["violence"])
    [multi] = parse_questions([{"name": "q", "type": "multilabel"}])
    assert multi.options == list(NUANCE_TAGS)  # type: ignore[union-attr]
    assert one({"type": "multilabel"}, ["sarcasm", "humour"]) == ["sarcasm", "humour"]
    assert one({"type": "multilabel"}, []) == []
    refused({"type": "multilabel"}, ["sarcasm", "sarcasm"])
    refused({"type": "multilabel"}, ["sarcasm", "<b>x</b>"], "1")


def test_spans_are_checked_against_the_message() -> None:
    span = {"message": 1, "start": 0, "end": 5, "label": "hallucination"}
    assert one({"type": "span"}, [span]) == [span]
    refused({"type": "span"}, [{**span, "end": len(RESPONSE) + 1}], "0.start")
    refused({"type": "span"}, [{**span, "start": 5, "end": 5}], "0.start")
    refused({"type": "span"}, [{**span, "start": -1}], "0.start")
    refused({"type": "span"}, [{**span, "message": 9}], "0.message")
    refused({"type": "span"}, [{**span, "label": "opinion"}], "0.label")
    refused({"type": "span"}, [span] * 201)
    refused({"type": "span"}, [{**span, "start": True}])  # a bool is not an offset


def test_answers_as_a_whole() -> None:
    questions = parse_questions(
        [{"name": "pref", "type": "pairwise"}, {"name": "why", "type": "comment"}]
    )
    with pytest.raises(AnswerError, match="an answer is required"):
        validate_answers(questions, {"why": "because"}, VIEW)
    with pytest.raises(AnswerError, match="no such question"):
        validate_answers(questions, {"pref": {"choice": "A"}, "bogus": 1}, VIEW)
    with pytest.raises(AnswerError, match="object keyed by question name"):
        validate_answers(questions, [1, 2], VIEW)
    assert needs_candidates(questions) == 2


def test_config_errors_name_the_field() -> None:
    with pytest.raises(QuestionConfigError, match=r"questions\.0"):
        parse_questions([{"name": "q", "type": "telepathy"}])
    with pytest.raises(QuestionConfigError, match="two questions"):
        parse_questions([{"name": "q", "type": "write"}, {"name": "q", "type": "comment"}])
    with pytest.raises(QuestionConfigError, match="name"):
        parse_questions([{"name": "Bad Name!", "type": "write"}])
    with pytest.raises(QuestionConfigError, match="at least one"):
        parse_questions([])


def test_written_chars_and_gold() -> None:
    questions = parse_questions(
        [
            {"name": "fix", "type": "edit"},
            {"name": "pref", "type": "pairwise"},
            {"name": "tone", "type": "rubric", "criteria": [{"name": "tone"}]},
        ]
    )
    stored = validate_answers(
        questions,
        {"fix": RESPONSE + "\nMore.", "pref": {"choice": "A"}, "tone": {"tone": 4}},
        VIEW,
    )
    assert written_chars(questions, stored) == len("More.")  # only what the edit added
    assert matches_gold(questions, stored, {"pref": {"chosen": 2}, "tone": {"tone": 5}})
    assert not matches_gold(questions, stored, {"pref": {"chosen": 0}})
    assert not matches_gold(questions, stored, {"tone": {"tone": 2}})
