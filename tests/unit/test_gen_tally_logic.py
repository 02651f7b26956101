"""A generation run's summary: records kept and their verdicts, failures by kind."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from datamill.errors import LLMError
from datamill.generate.families.coding import exercise_schema
from datamill.generate.tally import Tally, kind_of
from datamill.records import CheckResult
from support import chat


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        ("invalid_output", "parse_failures"),
        ("timeout", "call_errors"),
        ("http_400", "call_errors"),
        ("http_503", "call_errors"),
        ("context_length", "call_errors"),
        ("rate_limited", "call_errors"),
        ("invalid_tool_call", "parse_failures"),
        ("not_novel", "rejected"),
        ("ungrounded", "rejected"),
        ("tests_fail", "rejected"),
    ],
)
def test_each_cause_has_a_kind(cause: str, kind: str) -> None:
    assert kind_of(cause) == kind


def test_the_summary_counts_verdicts_apart_from_failures() -> None:
    tally = Tally()
    verdicts = [
        {"tests_pass": CheckResult(passed=True)},
        {"tests_pass": CheckResult(passed=False), "style": CheckResult(passed=False)},
        {"tests_pass": CheckResult(passed=None)},
        {},
    ]
    for i, checks in enumerate(verdicts):
        tally.record(chat(f"q{i}", "a", checks=checks))
    for cause in ["invalid_output", "invalid_output", "not_novel", "http_500"]:
        tally.failure(LLMError(cause, "x"))
    assert tally.as_dict() == {
        "kept": 4,
        "verification_failed": 1,  # a record, however many of its checks failed
        "verification": {
            "style": {"passed": 0, "failed": 1, "no_verdict": 0},
            "tests_pass": {"passed": 1, "failed": 1, "no_verdict": 1},
        },
        "parse_failures": 2,
        "rejected": 1,
        "call_errors": 1,
    }
    assert tally.failures == {"invalid_output": 2, "not_novel": 1, "http_500": 1}


def test_an_empty_run_says_so() -> None:
    assert Tally().as_dict() == {
        "kept": 0,
        "verification_failed": 0,
        "verification": {},
        "parse_failures": 0,
        "rejected": 0,
        "call_errors": 0,
    }


def test_the_exercise_schema_caps_every_string_within_the_token_budget() -> None:
    schema = exercise_schema(3, 768)
    spec = schema.model_json_schema()["properties"]
    caps = [spec[f]["maxLength"] for f in ("problem", "function_name", "solution")]
    tests = spec["tests"]
    assert (tests["minItems"], tests["maxItems"]) == (3, 5)
    assert sum(caps) + tests["maxItems"] * tests["items"]["maxLength"] <= 2 * 768 + 60
    ok = {"problem": "p", "function_name": "f", "solution": "s", "tests": ["t"] * 3}
    assert schema.model_validate(ok).tests == ["t"] * 3
    with pytest.raises(ValidationError):
        schema.model_validate({**ok, "solution": "x" * (caps[2] + 1)})
    with pytest.raises(ValidationError):
        schema.model_validate({**ok, "tests": ["t"] * 2})
    assert exercise_schema(3, 768) is schema  # built once: the engine caches by schema
