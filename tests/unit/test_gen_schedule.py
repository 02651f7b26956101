"""Temperature schedules and the recipe fields that declare them and pool dedup."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from datamill.errors import DatamillError, InputError
from datamill.generate.family import Context
from datamill.generate.schedule import Schedule
from datamill.recipe import Recipe, load_recipe

SCHEDULE: TypeAdapter[Schedule] = TypeAdapter(Schedule)


def at(spec: dict[str, object], total: int, default: float = 0.8, **attributes: str) -> list[float]:
    schedule = SCHEDULE.validate_python(spec)
    return [schedule.at(i, total, attributes, default) for i in range(total)]


def test_constant_linear_and_cycle() -> None:
    assert at({"schedule": "constant", "value": 0.3}, 3) == [0.3, 0.3, 0.3]
    assert at({"schedule": "linear", "start": 0.2, "end": 1.0}, 5) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert at({"schedule": "linear", "start": 1.2, "end": 0.2}, 3) == [1.2, 0.7, 0.2]
    assert at({"schedule": "linear", "start": 0.5, "end": 1.0}, 1) == [0.5]
    assert at({"schedule": "cycle", "values": [0.1, 0.9]}, 5) == [0.1, 0.9, 0.1, 0.9, 0.1]


def test_per_attribute_falls_back_to_its_default_then_the_familys() -> None:
    spec = {"schedule": "per_attribute", "attribute": "domain", "values": {"legal": 0.2}}
    assert at(spec, 2, domain="legal") == [0.2, 0.2]
    assert at(spec, 1, default=0.7, domain="finance") == [0.7]
    assert at({**spec, "default": 1.1}, 1, domain="finance") == [1.1]
    with pytest.raises(DatamillError, match=r"no attribute 'domain' .*they have: topic"):
        at(spec, 1, topic="x")


@pytest.mark.parametrize(
    "spec",
    [
        {"schedule": "linear", "start": 0.2, "end": 2.5},
        {"schedule": "cycle", "values": []},
        {"schedule": "cycle", "values": [0.5], "typo": 1},
        {"schedule": "warm"},
        {"value": 0.5},
    ],
)
def test_bad_schedules_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SCHEDULE.validate_python(spec)


def test_context_without_a_schedule_keeps_the_familys_temperature() -> None:
    plain = Context({}, "r")
    assert plain.temperature(3, 10, 0.65, {"domain": "legal"}) == 0.65
    cycled = Context(
        {}, "r", schedule=SCHEDULE.validate_python({"schedule": "cycle", "values": [1.0, 0.0]})
    )
    assert [cycled.temperature(i, 4, 0.65, {}) for i in range(4)] == [1.0, 0.0, 1.0, 0.0]


def test_a_number_is_a_constant_schedule() -> None:
    recipe = Recipe(name="r", family="domain_instructions", temperature=0.4)
    assert recipe.temperature is not None
    assert recipe.temperature.model_dump() == {"schedule": "constant", "value": 0.4}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("temperature: {schedule: linear, start: 0.1, end: 9}\n", "temperature.linear.end"),
        ("temperature: {schedule: cycle, values: []}\n", "temperature.cycle.values"),
        ("temperature: hot\n", "temperature"),
        ("temperature: 0.5\nparams: {temperature: 0.9}\n", "params.temperature"),
        ("dedup: {threshold: 1.5}\n", "dedup.threshold"),
        ("dedup: {near: false}\n", "dedup"),
        ("dedup: {text: everything}\n", "dedup.text"),
    ],
)
def test_recipe_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: r\nfamily: domain_instructions\n{text}")
    with pytest.raises(InputError, match=field.replace(".", r"\.")) as raised:
        load_recipe(path)
    assert str(path) in str(raised.value)


def test_responses_temperatures_and_a_schedule_are_exclusive() -> None:
    with pytest.raises(ValidationError, match=r"replaces params\.temperatures"):
        Recipe(
            name="r",
            family="responses",
            temperature={"schedule": "cycle", "values": [0.3]},
            params={"temperatures": [0.2, 0.9]},
        )


def test_dedup_shorthand() -> None:
    recipe = Recipe(name="r", family="domain_instructions", dedup=True)
    assert recipe.dedup is not None and recipe.dedup.threshold == 0.8
    assert Recipe(name="r", family="domain_instructions").dedup is None


def test_every_family_has_a_recipe_that_loads() -> None:
    from datamill.generate.family import families

    recipes = Path(__file__).parents[2] / "recipes"
    for family in families():
        recipe = load_recipe(recipes / f"{family}.yaml")
        assert recipe.family == family
