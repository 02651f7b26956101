"""Domain packs: topics, personas, terminology and risk level of a domain, as data files.

Built-in packs live in ``datamill/generate/domains``; a user's own pack is any YAML file
with the same fields, passed by path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.errors import InputError
from datamill.yamlfile import load_model, parse_yaml, to_model


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
    name = str(name_or_path)
    if Path(name).suffix in (".yaml", ".yml"):
        return load_model(name, DomainPack)
    if name not in builtin_packs():
        known = ", ".join(builtin_packs())
        raise InputError(name, None, None, f"no such domain pack; built-in packs: {known}")
    text = (resources.files("datamill.generate") / "domains" / f"{name}.yaml").read_text()
    return to_model(parse_yaml(text, name), DomainPack, name)
