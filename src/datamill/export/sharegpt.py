"""ShareGPT: ``{"conversations": [{"from", "value"}], "system", "tools"}``, as LLaMA-Factory,
Axolotl and FastChat read it.

Roles map user → ``human``, assistant → ``gpt``, tool → ``observation``; an assistant
turn's tool calls become a ``function_call`` turn whose value is the JSON of the calls
(one object, or a list for several). A leading system message goes to ``system``; the
record's tool definitions (``metadata["tools"]``) to ``tools`` as JSON text.
"""

from __future__ import annotations

import json

import pyarrow as pa

from datamill.export.rows import NO_REPLY, Format, Row, Skip, Style
from datamill.records import Message, Record

FROM = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}


def _turns(m: Message) -> list[Row]:
    turns: list[Row] = []
    if m.content is not None and (m.content or not m.tool_calls):
        turns.append({"from": FROM[m.role], "value": m.content})
    if m.tool_calls:
        calls = [
            {"name": c.function.name, "arguments": _arguments(c.function.arguments)}
            for c in m.tool_calls
        ]
        value = calls[0] if len(calls) == 1 else calls
        turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
    return turns


def _arguments(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text  # kept as the model wrote it


def rows(record: Record, style: Style) -> list[Row] | Skip:
    if record.response is None and not record.messages[-1].tool_calls:
        return NO_REPLY
    ms = record.messages
    system = ms[0].content if ms[0].role == "system" else None
    turns = [t for m in (ms[1:] if system is not None else ms) for t in _turns(m)]
    tools = record.metadata.get("tools")
    return [
        {
            "conversations": turns,
            "system": system,
            "tools": json.dumps(tools, ensure_ascii=False) if tools else None,
        }
    ]


def schema(style: Style) -> pa.Schema:
    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    return pa.schema(
        [("conversations", pa.list_(turn)), ("system", pa.string()), ("tools", pa.string())]
    )


SHAREGPT = Format("sharegpt", rows, schema, styles=("conversational",))
