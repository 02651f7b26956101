"""Domain packs: topics, personas, terminology and risk level of a domain, as data files.

Built-in packs live in ``datamill/generate/domains``; a user's own pack is any YAML file
with the same fields, passed by path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datamill.errors import InputError


class DomainPack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    risk_level: Literal["low", "medium", "high"] = "low"
    experts: list[str] = Field(default_factory=list)
    personas: list[str] = Field(min_length=1)
    topics: list[str] = Field(min_length=1)
    terminology: list[str] = Field(default_factory=list)


def builtin_packs() -> list[str]:
    folder = resources.files("datamill.generate") / "domains"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_pack(name_or_path: str | Path) -> DomainPack:
    """A built-in pack by name, or a user's pack from a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if str(name_or_path) not in builtin_packs():
            raise InputError(
                str(name_or_path),
                None,
                None,
                f"no such domain pack; built-in packs: {', '.join(builtin_packs())}",
            )
        text = (resources.files("datamill.generate") / "domains" / f"{path}.yaml").read_text()
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(str(path), None, None, e.strerror or str(e)) from None
    try:
        return DomainPack.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise InputError(
            str(name_or_path), None if line is None else line + 1, None, "invalid YAML"
        ) from None
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(str(name_or_path), None, field, err["msg"]) from None
