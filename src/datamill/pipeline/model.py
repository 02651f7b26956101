"""A pipeline file: a recipe (what to generate) plus the stages that follow generation."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from datamill.errors import InputError, validation_error
from datamill.recipe import Recipe
from datamill.yamlfile import read_yaml, to_model


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None  # the step itself says what is wrong with the file


class StepSpec(BaseModel):
    """One stage of the pipeline with its validated parameters."""

    name: str
    params: BaseModel

    def key_params(self, base: Path) -> dict[str, Any]:
        """What decides the step's output: its parameters and the files it reads."""
        files = {str(p): _digest(p) for p in self.params.reads(base)}  # type: ignore[attr-defined]
        return self.params.model_dump(mode="json") | ({"_files": files} if files else {})


class Pipeline(BaseModel):
    recipe: Recipe
    steps: list[StepSpec]

    @property
    def base(self) -> Path:
        """Relative paths in the file are relative to the file."""
        return self.recipe.source.parent if self.recipe.source else Path.cwd()


def _step(item: Any, where: str) -> StepSpec:
    from datamill.pipeline.stages import STAGES

    if not (isinstance(item, dict) and len(item) == 1):
        raise InputError(where, None, None, "a stage is a mapping of one name, e.g. `- check: {…}`")
    ((name, params),) = item.items()
    stage = STAGES.get(name)
    if stage is None:
        raise InputError(where, None, None, f"no stage {name!r}; known: {', '.join(STAGES)}")
    try:
        return StepSpec(name=name, params=stage.params.model_validate(params or {}))
    except ValidationError as e:
        raise validation_error(where, e, prefix=name) from None


def load_pipeline(path: str | Path) -> Pipeline:
    """Read a recipe with ``stages``; every stage's parameters are checked before anything runs."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(str(path), None, None, "expected a YAML mapping for a recipe")
    stages = data.pop("stages", None) or []
    if not isinstance(stages, list):
        raise InputError(str(path), None, "stages", "expected a list of stages")
    recipe = to_model(data, Recipe, str(path), source=Path(path))
    recipe.task()
    steps = [_step(item, f"{path}: stages[{i}]") for i, item in enumerate(stages)]
    return Pipeline(recipe=recipe, steps=steps)
