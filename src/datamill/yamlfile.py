"""YAML configuration files (recipes, domain packs, price tables) read into pydantic models.

Every problem is an :class:`InputError` naming the file, and the line or field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from datamill.errors import InputError, validation_error

M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise InputError(name, line, None, f"invalid YAML: {getattr(e, 'problem', e)}") from None


def read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, None, getattr(e, "strerror", None) or str(e)) from None
    return parse_yaml(text, str(path))


def to_model(data: Any, model: type[M], name: str, **extra: Any) -> M:
    if not isinstance(data, dict):
        raise InputError(name, None, None, f"expected a YAML mapping for {model.__name__}")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise validation_error(name, e) from None


def load_model(path: str | Path, model: type[M], **extra: Any) -> M:
    """Read ``path`` as YAML into ``model``; ``extra`` fields are added to the mapping."""
    return to_model(read_yaml(path), model, str(path), **extra)
