"""Anthropic hh-rlhf style pairs: ``{"chosen": transcript, "rejected": transcript}``, where a
transcript is ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``.

The two transcripts share the conversation up to the last assistant turn they differ in:
that is the prompt; what follows in each is a candidate (chosen rank 0, rejected rank 1).
In a few real pairs the chosen side goes on for more turns; its candidate then holds the
rest of the transcript, as written; and turns are kept as they come, even two of one
role in a row, as some real transcripts have.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datamill.importers.common import Item, Rejected, json_items, to_record
from datamill.ingest import _Bad
from datamill.records import Record

ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(text: str, field: str) -> list[dict[str, str]]:
    parts = _TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise _Bad(field, "expected a transcript starting with '\\n\\nHuman: '")
    messages = [
        {"role": _ROLE[role], "content": body.strip()}
        for role, body in zip(parts[1::2], parts[2::2], strict=True)
    ]
    return messages


def parse_pair(chosen: Any, rejected: Any) -> tuple[list[dict[str, str]], str, str]:
    """The shared prompt's messages and the two replies."""
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise _Bad(key, "Input should be a valid string")
    cut = os.path.commonprefix([chosen, rejected]).rfind(ASSISTANT)  # noqa: RUF071 -- text
    if cut < 0:
        raise _Bad(None, "chosen and rejected share no conversation before an assistant turn")
    messages = parse_transcript(chosen[:cut], "chosen")
    if messages[-1]["role"] != "user":
        raise _Bad("chosen", "the shared conversation does not end with a Human turn")
    # A reply may be empty: in a few real pairs, saying nothing was preferred.
    return (
        messages,
        chosen[cut + len(ASSISTANT) :].strip(),
        rejected[cut + len(ASSISTANT) :].strip(),
    )


def pair_record(row: dict[str, Any], file_name: str, chosen: str, rejected: str) -> Record:
    messages, a, b = parse_pair(row.get(chosen), row.get(rejected))
    rest = {k: v for k, v in row.items() if k not in (chosen, rejected)}
    return ranked_record(messages, [a, b], rest, file_name, "hh-rlhf")


def ranked_record(
    messages: list[Any], replies: list[str], metadata: dict[str, Any], file_name: str, fmt: str
) -> Record:
    """A prompt with replies ranked in order (best first) as imported candidates."""
    candidates = [
        {"content": text, "source": "imported", "metadata": {"rank": rank}}
        for rank, text in enumerate(replies)
    ]
    return Record.model_validate(
        {
            "messages": messages,
            "candidates": candidates,
            "metadata": metadata,
            "provenance": {"source": "imported", "params": {"file": file_name, "format": fmt}},
        }
    )


def read_hh(path: Path) -> Iterator[Record | Rejected]:
    for item in json_items(path):
        if isinstance(item, Item):
            yield to_record(
                item, path, lambda row: pair_record(row, path.name, "chosen", "rejected")
            )
        else:
            yield item
