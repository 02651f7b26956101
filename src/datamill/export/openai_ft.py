"""OpenAI fine-tuning chat JSONL: ``{"messages": [...], "tools": [...]}`` per line.

Assistant turns may carry ``tool_calls`` (arguments as JSON text) and tool turns their
``tool_call_id``, as the fine-tuning API reads them. A record's tool definitions come from
``metadata["tools"]`` (OpenAI function-tool objects, as the workflows family writes them).
Written as JSONL only: that is the one file format the API takes, and tool schemas are
free-form JSON that no fixed Parquet column holds.
"""

from __future__ import annotations

import pyarrow as pa

from datamill.export.rows import MESSAGES, Format, Row, Skip, Style, messages
from datamill.records import Record

NO_ASSISTANT = Skip("no_assistant_turn")


def rows(record: Record, style: Style) -> list[Row] | Skip:
    if not any(m.role == "assistant" for m in record.messages):
        return NO_ASSISTANT
    row: Row = {"messages": messages(record.messages)}
    tools = record.metadata.get("tools")
    if isinstance(tools, list) and tools and all(isinstance(t, dict) for t in tools):
        row["tools"] = tools
    return [row]


def schema(style: Style) -> pa.Schema:
    return pa.schema([("messages", MESSAGES)])  # unused: JSONL only


OPENAI = Format("openai", rows, schema, styles=("conversational",), file_formats=("jsonl",))
