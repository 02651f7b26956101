"""The backend protocol every LLM call goes through.

A backend is one async method, ``complete``, taking a :class:`ChatRequest` and returning
a :class:`Completion`. The embedded llama.cpp model and OpenAI-compatible servers are
both backends; generation tasks and judges only ever see this protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from datamill.records import Message, message_dict


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = None
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None  # ask for JSON matching this schema

    def sampling(self) -> dict[str, Any]:
        """The generation parameters, as recorded in provenance (unset ones left out)."""
        # What model_dump(exclude={"messages", "json_schema"}, exclude_none=True) gives,
        # without pydantic's serializer: this runs several times per call.
        params: dict[str, Any] = {}
        for name in _SAMPLING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name] = _plain(value)
        return params

    def message_dicts(self) -> list[dict[str, Any]]:
        """The messages as JSON-ready dicts without their unset fields, as APIs take them."""
        return [message_dict(m) for m in self.messages]


_SAMPLING_FIELDS = tuple(
    name for name in ChatRequest.model_fields if name not in {"messages", "json_schema"}
)


_SCALARS = frozenset({int, float, str, bool})


def _plain(value: Any) -> Any:
    if value.__class__ in _SCALARS:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Completion(BaseModel):
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model: str
    backend: str


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str

    async def complete(self, request: ChatRequest) -> Completion: ...
