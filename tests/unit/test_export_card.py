"""The dataset card of an export with mixed sources carries the right numbers."""

from __future__ import annotations

from pathlib import Path

from datamill.export import make_format
from datamill.export.run import export_dataset
from datamill.export.split import parse_split
from datamill.records import Annotation, CheckResult, Decision, Provenance, Record
from datamill.store import Dataset
from support import chat


def synthetic(i: int) -> Record:
    return Record(
        messages=chat(f"synthetic question {i} about kettles and their descaling", "r").messages,
        provenance=Provenance(
            source="synthetic",
            model="smollm2",
            recipe="support",
            template="qa",
            template_version="2",
        ),
        checks={"length": CheckResult(passed=i % 4 != 0), "pii": CheckResult(passed=True)},
    )


def human(i: int) -> Record:
    answers = [Annotation(annotator=f"ann{k}", question="ok", value="yes") for k in range(3)]
    resolved = Decision(outcome="accept", by="majority", details={"agreement": 0.5 + i / 10})
    return Record(
        messages=chat(f"human written question {i} on contract law in France", "a").messages,
        provenance=Provenance(source="human"),
        metadata={"license": "CC-BY-4.0"},
        annotations=answers,
        decisions={"resolve": resolved},
    )


def test_card_for_a_mixed_dataset(tmp_path: Path) -> None:
    records = [synthetic(i) for i in range(8)] + [human(i) for i in range(2)]
    records.append(
        chat("an <b>imported</b> | one", "x", metadata={"license": "<script>x</script>"})
    )
    ds = Dataset.create(tmp_path / "mixed")
    ds.write(records, stage="import")
    report = export_dataset(
        ds.path, tmp_path / "out", make_format("sft"), split=parse_split("test=0.3"), card=True
    )
    assert report.card == tmp_path / "out" / "README.md"
    card = report.card.read_text()
    assert report.left_out == {"failed_checks": 2}
    assert sum(report.records.values()) == 9
    for split in ("train", "test"):
        line = f"| {split} | {split}.jsonl | {report.records[split]} | {report.rows[split]} |"
        assert line in card
    assert "Left out: 2 failed_checks" in card
    assert "| synthetic | 6 | 66.7% |" in card  # 6 of the 9 exported records
    assert "| human | 2 | 22.2% |" in card
    assert "| imported | 1 | 11.1% |" in card
    assert "| smollm2 | 6 | 66.7% |" in card
    assert "| qa@2 | 6 | 66.7% |" in card
    assert "| CC-BY-4.0 | 2 | 22.2% |" in card
    # pass rates are over exported records: the failing ones were left out
    assert "| length | 6 | 0 | 0 | 100.0% |" in card
    assert "2 records (22.2%) carry 6 answers from 3 annotators." in card
    assert "| overall | 2 | 0.550 |" in card
    assert "| majority | 2 | 22.2% |" in card
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "path: test.jsonl" in card.split("---")[1]  # the Hub's YAML header


def test_card_beside_a_single_file_with_one_license(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "d")
    ds.write([chat("q", "a", metadata={"license": "MIT"})], stage="import")
    report = export_dataset(ds.path, tmp_path / "sft.jsonl", make_format("sft"), card=True)
    assert report.card == tmp_path / "sft.md"
    text = report.card.read_text()
    assert (
        "license: mit" in text and "No automatic checks" in text and "No human annotations" in text
    )
