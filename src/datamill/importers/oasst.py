"""OpenAssistant conversation trees (one ``{"message_tree_id", "prompt": {...}}`` per line,
each message with its ``replies``) flattened into records with ranked candidates.

Every prompter message that has assistant replies gives one record: the conversation
from the root down to it, the replies as candidates (their human ``rank``, 0 best, in
``metadata["rank"]``, so the preference export makes pairs from them) and the best-ranked
reply as the record's own last turn (so the SFT export has it too). Deleted messages and
their subtrees are left out. Records of one tree name the tree as their parent, so a
leak-free split keeps a tree on one side.

A tree is refused whole, naming the line and the message's path, if a message lacks its
id, text or role, if a reply's ``parent_id`` is not its parent's id (an orphan), if an id
comes twice (a cycle), or if roles do not alternate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datamill.importers.common import Item, Rejected, json_items
from datamill.ingest import _Bad, _field_and_reason
from datamill.records import Record

ROLES = {"prompter": "user", "assistant": "assistant"}
_KEPT = ("message_id", "lang", "review_result", "synthetic", "model_name", "emojis")


def read_oasst(path: Path) -> Iterator[Record | Rejected]:
    for item in json_items(path):
        if not isinstance(item, Item):
            yield item
            continue
        try:
            records = list(tree_records(item.value, path.name))
        except (_Bad, ValidationError) as e:
            yield Rejected(item.error(path, *_field_and_reason(e)), item.value)
            continue
        yield from records


def _check(node: Any, where: str, parent: dict[str, Any] | None, seen: set[str]) -> None:
    if not isinstance(node, dict):
        raise _Bad(where, "a message must be a JSON object")
    for key in ("message_id", "text", "role"):
        if not isinstance(node.get(key), str):
            raise _Bad(f"{where}.{key}", "missing or not a string")
    if node["role"] not in ROLES:
        raise _Bad(f"{where}.role", f"expected prompter or assistant, not {node['role']!r}")
    if node["message_id"] in seen:
        raise _Bad(f"{where}.message_id", f"{node['message_id']} comes twice (a cycle)")
    seen.add(node["message_id"])
    if parent is not None:
        if node.get("parent_id") != parent["message_id"]:
            raise _Bad(f"{where}.parent_id", f"orphan: its parent is {parent['message_id']}")
        if node["role"] == parent["role"]:
            raise _Bad(f"{where}.role", "roles must alternate")
    if not isinstance(node.get("replies", []), list):
        raise _Bad(f"{where}.replies", "expected a list")


def tree_records(tree: dict[str, Any], file_name: str) -> Iterator[Record]:
    tree_id = tree.get("message_tree_id")
    root = tree.get("prompt")
    if not isinstance(tree_id, str):
        raise _Bad("message_tree_id", "missing or not a string")
    if root is None:
        raise _Bad("prompt", "missing")
    # check the whole tree first: a bad tree gives no record at all
    stack: list[tuple[Any, str, dict[str, Any] | None]] = [(root, "prompt", None)]
    seen: set[str] = set()
    while stack:
        node, where, parent = stack.pop()
        _check(node, where, parent, seen)
        if node["role"] == "prompter" and parent is None and node.get("parent_id") is not None:
            raise _Bad(f"{where}.parent_id", "the root prompt has a parent")
        stack += [(r, f"{where}.replies[{i}]", node) for i, r in enumerate(node.get("replies", []))]
    yield from _walk(root, [], tree_id, file_name)


def _walk(
    node: dict[str, Any], path: list[dict[str, str]], tree_id: str, file_name: str
) -> Iterator[Record]:
    if node.get("deleted"):
        return
    path = [*path, {"role": ROLES[node["role"]], "content": node["text"]}]
    replies = [r for r in node.get("replies", []) if not r.get("deleted")]
    if node["role"] == "prompter" and replies:
        yield _record(node, path, replies, tree_id, file_name)
    for reply in replies:
        yield from _walk(reply, path, tree_id, file_name)


def _record(
    node: dict[str, Any],
    path: list[dict[str, str]],
    replies: list[dict[str, Any]],
    tree_id: str,
    file_name: str,
) -> Record:
    ranked = sorted(replies, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
    candidates = [
        {
            "content": r["text"],
            "source": "synthetic" if r.get("synthetic") else "human",
            "model": r.get("model_name"),
            "metadata": {k: r[k] for k in ("rank", *_KEPT) if r.get(k) is not None},
        }
        for r in replies
    ]
    best = ranked[0]
    messages = path
    if best.get("rank") is not None or len(replies) == 1:
        messages = [*path, {"role": "assistant", "content": best["text"]}]
    return Record.model_validate(
        {
            "messages": messages,
            "candidates": candidates,
            "language": node.get("lang"),
            "metadata": {"tree_id": tree_id, "message_id": node["message_id"]},
            "provenance": {
                "source": "imported",
                "parents": [tree_id],
                "params": {"file": file_name, "format": "oasst"},
            },
        }
    )
