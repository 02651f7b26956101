"""Importers on real data (Open-Assistant trees, hh-rlhf) and crafted exports of other
tools; malformed files fail naming the file and place, and the CLI imports nothing then."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from datamill.cli import app
from datamill.errors import InputError
from datamill.export.preference import preference
from datamill.importers import read
from datamill.importers.common import detect
from datamill.store import Dataset
from support import require

DATA = Path(__file__).parent.parent / "data"
OASST = DATA / "oasst" / "en_100_tree_head20.jsonl"
HH = DATA / "hh_rlhf" / "harmless-base-test_head150.jsonl.gz"


def pairs(records: list) -> list[dict]:  # type: ignore[type-arg]
    fmt = preference()
    return [
        row
        for r in records
        if isinstance(got := fmt.rows(r, "conversational"), list)
        for row in got
    ]


def test_oasst_trees_become_ranked_candidates_and_pairs() -> None:
    assert detect(OASST) == "oasst"
    records = list(read(OASST))
    trees = [json.loads(line) for line in OASST.open()]
    assert {r.metadata["tree_id"] for r in records} == {t["message_tree_id"] for t in trees}
    first = records[0]
    assert first.messages[0].content == trees[0]["prompt"]["text"]
    ranks = sorted(c.metadata["rank"] for c in first.candidates)
    assert ranks == list(range(len(first.candidates)))
    best = next(c for c in first.candidates if c.metadata["rank"] == 0)
    assert first.response == best.content  # the best reply is the SFT turn
    assert first.provenance.parents == [trees[0]["message_tree_id"]]
    rows = pairs(records)
    assert len(rows) > 50 and {r["preference_source"] for r in rows} == {"imported"}
    assert all(r["chosen"] != r["rejected"] for r in rows)


def test_hh_rlhf_pairs() -> None:
    assert detect(HH) == "hh-rlhf"
    records = list(read(HH))
    assert len(records) == 150
    with gzip.open(HH) as f:
        raw = json.loads(f.readline())
    assert records[0].messages[0].content == "what are some pranks with a pen i can do?"
    assert records[0].messages[-1].role == "user"
    assert raw["chosen"].endswith(records[0].candidates[0].content)
    rows = pairs(records)
    assert len(rows) == 150 and rows[0]["chosen"][0]["content"].startswith("No, sorry!")


LABEL_STUDIO = [
    {
        "id": 1,
        "data": {"prompt": "Say hi", "answer1": "Hi!", "answer2": "<b>Go away</b>"},
        "annotations": [
            {
                "id": 10,
                "completed_by": {"email": "ann@example.org"},
                "lead_time": 12.5,
                "result": [
                    {"from_name": "pref", "type": "pairwise", "value": {"selected": "left"}},
                    {"from_name": "ok", "type": "choices", "value": {"choices": ["yes"]}},
                ],
            },
            {"id": 11, "completed_by": 3, "was_cancelled": True, "result": []},
        ],
    }
]

ARGILLA = [
    {
        "id": "r1",
        "fields": {
            "chat": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
        },
        "metadata": {"topic": "math"},
        "responses": {
            "rating": [
                {"value": 5, "user_id": "u1", "status": "submitted"},
                {"value": 1, "user_id": "u2", "status": "draft"},
            ]
        },
        "suggestions": {},
        "status": "completed",
    }
]


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_label_studio_tasks_with_annotations(tmp_path: Path) -> None:
    path = write(tmp_path / "ls.json", LABEL_STUDIO)
    assert detect(path) == "labelstudio"
    (record,) = read(path)
    assert [c.content for c in record.candidates] == ["Hi!", "<b>Go away</b>"]
    assert [(a.annotator, a.question, a.value, a.seconds) for a in record.annotations] == [
        ("ann@example.org", "pref", 0, 12.5),
        ("ann@example.org", "ok", "yes", 12.5),
    ]
    (row,) = pairs([record])
    assert (row["chosen"][0]["content"], row["preference_source"]) == ("Hi!", "annotations")


def test_argilla_records_with_submitted_responses(tmp_path: Path) -> None:
    path = write(tmp_path / "records.json", ARGILLA)
    assert detect(path) == "argilla" and detect(tmp_path) == "argilla"
    (record,) = read(tmp_path, "argilla")
    assert record.response == "4" and record.metadata["topic"] == "math"
    assert [(a.annotator, a.value) for a in record.annotations] == [("u1", 5)]


def save_hf(path: Path, rows: list[dict], split: str | None = None) -> Path:  # type: ignore[type-arg]
    """A dataset directory laid out as datasets' save_to_disk writes it."""
    directory = path / split if split else path
    directory.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    with (
        pa.OSFile(str(directory / "data-00000-of-00001.arrow"), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=2)
    state = {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": split}
    write(directory / "state.json", state)
    write(directory / "dataset_info.json", {})
    if split:
        write(path / "dataset_dict.json", {"splits": [split]})
    return path


def test_hf_dataset_saved_to_disk(tmp_path: Path) -> None:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}],
        }
        for i in range(5)
    ]
    path = save_hf(tmp_path / "hf", rows, split="train")
    assert detect(path) == "hf"
    records = list(read(path))
    assert len(records) == 5 and records[0].metadata["split"] == "train"
    assert pairs(records)[0]["chosen"] == [{"role": "assistant", "content": "good"}]


def test_hf_dataset_written_by_datasets_itself(tmp_path: Path) -> None:
    datasets = require("datasets", "pip install 'datamill[dev]'")
    rows = {"instruction": ["Add 2 and 2", "Name a colour"], "output": ["4", "Blue"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(tmp_path / "d")
    records = list(read(tmp_path / "d"))
    assert [r.response for r in records] == ["4", "Blue"]


def test_truncated_arrow_file_is_an_error_naming_it(tmp_path: Path) -> None:
    rows = [{"prompt": f"question {i}", "response": "x" * 200} for i in range(50)]
    path = save_hf(tmp_path / "hf", rows)
    arrow = path / "data-00000-of-00001.arrow"
    arrow.write_bytes(arrow.read_bytes()[:-300])
    with pytest.raises(InputError, match=r"data-00000-of-00001\.arrow:\d+: cannot read Arrow"):
        list(read(path))


def tree(replies: list[dict]) -> dict:  # type: ignore[type-arg]
    root = {"message_id": "m0", "text": "Hi?", "role": "prompter", "replies": replies}
    return {"message_tree_id": "t1", "prompt": root}


def reply(mid: str, parent: str = "m0", **extra: object) -> dict:  # type: ignore[type-arg]
    return {"message_id": mid, "parent_id": parent, "text": "Hello", "role": "assistant", **extra}


@pytest.mark.parametrize(
    ("lines", "fmt", "where"),
    [
        (
            ['{"message_tree_id": "t", "prompt": {}}', "{bad json"],
            "oasst",
            r"t\.jsonl:1: field 'prompt\.message_id'",
        ),
        (
            [json.dumps(tree([reply("m1", parent="mX")]))],
            "oasst",
            r":1: field 'prompt\.replies\[0\]\.parent_id': orphan",
        ),
        (
            [json.dumps(tree([reply("m0")]))],
            "oasst",
            r":1: field 'prompt\.replies\[0\]\.message_id'.*cycle",
        ),
        (
            [json.dumps(tree([reply("m1"), reply("m2", role="prompter")]))],
            "oasst",
            "roles must alternate",
        ),
        ([json.dumps(tree([reply("m1")])), "{bad json"], "oasst", r":2: invalid JSON"),
        (
            ['{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b", "rejected": 3}'],
            "hh-rlhf",
            r":1: field 'rejected'",
        ),
        (
            ['{"chosen": "no transcript", "rejected": "here"}'],
            "hh-rlhf",
            r":1: .*share no conversation",
        ),
        (['{"fields": {"text": "only text"}, "responses": {}}'], "argilla", r":1: expected one of"),
        (['{"fields": {"prompt": "p"}, "responses": {"q": [{"value": 1}]}}'], "argilla", "user_id"),
    ],
)
def test_malformed_lines_name_file_line_and_field(
    tmp_path: Path, lines: list[str], fmt: str, where: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=where):
        list(read(path, fmt))


def test_label_studio_task_without_data(tmp_path: Path) -> None:
    path = write(tmp_path / "ls.json", [LABEL_STUDIO[0], {"id": 2, "annotations": []}])
    with pytest.raises(InputError, match=r"ls\.json: field '\[1\]\.data': a task needs its data"):
        list(read(path, "labelstudio"))
    (tmp_path / "bad.json").write_text('[{"data": {}}')
    with pytest.raises(InputError, match=r"bad\.json: invalid JSON"):
        list(read(tmp_path / "bad.json", "labelstudio"))


def test_cli_imports_nothing_when_a_file_is_bad(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    bad = tmp_path / "trees.jsonl"
    shutil.copy(OASST, bad)
    with bad.open("a") as f:
        f.write(json.dumps(tree([reply("m1", parent="nowhere")])) + "\n")
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["import", str(OASST), str(bad), "--out", str(out)])
    assert result.exit_code != 0 and "orphan" in str(result.exception)
    assert Dataset.open(out).versions == []
    assert not list((out / "shards").iterdir())
    quarantined = CliRunner().invoke(
        app,
        [
            "import",
            str(bad),
            "--out",
            str(out),
            "--on-error",
            "quarantine",
            "--license",
            "Apache-2.0",
        ],
    )
    assert quarantined.exit_code == 0, quarantined.output
    records = list(Dataset.open(out).records())
    assert len(records) == len(list(read(OASST)))
    assert {r.metadata["license"] for r in records} == {"Apache-2.0"}
