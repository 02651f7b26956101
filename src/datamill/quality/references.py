"""Real human-labelled response pairs, shipped with datamill, to calibrate judges against.

``llmbar-natural`` (100 pairs) and ``llmbar-mtbench`` (200 pairs, MT-Bench expert votes)
from LLMBar; ``pandalm`` (999 pairs, three annotators each: the label is their majority
vote, a tie when the majority says tie; pairs with no majority are left out); ``hh-rlhf``
(Anthropic's harmless-base test split: the chosen and rejected last turns after a shared
conversation, placed first or second by a fixed coin per pair so that a judge's position
bias cannot pass for agreement). Each folder under ``datamill/data/references`` keeps the
upstream license and a SOURCE.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from datamill.errors import InputError
from datamill.records import Candidate, Message, Provenance, Record


@dataclass(frozen=True)
class Pair:
    """Two responses to one conversation and the human verdict: 1 or 2 (the better
    response), 0 (a tie). ``votes`` holds each annotator's verdict where known."""

    id: str
    prompt: list[Message]
    a: str
    b: str
    label: int
    votes: tuple[int, ...] = ()

    def record(self) -> Record:
        """The pair as a record with two candidates, the form the pairwise judge reads."""
        return Record(
            messages=self.prompt,
            candidates=[Candidate(content=t, source="imported") for t in (self.a, self.b)],
            metadata={"reference": self.id, "label": self.label, "votes": list(self.votes)},
            provenance=Provenance(source="imported"),
        )


@dataclass
class Reference:
    name: str
    pairs: list[Pair]
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> pairs


def _shipped(folder: str, name: str) -> Path:
    return Path(str(resources.files("datamill.data") / "references" / folder / name))


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
            return json.load(f)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(str(path), None, None, f"not a readable JSON file: {e}") from None


def _label(value: object, path: Path, where: str, allowed: tuple[int, ...]) -> int:
    try:
        label = int(str(value).strip())
    except ValueError:
        label = -1
    if label not in allowed:
        raise InputError(str(path), None, where, f"expected one of {allowed}, got {value!r}")
    return label


def _rows(path: Path, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = _read_json(path)
    if not isinstance(rows, list):
        raise InputError(str(path), None, None, "expected a JSON list of pairs")
    for i, row in enumerate(rows):
        missing = [k for k in keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise InputError(str(path), None, f"[{i}].{missing[0]}", "missing")
    return rows


def _user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def load_llmbar(path: Path, name: str) -> Reference:
    rows = _rows(path, ("input", "output_1", "output_2", "label"))
    pairs = [
        Pair(
            f"{name}:{i}",
            _user(str(r["input"])),
            str(r["output_1"]),
            str(r["output_2"]),
            _label(r["label"], path, f"[{i}].label", (1, 2)),
        )
        for i, r in enumerate(rows)
    ]
    return Reference(name, pairs)


def load_pandalm(path: Path | None = None) -> Reference:
    path = path or _shipped("pandalm", "testset-v1.json.gz")
    keys = ("idx", "instruction", "input", "response1", "response2")
    rows = _rows(path, (*keys, "annotator1", "annotator2", "annotator3"))
    pairs, left_out = [], Counter[str]()
    for i, r in enumerate(rows):
        votes = tuple(
            _label(r[f"annotator{k}"], path, f"[{i}].annotator{k}", (0, 1, 2)) for k in (1, 2, 3)
        )
        (label, count), *_ = Counter(votes).most_common(1)
        if count < 2:
            left_out["no majority"] += 1
            continue
        text = str(r["instruction"]) + (f"\n\n{r['input']}" if str(r["input"]).strip() else "")
        a, b = str(r["response1"]), str(r["response2"])
        pairs.append(Pair(f"pandalm:{r['idx']}", _user(text), a, b, label, votes))
    return Reference("pandalm", pairs, dict(left_out))


_TURN = re.compile(r"\n\n(Human|Assistant): ")


def transcript_turns(text: str) -> list[Message]:
    """An hh-rlhf transcript (``\\n\\nHuman: … \\n\\nAssistant: …``) as chat messages."""
    parts = _TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError("a transcript starts with '\\n\\nHuman: '")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        Message(role=roles[who], content=said.strip())  # type: ignore[arg-type]
        for who, said in zip(parts[1::2], parts[2::2], strict=True)
    ]


def load_hh_rlhf(path: Path | None = None) -> Reference:
    path = path or _shipped("hh_rlhf", "harmless-base-test.jsonl.gz")
    pairs, left_out = [], Counter[str]()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, None, f"not a readable gzip file: {e}") from None
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            chosen, rejected = transcript_turns(row["chosen"]), transcript_turns(row["rejected"])
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(str(path), n, None, f"not a chosen/rejected pair: {e}") from None
        last = {chosen[-1].role, rejected[-1].role}
        if chosen[:-1] != rejected[:-1] or last != {"assistant"}:
            left_out["conversations differ before the last turn"] += 1
            continue
        heads = hashlib.sha256(f"hh-rlhf:{n}".encode()).digest()[0] % 2 == 0
        good, bad = chosen[-1].content or "", rejected[-1].content or ""
        a, b, label = (good, bad, 1) if heads else (bad, good, 2)
        pairs.append(Pair(f"hh-rlhf:{n}", chosen[:-1], a, b, label))
    return Reference("hh-rlhf", pairs, dict(left_out))


REFERENCES: dict[str, Callable[[], Reference]] = {
    "llmbar-natural": lambda: load_llmbar(_shipped("llmbar", "natural.json.gz"), "llmbar-natural"),
    "llmbar-mtbench": lambda: load_llmbar(_shipped("llmbar", "mt_bench.json.gz"), "llmbar-mtbench"),
    "pandalm": load_pandalm,
    "hh-rlhf": load_hh_rlhf,
}


def load_reference(name: str, limit: int | None = None, seed: int = 0) -> Reference:
    """A shipped reference set; with ``limit``, a random sample of that many pairs (fixed
    by ``seed``), in the set's order."""
    if name not in REFERENCES:
        raise ValueError(f"no reference '{name}'; known: {', '.join(REFERENCES)}")
    reference = REFERENCES[name]()
    if limit is not None and limit < len(reference.pairs):
        keep = sorted(random.Random(seed).sample(range(len(reference.pairs)), limit))
        reference.pairs = [reference.pairs[i] for i in keep]
    return reference
