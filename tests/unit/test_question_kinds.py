"""One question model: the annotation app's question types tell resolve how to combine
their answers, and a project's stored questions become resolve's questions unchanged."""

from __future__ import annotations

import pytest

from datamill.annotate.questions import RESOLVE_KINDS, TYPES, parse_questions
from datamill.errors import InputError
from datamill.quality.questions import ALIASES, KINDS, Question, from_project


def test_every_app_question_type_has_a_resolve_kind() -> None:
    assert set(RESOLVE_KINDS) == {t.model_fields["type"].default for t in TYPES}
    assert set(RESOLVE_KINDS.values()) <= set(KINDS)
    assert all(ALIASES[t] == k for t, k in RESOLVE_KINDS.items())


def test_a_project_config_becomes_resolve_questions() -> None:
    stored = [
        q.model_dump(mode="json")
        for q in parse_questions(
            [
                {"type": "rubric", "name": "quality", "scale": 7, "criteria": [{"name": "tone"}]},
                {"type": "label", "name": "safety", "options": ["safe", "unsafe"]},
                {"type": "write", "name": "better"},
                {"type": "span", "name": "claims"},
                {"type": "pairwise", "name": "pref"},
            ]
        )
    ]
    got = from_project(stored, "project p")
    assert {n: q.kind for n, q in got.items()} == {
        "quality": "rubric",
        "safety": "label",
        "better": "text",  # a short written answer is still a text, not a label
        "claims": "spans",
        "pref": "pairwise",
    }
    assert got["quality"].scale == (1, 7) and got["quality"].criteria == ["tone"]
    assert got["safety"].labels == ["safe", "unsafe"]
    assert not any(q.inferred for q in got.values())
    assert got["better"] == Question(name="better", kind="text")


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ([{"type": "nonsense", "name": "x"}], "questions.0"),
        ([{"type": "label", "name": "a"}, {"type": "comment", "name": "a"}], "named 'a'"),
        ([], "at least one question"),
        ("<script>", "questions"),
    ],
)
def test_a_bad_project_config_names_where_it_came_from(configs: object, message: str) -> None:
    with pytest.raises(InputError, match=f"project p.*{message}"):
        from_project(configs, "project p")
