"""The backend protocol every LLM call goes through.

A backend is one async method, ``complete``, taking a :class:`ChatRequest` and returning
a :class:`Completion`. The embedded llama.cpp model and OpenAI-compatible servers are
both backends; generation tasks and judges only ever see this protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from datamill.records import Message


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
        return [_message_dict(m) for m in self.messages]


_SAMPLING_FIELDS = tuple(
    name for name in ChatRequest.model_fields if name not in {"messages", "json_schema"}
)
# The fast path below knows these fields; should Message gain one, every message takes the
# slow path instead of losing the new field.
_FAST_MESSAGES = set(Message.model_fields) == {
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
}


_SCALARS = frozenset({int, float, str, bool})


def _plain(value: Any) -> Any:
    if value.__class__ in _SCALARS:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _message_dict(message: Message) -> dict[str, Any]:
    """``message.model_dump(mode="json", exclude_none=True)``, quicker for plain text turns."""
    if (
        _FAST_MESSAGES
        and message.content is not None
        and message.name is None
        and message.tool_calls is None
        and message.tool_call_id is None
    ):
        return {"role": message.role, "content": message.content}
    return message.model_dump(mode="json", exclude_none=True)


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
