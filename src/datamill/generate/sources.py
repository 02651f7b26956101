"""English conversations that families derive new data from (translations, variations…).

The shipped Self-Instruct seed tasks, or the text conversations of a user's dataset; each
keeps its id, which derived records name as their parent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from datamill.records import Message
from datamill.store import Dataset


@dataclass(frozen=True)
class English:
    """An English conversation: user and assistant turns, nothing else."""

    id: str
    messages: tuple[Message, ...]
    domain: str | None = None


def seed_tasks() -> list[English]:
    """The Self-Instruct seed tasks (Apache-2.0) as one-exchange English conversations."""
    path = resources.files("datamill") / "data" / "self_instruct" / "seed_tasks.jsonl"
    tasks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        instance = task["instances"][0]
        prompt = "\n\n".join(p for p in (task["instruction"], instance["input"]) if p.strip())
        messages = (
            Message(role="user", content=prompt),
            Message(role="assistant", content=instance["output"]),
        )
        tasks.append(English(task["id"], messages))
    return tasks


def english_records(source: str) -> list[English]:
    """A dataset's English (or unlabelled) text conversations that end with a reply."""
    found = []
    for record in Dataset.open(source).records():
        turns = tuple(m for m in record.messages if m.role != "system")
        plain = all(m.role in ("user", "assistant") and m.content for m in turns)
        shaped = len(turns) >= 2 and turns[0].role == "user" and turns[-1].role == "assistant"
        if record.language in (None, "en") and plain and shaped:
            found.append(English(record.id, turns, record.domain))
    return found
