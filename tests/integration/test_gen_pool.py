"""What the runner does for every family: dedup against the pool while generating, and
temperature schedules. On the stub server, whose replies are scripted where a family must
repeat itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from datamill.generate.run import run_generation
from datamill.llm.config import BackendConfig
from datamill.llm.stub_server import StubServer
from datamill.recipe import Recipe
from datamill.records import Record
from datamill.store import Dataset, Version

ASK = "Write one specific question"  # in every domain_instructions question prompt
Q1 = "What is the safest way to store insulin pens while travelling by plane in summer?"
Q1_NEAR = "Which is the safest way to store insulin pens while travelling by plane in summer?"
Q2 = "How should a night nurse triage two patients who arrive with chest pain at once?"
ANSWERS = {
    "insulin": "Keep them in a cooled pouch in your hand luggage, never in the hold, and "
    "carry a letter from your doctor for security checks at the airport.",
    "triage": "Assess both at once with a quick primary survey, take an ECG of each within ten "
    "minutes, and call for help so that neither waits for a physician.",
}


def stub_on(stub: StubServer) -> BackendConfig:
    # One call at a time: scripted replies are consumed in item order.
    return BackendConfig(
        kind="openai", base_url=stub.url, model="stub", structured="json_schema", concurrency=1
    )


def run(
    out: Path, family: str, n: int, backend: BackendConfig, **fields: Any
) -> tuple[list[Record], Version]:
    recipe = Recipe(name="pool", family=family, n=n, backends={"generator": backend}, **fields)
    dataset = Dataset.create(out)
    version = asyncio.run(run_generation(recipe, dataset))
    return list(dataset.records(version.version)), version


def script_repeats(stub: StubServer, questions: list[str]) -> None:
    stub.scripted_replies.clear()
    stub.reply(ASK, *questions)
    for word, text in ANSWERS.items():
        stub.reply(word, *[text] * len(questions))


def test_a_family_that_repeats_itself_has_its_repeats_dropped_and_counted(
    tmp_path: Path,
) -> None:
    questions = [Q1, Q2, Q1, Q1_NEAR, Q2, Q1]
    one = {"domains": ["healthcare"], "max_tokens": 64}
    with StubServer() as stub:
        script_repeats(stub, questions)
        records, version = run(
            tmp_path / "ds", "domain_instructions", 6, stub_on(stub), params=one, dedup=True
        )
        assert [r.messages[-2].content for r in records] == [Q1, Q2]
        assert version.counts == {"records": 2, "failed": 0, "near_duplicates": 4}
        dropped = version.stats["dedup"]
        assert isinstance(dropped, dict) and dropped["dropped"] == 4
        examples = dropped["examples"]
        assert isinstance(examples, list) and len(examples) == 4
        assert {e["duplicate_of"] for e in examples} == {r.id for r in records}  # type: ignore[index]
        near = examples[1]  # Q1_NEAR: not the same text, a near-duplicate of Q1's record
        assert near["duplicate_of"] == records[0].id and 0.8 <= near["similarity"] < 1  # type: ignore[index,operator]
        assert not any(e["in_reference"] for e in examples)  # type: ignore[index]

        # Without dedup the same run keeps every record.
        script_repeats(stub, questions)
        plain, version = run(
            tmp_path / "plain", "domain_instructions", 6, stub_on(stub), params=one
        )
        assert len(plain) == 6 and "near_duplicates" not in version.counts

        # A second run into the same dataset (another seed, or its calls come from the
        # request cache): what the dataset's latest version holds is in the pool.
        script_repeats(stub, [Q2, "Which vaccines does an adult need before a first trip?"])
        again, version = run(
            tmp_path / "ds", "domain_instructions", 2, stub_on(stub), params=one, dedup=True, seed=1
        )
    assert len(again) == 1 and again[0].messages[-2].content != Q2
    assert version.counts["near_duplicates"] == 1
    assert version.stats["dedup"]["examples"][0]["in_reference"] is True  # type: ignore[index,call-overload]


def test_dedup_on_the_prompt_only(tmp_path: Path) -> None:
    # Different answers to the same question: the conversations differ, the prompts do not.
    with StubServer() as stub:
        stub.reply(ASK, Q1, Q1)
        stub.reply("insulin", ANSWERS["insulin"], ANSWERS["triage"])
        params = {"domains": ["healthcare"]}
        records, version = run(
            tmp_path / "ds",
            "domain_instructions",
            2,
            stub_on(stub),
            params=params,
            dedup={"text": "prompt"},
        )
    assert len(records) == 1 and version.counts["near_duplicates"] == 1


def temperatures(records: list[Record]) -> list[object]:
    return [r.provenance.params["temperature"] for r in records]


@pytest.mark.parametrize(
    ("family", "params", "schedule", "expected"),
    [
        (
            "domain_instructions",
            {"max_tokens": 16},
            {"schedule": "linear", "start": 0.2, "end": 1.0},
            [0.2, 0.4, 0.6, 0.8, 1.0],
        ),
        ("math_cot", {}, {"schedule": "cycle", "values": [0.0, 1.5]}, [0.0, 1.5, 0.0, 1.5, 0.0]),
        ("support", {"min_turns": 1, "max_turns": 2}, 0.35, [0.35] * 5),
    ],
)
def test_recorded_temperatures_follow_the_schedule(
    tmp_path: Path, family: str, params: dict[str, Any], schedule: Any, expected: list[float]
) -> None:
    with StubServer() as stub:
        records, version = run(
            tmp_path / "ds", family, 5, stub_on(stub), params=params, temperature=schedule
        )
    # The stub's schema-following answers may fail a family's own checks; what is kept
    # must carry the temperature of its own position.
    assert records
    kind = "constant" if isinstance(schedule, float) else schedule["schedule"]
    assert all(r.provenance.params["temperature_schedule"] == kind for r in records)
    if version.counts["failed"] == 0:
        assert temperatures(records) == expected
    else:
        assert set(temperatures(records)) <= set(expected)


def test_per_attribute_schedule_and_every_call_of_an_item(tmp_path: Path) -> None:
    schedule = {
        "schedule": "per_attribute",
        "attribute": "domain",
        "values": {"healthcare": 0.1, "legal": 0.3},
        "default": 1.3,
    }
    params = {"domains": ["healthcare", "legal", "finance"], "max_tokens": 16}
    with StubServer() as stub:
        records, _ = run(
            tmp_path / "ds",
            "domain_instructions",
            6,
            stub_on(stub),
            params=params,
            temperature=schedule,
        )
    wanted = {"healthcare": 0.1, "legal": 0.3, "finance": 1.3}
    assert len(records) == 6
    assert all(r.provenance.params["temperature"] == wanted[str(r.domain)] for r in records)


def test_a_schedule_on_an_attribute_the_family_lacks_is_an_error(tmp_path: Path) -> None:
    schedule = {"schedule": "per_attribute", "attribute": "mood", "values": {"angry": 1.0}}
    with StubServer() as stub, pytest.raises(Exception, match="no attribute 'mood'"):
        run(tmp_path / "ds", "coding", 2, stub_on(stub), temperature=schedule)
    assert Dataset.open(tmp_path / "ds").versions == []  # nothing half-written


def test_responses_schedule_runs_over_candidates(tmp_path: Path) -> None:
    schedule = {
        "schedule": "per_attribute",
        "attribute": "candidate",
        "values": {"0": 0.0, "1": 0.9},
    }
    params = {"n_candidates": 2, "system_prompts": [None]}
    with StubServer() as stub:
        records, _ = run(
            tmp_path / "ds", "responses", 3, stub_on(stub), params=params, temperature=schedule
        )
    assert len(records) == 3
    for record in records:
        assert [c.params["temperature"] for c in record.candidates] == [0.0, 0.9]
