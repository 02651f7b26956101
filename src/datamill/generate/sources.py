"""What families derive new data from: seed tasks and the conversations of a dataset.

The 175 seed tasks of Self-Instruct (Wang et al., 2023; Apache-2.0) ship with datamill. A
user's own seed file is JSONL in the same format (``instruction`` plus ``instances`` of
``input``/``output``) or flat (``instruction``, ``input``, ``output``); ``id`` is optional.
Every source keeps its id, which derived records name as their parent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from datamill.errors import InputError
from datamill.records import Message, Record
from datamill.store import Dataset


class SeedTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    instruction: str = Field(min_length=1)
    input: str = ""
    output: str = ""

    @model_validator(mode="before")
    @classmethod
    def _first_instance(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("instances"):
            first = data["instances"][0]
            rest = {k: v for k, v in data.items() if k != "instances"}
            return {**first, **rest} if isinstance(first, dict) else rest
        return data

    @model_validator(mode="after")
    def _stable_id(self) -> SeedTask:
        if not self.id:
            digest = hashlib.sha256(f"{self.instruction}\n{self.input}".encode()).hexdigest()
            self.id = f"seed-{digest[:16]}"
        return self

    @property
    def prompt(self) -> str:
        return join_prompt(self.instruction, self.input)


def join_prompt(instruction: str, input: str = "") -> str:
    """What a user would send: the instruction, then its input if it has one."""
    instruction, input = instruction.strip(), input.strip()
    return f"{instruction}\n\n{input}" if input else instruction


def load_seed_tasks(path: str | Path | None = None) -> list[SeedTask]:
    """The shipped seed tasks, or a user's seed file; a bad line is an error naming it."""
    if path is None:
        name = "seed_tasks.jsonl"
        text = (resources.files("datamill.data") / "self_instruct" / name).read_text("utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as e:
            raise InputError(name, None, None, e.strerror or str(e)) from None
    tasks = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            tasks.append(SeedTask.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise InputError(name, number, None, f"not JSON: {e.msg}") from None
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise InputError(name, number, field, first["msg"]) from None
    if not tasks:
        raise InputError(name, None, None, "no seed tasks")
    return tasks


@dataclass(frozen=True)
class Source:
    """A conversation to derive from, and the id of the record or seed task it came from."""

    id: str
    messages: tuple[Message, ...]
    domain: str | None = None
    language: str | None = None

    @property
    def text(self) -> str:
        """The last user turn: the instruction to evolve or answer."""
        return next(m.content or "" for m in reversed(self.messages) if m.role == "user")


def _records(source: str | Path) -> Iterator[Record]:
    return Dataset.open(source).records()


def load_prompts(source: str | Path | None = None) -> list[Source]:
    """Prompts from a dataset directory (each record's conversation before its final
    reply; records without a user turn are skipped), or from the seed tasks by default."""
    if source is None:
        return [
            Source(t.id, (Message(role="user", content=t.prompt),), language="en")
            for t in load_seed_tasks()
        ]
    prompts = [
        Source(r.id, tuple(r.prompt), r.domain, r.language)
        for r in _records(source)
        if any(m.role == "user" and m.content for m in r.prompt)
    ]
    if not prompts:
        raise InputError(str(source), None, None, "no record with a user message")
    return prompts


def seed_conversations() -> list[Source]:
    """The shipped seed tasks as one-exchange English conversations: prompt, then output."""
    return [
        Source(
            t.id,
            (Message(role="user", content=t.prompt), Message(role="assistant", content=t.output)),
            language="en",
        )
        for t in load_seed_tasks()
    ]


def english_conversations(source: str | Path) -> list[Source]:
    """A dataset's English (or unlabelled) text conversations that end with a reply,
    without their system turns."""
    found = []
    for record in _records(source):
        turns = tuple(m for m in record.messages if m.role != "system")
        plain = all(m.role in ("user", "assistant") and m.content for m in turns)
        shaped = len(turns) >= 2 and turns[0].role == "user" and turns[-1].role == "assistant"
        if record.language in (None, "en") and plain and shaped:
            found.append(Source(record.id, turns, record.domain, "en"))
    return found
