"""Tools in the OpenAI function-calling format: catalogues, validation and simulated results.

A catalogue is a data file of tool definitions (JSON-schema parameters) and of the tasks
that need them. A model plans tool calls as structured output; each call is checked
against its tool's schema with ``jsonschema``, and its result is simulated from its
arguments, deterministically, so the same call always gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    create_model,
    field_validator,
    model_validator,
)


class _Blanks(dict[str, Any]):
    """Format values where an argument the call left out reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


class ResultField(BaseModel):
    """How one field of a simulated result is made; exactly one way is given."""

    model_config = ConfigDict(extra="forbid")

    arg: str | None = None  # echo this argument
    one_of: list[JsonValue] | None = Field(None, min_length=1)
    number: tuple[int, int] | None = None
    text: str | None = None  # a format string over the arguments and {n}

    @model_validator(mode="after")
    def _one_way(self) -> ResultField:
        if sum(v is not None for v in (self.arg, self.one_of, self.number, self.text)) != 1:
            raise ValueError("give exactly one of arg, one_of, number, text")
        if self.text is not None:
            self.text.format_map(_Blanks())  # positional fields or bad specs fail here
        return self


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any]
    returns: dict[str, ResultField] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as e:
            raise ValueError(f"not a valid JSON schema: {e.message}") from None
        return schema

    def openai(self) -> dict[str, JsonValue]:
        """The definition as an entry of OpenAI's ``tools`` list."""
        function = {"name": self.name, "description": self.description}
        return {"type": "function", "function": {**function, "parameters": self.parameters}}

    def signature(self) -> str:
        """A one-line summary for prompts: ``name(arg: type, opt?: type) - description``."""
        required = set(self.parameters.get("required", []))
        args = []
        for name, spec in self.parameters.get("properties", {}).items():
            kind = "|".join(json.dumps(v) for v in spec["enum"]) if "enum" in spec else None
            kind = kind or spec.get("type", "any")
            hint = f" ({spec['description']})" if "description" in spec else ""
            args.append(f"{name}{'' if name in required else '?'}: {kind}{hint}")
        return f"{self.name}({', '.join(args)}) - {self.description}"


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    request: str
    tools: list[str] = Field(min_length=1)


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company: str
    tools: list[Tool] = Field(min_length=1)
    tasks: list[Task] = Field(min_length=1)
    values: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_tools(self) -> Catalogue:
        names = {tool.name for tool in self.tools}
        for task in self.tasks:
            if unknown := set(task.tools) - names:
                raise ValueError(f"task {task.id} needs unknown tools {sorted(unknown)}")
            try:
                task.request.format_map({k: v[0] for k, v in self.values.items() if v})
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"task {task.id}: no values for {e} in its request") from None
        return self

    def tool(self, name: str) -> Tool:
        return next(tool for tool in self.tools if tool.name == name)


class PlannedCall(BaseModel):
    name: str
    arguments: dict[str, Any]


def plan_schema(tools: Sequence[Tool]) -> type[BaseModel]:
    """The answer of a planning step: the next tool calls, none when the task is done.

    The JSON schema the model is given allows a call of each tool with that tool's own
    argument schema, so that servers with constrained decoding write well-formed calls;
    validation takes any name and arguments, which datamill then checks itself, so that
    a wrong call is counted as an invalid tool call.
    """
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": tool.parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]

    def describe(schema: dict[str, Any]) -> None:
        schema["properties"]["calls"]["items"] = {"anyOf": options}

    return create_model(
        "Plan",
        __config__=ConfigDict(json_schema_extra=describe),
        calls=(list[PlannedCall], Field(max_length=4)),
    )


def check_call(tools: dict[str, Tool], name: str, arguments: Any) -> str | None:
    """What is wrong with a call of tool ``name`` with ``arguments``, or None if it is valid."""
    if name not in tools:
        return f"unknown tool {name!r}"
    validator = Draft202012Validator(
        tools[name].parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "arguments"
    return f"{name}: {where}: {error.message}"


def simulate(tool: Tool, arguments: dict[str, Any]) -> dict[str, JsonValue]:
    """The tool's result for these arguments: always the same for the same call."""
    key = json.dumps([tool.name, arguments], sort_keys=True)
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    result: dict[str, JsonValue] = {}
    for name, spec in tool.returns.items():
        if spec.arg is not None:
            result[name] = arguments.get(spec.arg)
        elif spec.one_of is not None:
            result[name] = rng.choice(spec.one_of)
        elif spec.number is not None:
            result[name] = rng.randint(*spec.number)
        elif spec.text is not None:
            values = _Blanks({**arguments, "n": rng.randint(10000, 99999)})
            result[name] = spec.text.format_map(values)
    return result


def call_id(seed: int, step: int, index: int) -> str:
    """A tool call id in OpenAI's style, stable for the same item, step and position."""
    digest = hashlib.sha256(f"{seed}:{step}:{index}".encode()).hexdigest()[:16]
    return f"call_{digest}"
