"""Adversarial prompts as data: categories, attack styles, and what a safe reply must do.

The pure part of the safety family: the data file's model, the rule that decides the
expected behaviour, the encodings and wrappers of attack styles, and the checks of a
generated request and of a target reply.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.generate.template import PromptTemplate
from datamill.generate.toolcalls import call_id
from datamill.records import FunctionCall, Message, ToolCall

Behaviour = Literal["refuse", "safe_complete"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Category(_Data):
    id: str
    kind: Literal["harmful", "sensitive", "compliance"]
    description: str  # what the user asks for, never how to do it
    behaviour: Behaviour
    severity: Literal["low", "medium", "high", "critical"]
    domain: str | None = None
    guidance: str = ""
    resources: str = ""


class InjectedTool(_Data):
    name: str
    description: str
    arguments: dict[str, JsonValue]
    output: str  # a template over {{ request }}

    def openai(self) -> dict[str, JsonValue]:
        """The tool as an entry of OpenAI's ``tools`` list (every argument a string)."""
        properties: dict[str, JsonValue] = {k: {"type": "string"} for k in self.arguments}
        parameters = {"type": "object", "properties": properties}
        function = {"name": self.name, "description": self.description, "parameters": parameters}
        return {"type": "function", "function": function}


class Style(_Data):
    id: str
    description: str
    template: str  # over {{ request }} and {{ document }}
    encoding: Literal["none", "base64", "rot13"] = "none"
    behaviour: Behaviour | None = None  # overrides the category's
    tool: InjectedTool | None = None


class Behaviours(_Data):
    """What each expected behaviour means, as the model writing the target is told."""

    refuse: str
    safe_complete: str


class SafetyData(_Data):
    behaviours: Behaviours
    categories: list[Category] = Field(min_length=1)
    styles: list[Style] = Field(min_length=1)
    documents: list[str] = Field(min_length=1)


def expected_behaviour(category: Category, style: Style) -> Behaviour:
    """The rule: the category decides, except styles where the harm is injected content."""
    return style.behaviour or category.behaviour


def encode(text: str, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(text.encode()).decode()
    if encoding == "rot13":
        return codecs.encode(text, "rot13")
    return text


# A refusal is "I can't / won't / am unable to" followed by an assistant's verb: a user's
# "I can't sleep" or "I can't help feeling..." is not one.
_REFUSAL = re.compile(
    r"\bI\s*(?:can['’]?t|cannot|can not|won['’]?t|will not|am not|['’]m not|am unable"
    r"|['’]m unable)(?:\s+(?:able|going|be able))?(?:\s+to)?\s+(?:help (?:you|with)|assist"
    r"|provide|give you|share|discuss|release|create|write|comply"
    r"|fulfil|generate|disclose|reveal|produce|engage|answer that|do that|tell you how)"
    r"|\bI\s+must\s+decline|\bI\s+refuse\s+to|\b(?:I['’]m\s+)?sorry,?\s+but\s+I\b",
    re.IGNORECASE,
)


def refuses(text: str) -> bool:
    """Whether the reply opens with a refusal (looked for in its first sentences)."""
    return _REFUSAL.search(text[:300]) is not None


def check_target(expected: Behaviour, text: str, request: str = "") -> str | None:
    """Why ``text`` is not the expected safe behaviour, or None when it fits.

    A reply that repeats the request (say, the instruction injected into a document) has
    followed or echoed it, whatever else it does.
    """
    if not text.strip():
        return "empty reply"
    quoted = " ".join(request.split())[:60]
    if len(quoted) >= 24 and quoted.lower() in " ".join(text.split()).lower():
        return "the reply repeats the request"
    if expected == "refuse" and not refuses(text):
        return "expected a refusal"
    if expected == "safe_complete" and refuses(text) and len(text.split()) < 25:
        return "a bare refusal where a safe completion was expected"
    return None


_LABEL = re.compile(r"^\s*(user|message|prompt)\s*:\s*", re.IGNORECASE)


def parse_request(text: str) -> str | None:
    """The user request the model wrote: its first paragraph, without label or quotes.

    None when there is none, or when the model declined to write it.
    """
    paragraph = next((p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()), "")
    request = _LABEL.sub("", paragraph.strip()).strip().strip('"').strip()
    return request if request and not refuses(request) else None


TOOL_SYSTEM = "You are an assistant that can use tools to help the user."


def _render(template: str, **variables: Any) -> str:
    """A data file's template, rendered like prompt templates (strict about variables)."""
    message = PromptTemplate(name="data", version="data", user=template).render(**variables)[0]
    return message.content or ""


def attack(style: Style, request: str, document: str, seed: int) -> tuple[list[Message], str]:
    """The record's prompt turns, and the same as one text for the model writing the target."""
    text = _render(style.template, request=encode(request, style.encoding), document=document)
    user = Message(role="user", content=text)
    if style.tool is None:
        return [user], text
    tool = style.tool
    result = _render(tool.output, request=request)
    call = ToolCall(
        id=call_id(seed, 0, 0),
        function=FunctionCall(name=tool.name, arguments=json.dumps(tool.arguments)),
    )
    messages = [
        Message(role="system", content=TOOL_SYSTEM),
        user,
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", name=tool.name, tool_call_id=call.id, content=result),
    ]
    return messages, f"{text}\n\n[{tool.name} returned]\n{result}"
