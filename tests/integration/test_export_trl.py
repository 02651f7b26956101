"""Every export format, from real data, loaded by ``datasets`` and checked with TRL's
dataset helpers (``trl.data_utils``).

TRL's package imports torch through its trainers, but ``trl.data_utils`` needs only
``datasets`` and ``transformers`` (which run without torch): the dev install puts both in
and installs ``trl`` with ``--no-deps`` (see the Makefile), so no torch is pulled. Chat
templates are applied with a tokenizer built here, offline: a word-level vocabulary and a
ChatML template, enough for TRL to render and check every row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamill.export import make_format
from datamill.export.run import export_dataset
from datamill.export.split import parse_split
from datamill.importers import read
from datamill.records import FunctionCall, Message, Provenance, Record, ToolCall
from datamill.store import Dataset
from support import require

DATA = Path(__file__).parent.parent / "data"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] or '' }}"
    "{% if m.get('tool_calls') %}{{ m['tool_calls'] | tojson }}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def trl():  # type: ignore[no-untyped-def]
    require("datasets", "pip install 'datamill[dev]'")
    require("transformers", "pip install 'datamill[dev]'")
    return require("trl.data_utils", "pip install --no-deps 'trl>=1,<2' (see the Makefile)")


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", chat_template=CHATML)


def tool_records() -> list[Record]:
    call = ToolCall(id="c1", function=FunctionCall(name="get_order", arguments='{"id": 7}'))
    messages = [
        Message(role="user", content="Where is order 7?"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", tool_call_id="c1", content='{"status": "shipped"}'),
        Message(role="assistant", content="It has shipped."),
    ]
    tool = {"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}
    return [
        Record(
            messages=messages, metadata={"tools": [tool]}, provenance=Provenance(source="synthetic")
        )
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trl") / "ds"
    records = [*read(DATA / "oasst" / "en_100_tree_head20.jsonl")]
    records += list(read(DATA / "hh_rlhf" / "harmless-base-test_head150.jsonl.gz"))[:40]
    Dataset.create(path).write([*records, *tool_records()], stage="import")
    return path


def load(datasets, out: Path, file_format: str, schema):  # type: ignore[no-untyped-def]
    """JSON Lines carry no types: ``datasets`` guesses them per file, and a split without
    tool calls would not match one with them, so JSONL is loaded with the format's
    features, as the export's Arrow schema gives them. Parquet carries its own."""
    files = {p.stem: str(p) for p in out.glob(f"*.{file_format}")}
    if file_format == "parquet":
        return datasets.load_dataset("parquet", data_files=files)
    features = datasets.Features.from_arrow_schema(schema)
    return datasets.load_dataset("json", data_files=files, features=features)


CASES = [
    ("sft", "conversational", {"messages"}),
    ("sft", "standard", {"prompt", "completion"}),
    ("preference", "conversational", {"prompt", "chosen", "rejected"}),
    ("preference", "standard", {"prompt", "chosen", "rejected"}),
    ("kto", "conversational", {"prompt", "completion", "label"}),
    ("kto", "standard", {"prompt", "completion", "label"}),
    ("reward", "conversational", {"prompt", "response", "score"}),
]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
@pytest.mark.parametrize(("name", "style", "columns"), CASES)
def test_exports_load_and_pass_trl_checks(  # type: ignore[no-untyped-def]
    trl,
    tokenizer,
    dataset: Path,
    tmp_path: Path,
    name: str,
    style: str,
    columns: set,
    file_format: str,
) -> None:
    import datasets

    out = tmp_path / "out"
    fmt = make_format(name, judge="judge")
    report = export_dataset(
        dataset,
        out,
        fmt,
        file_format=file_format,
        style=style,
        split=parse_split("test=0.2"),
        card=True,
    )
    if name == "reward":  # imported ranks are orders, not scores: nothing to write
        assert report.written == 0 and report.left_out["no_score"] > 0
        return
    loaded = load(datasets, out, file_format, fmt.schema(style))  # type: ignore[arg-type]
    assert set(loaded) == {"train", "test"}
    assert {s: len(loaded[s]) for s in loaded} == report.rows
    assert columns <= set(loaded["train"].column_names)
    for split in loaded.values():
        for example in split:
            assert trl.is_conversational(example) is (style == "conversational")
            rendered = trl.maybe_apply_chat_template(
                {k: example[k] for k in columns}, tokenizer, tools=example.get("tools")
            )
            assert all(isinstance(rendered[k], str) for k in rendered if k != "label")
    if name == "preference":
        # TRL's own pairing step agrees: a KTO view of the pairs has chosen → True
        unpaired = trl.unpair_preference_dataset(loaded["train"].select_columns(sorted(columns)))
        assert sum(unpaired["label"]) == len(loaded["train"])


def test_openai_and_sharegpt_load_with_datasets(
    trl, tokenizer, dataset: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import datasets

    out = tmp_path / "openai.jsonl"
    export_dataset(dataset, out, make_format("openai"))
    rows = [json.loads(line) for line in out.open()]
    with_tools = [r for r in rows if "tools" in r]
    assert len(with_tools) == 1 and with_tools[0]["messages"][1]["tool_calls"][0]["id"] == "c1"
    loaded = datasets.load_dataset("json", data_files=str(out))["train"]
    assert len(loaded) == len(rows) and trl.is_conversational(loaded[0])
    text = trl.maybe_apply_chat_template({"messages": with_tools[0]["messages"]}, tokenizer)["text"]
    assert "get_order" in text and "It has shipped." in text
    for file_format in ("jsonl", "parquet"):
        target = tmp_path / f"sharegpt.{file_format}"
        export_dataset(dataset, target, make_format("sharegpt"), file_format=file_format)
        kind = "json" if file_format == "jsonl" else "parquet"
        shared = datasets.load_dataset(kind, data_files=str(target))["train"]
        assert set(shared.column_names) == {"conversations", "system", "tools"}
        assert {t["from"] for r in shared for t in r["conversations"]} >= {
            "human",
            "gpt",
            "function_call",
        }
