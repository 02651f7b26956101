"""Adjudication: a reviewer's answer becomes a record's final decision.

Records that resolve could not settle carry ``decisions["resolve"]`` with outcome
"adjudicate" and wait in :func:`adjudication_queue`. :func:`adjudicate` puts a reviewer's
answer in its place: the decision's ``by`` names the reviewer (``reviewer:NAME``), the
question's result keeps what the aggregation had said (``aggregated``) and the decision
keeps the one it replaces (``previous``). Answers are checked against the questions the
resolve stage used, which its version keeps in its params.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from datamill.errors import DatamillError
from datamill.quality.lineage import resolved_questions
from datamill.quality.questions import AnswerError, Question, check
from datamill.records import Decision, Record
from datamill.store import Dataset, Version


def adjudication_queue(records: Iterable[Record]) -> Iterator[Record]:
    """The records waiting for a reviewer, in dataset order (streams)."""
    for record in records:
        decision = record.decisions.get("resolve")
        if decision is not None and decision.outcome == "adjudicate":
            yield record


def adjudicate(
    record: Record,
    reviewer: str,
    value: JsonValue,
    note: str = "",
    questions: Mapping[str, Question] | None = None,
) -> Record:
    """The record with a reviewer's answer as its final decision.

    ``value`` answers the one question still open, or maps question names to answers (a
    reviewer may also overrule a resolved question). It is checked against ``questions``
    (labels, scales) when given, else against the question's kind. The decision names the
    reviewer and keeps what the aggregation had said."""
    decision = record.decisions.get("resolve")
    if decision is None:
        raise DatamillError(f"record {record.id}: not resolved yet; run resolve first")
    if not reviewer.strip():
        raise DatamillError(f"record {record.id}: an adjudication needs the reviewer's name")
    results: dict[str, dict[str, JsonValue]] = decision.details["questions"]  # type: ignore[assignment]
    pending = [n for n, r in results.items() if r["status"] == "adjudicate"]
    if isinstance(value, dict) and value and set(value) <= set(results):
        given = value
    elif len(pending) == 1:
        given = {pending[0]: value}
    else:
        open_ = ", ".join(pending) or "none"
        raise DatamillError(
            f"record {record.id}: name the question(s) answered (open: {open_}), "
            "as a mapping from question to answer"
        )
    lengths = [len(m.content or "") for m in record.messages]
    updated = dict(results)
    for name, answer in given.items():
        spec = (questions or {}).get(name) or Question(name=name, kind=results[name]["kind"])  # type: ignore[arg-type]
        try:
            check(spec, answer, lengths)
        except AnswerError as e:
            raise DatamillError(f"record {record.id}: question '{name}': {e}") from None
        updated[name] = {
            **results[name],
            "value": answer,
            "status": "adjudicated",
            "reviewer": reviewer,
            "aggregated": results[name].get("aggregated", results[name]["value"]),
        }
    still = [n for n, r in updated.items() if r["status"] == "adjudicate"]
    details = {
        **decision.details,
        "questions": updated,
        "note": note,
        "previous": {"by": decision.by, "outcome": decision.outcome, "reason": decision.reason},
    }
    final = Decision(
        outcome="adjudicate" if still else "adjudicated",
        by=f"reviewer:{reviewer}",
        reason=note or f"{reviewer} decided {', '.join(sorted(given))}",
        details=details,  # type: ignore[arg-type]
    )
    return record.with_decision("resolve", final)


@dataclass(frozen=True)
class Verdict:
    reviewer: str
    value: JsonValue
    note: str = ""


def adjudicate_dataset(
    dataset: Dataset, verdicts: Mapping[str, Verdict], version: int | None = None
) -> Version:
    """A new version with reviewers' verdicts (by record id) applied. An id that is not in
    the version, or a bad verdict, is an error and nothing is written."""
    source = dataset.version(version)
    questions = resolved_questions(dataset, source.version)
    left = dict(verdicts)
    params: dict[str, JsonValue] = {"records": sorted(verdicts)}
    with dataset.writer("adjudicate", params, parent=source.version) as w:
        for record in dataset.records(source.version):
            verdict = left.pop(record.id, None)
            if verdict is not None:
                record = adjudicate(
                    record, verdict.reviewer, verdict.value, verdict.note, questions
                )
            w.write(record)
        if left:
            raise DatamillError(f"no record {next(iter(left))} in version {source.version}")
        w.counts["adjudicated"] = len(verdicts)
    assert w.committed is not None
    return w.committed
