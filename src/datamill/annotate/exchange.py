"""Data in and out of the annotation store: dataset versions to items, responses back to
records as ``Annotation``s.

``push_dataset`` streams a dataset version into a project in batches within the caller's
transaction: a record already in the project is left alone (pushing twice adds nothing),
and a record that cannot be annotated with the project's questions stops the push with its
id, after which the caller's rollback leaves the store as it was. ``select`` picks the
records to push (``routed_to(project)``: what routing sent to humans in that project); a
record routed to the project gets its item's overlap (k), expertise and priority from its
route decision.

``pull_to_dataset`` streams a dataset version and writes a new version (stage
``annotate``) in which every record with submitted responses carries one ``Annotation``
per answered question; the version's params keep the project's questions, so that resolve
knows what kind of answer each annotation is. It writes nothing to the store, so it runs
in a read transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datamill.annotate import questions as q
from datamill.annotate.audit import audit
from datamill.annotate.errors import AnnotateError
from datamill.annotate.models import Assignment, Item, ItemExpertise, Project, Response, User
from datamill.annotate.names import tags
from datamill.annotate.rows import as_annotations, response_row
from datamill.errors import DatasetError
from datamill.records import Record
from datamill.store import Dataset

BATCH = 500
MAX_PRIORITY = 1_000_000
ROUTE_PRIORITY_SCALE = 1000  # route priorities are floats (uncertainty × risk weight)

Select = Callable[[Record], bool]


@dataclass(frozen=True)
class PushResult:
    added: int
    existing: int
    gold: int


@dataclass(frozen=True)
class PullResult:
    version: int
    records: int
    annotated: int  # records given new annotations
    annotations: int


def _payload(record: Record) -> dict[str, Any]:
    return {
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in record.messages],
        "candidates": [
            {"content": c.content, "source": c.source, "model": c.model} for c in record.candidates
        ],
        "task": record.task,
        "domain": record.domain,
        "language": record.language,
        "metadata": record.metadata,
    }


def routed_to(project: str) -> Select:
    """Records that routing sent to humans in ``project``."""

    def select(record: Record) -> bool:
        decision = record.decisions.get("route")
        return (
            decision is not None
            and decision.outcome == "human"
            and decision.details.get("project") == project
        )

    return select


def _tags(record: Record, raw: Any, where: str) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    try:
        return tags("expertise", [str(v) for v in values])
    except AnnotateError as e:
        raise AnnotateError(f"record {record.id}: {where}.{e}") from None


def _plan(record: Record, project: Project, priority: int) -> tuple[int, list[str], int | None]:
    """The item's priority, expertise tags and overlap: from the record's route decision
    when routing sent it to this project, else from its metadata and the defaults; the
    expertise in its metadata counts either way."""
    if routed_to(project.name)(record):
        details = record.decisions["route"].details
        raw, k = details.get("priority", 0), details.get("k")
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise AnnotateError(f"record {record.id}: route priority {str(raw)[:40]!r}")
        prio = round(raw * ROUTE_PRIORITY_SCALE)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
            raise AnnotateError(f"record {record.id}: route k {str(k)[:40]!r}: 1 to 100")
        expertise = _tags(record, details.get("expertise"), "decisions.route.expertise")
        overlap: int | None = k
    else:
        prio = record.metadata.get("priority", priority)  # type: ignore[assignment]
        expertise, overlap = [], None
    expertise = sorted({*expertise, *_tags(record, record.metadata.get("expertise"), "metadata")})
    if isinstance(prio, bool) or not isinstance(prio, int) or abs(prio) > MAX_PRIORITY:
        raise AnnotateError(
            f"record {record.id}: metadata.priority must be an integer within "
            f"±{MAX_PRIORITY}, not {str(prio)[:40]!r}"
        )
    return prio, expertise, overlap


def _check(record: Record, questions: list[q.Question], need: int) -> None:
    if len(record.candidates) < need:
        raise AnnotateError(
            f"record {record.id}: the project's questions need {need} candidate responses, "
            f"it has {len(record.candidates)}"
        )
    edits = [x for x in questions if isinstance(x, q.Edit) and x.candidate is None]
    if edits and record.response is None:
        raise AnnotateError(
            f"record {record.id}: question '{edits[0].name}' edits the final assistant "
            "message, and this record does not end with one"
        )


def _insert(session: Session):  # type: ignore[no-untyped-def]
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def push_dataset(
    session: Session,
    dataset_dir: str | Path,
    version: int | None,
    project: Project,
    gold: Mapping[str, dict[str, Any]] | None = None,
    priority: int = 0,
    actor: User | None = None,
    ip: str | None = None,
    select: Select | None = None,
    extra: Callable[[Record], dict[str, Any]] | None = None,
) -> PushResult:
    """Add the records of a dataset version (the latest if None) to ``project`` as items.

    ``gold`` maps record ids to their gold answers (in stored form: candidate indices of the
    record, not screen positions); those records become gold items. A record's
    ``metadata.priority`` (int) overrides ``priority``; ``metadata.expertise`` (a tag or a
    list) is the expertise an annotator needs for it; a route decision naming this project
    gives both, and the item's overlap (see ``_plan``). Only records ``select`` keeps are
    pushed (all if None); ``extra`` adds fields to an item's payload (what reviewers see).
    """
    dataset = Dataset.open(dataset_dir)
    source = {"dataset": str(dataset_dir), "version": version}
    return push_records(
        session,
        _batches(dataset, version),
        project,
        gold,
        priority,
        actor,
        ip,
        select,
        extra,
        source,
    )


def push_records(
    session: Session,
    batches: Iterable[list[Record]],
    project: Project,
    gold: Mapping[str, dict[str, Any]] | None = None,
    priority: int = 0,
    actor: User | None = None,
    ip: str | None = None,
    select: Select | None = None,
    extra: Callable[[Record], dict[str, Any]] | None = None,
    source: dict[str, Any] | None = None,
) -> PushResult:
    """``push_dataset`` for records in hand (the API's push), in batches of at most BATCH;
    ``source`` says where they came from in the audit row."""
    questions = q.parse_questions(project.questions)
    need = q.needs_candidates(questions)
    names = {x.name for x in questions}
    gold = dict(gold or {})
    for record_id, answers in gold.items():
        unknown = sorted(set(answers) - names)
        if unknown:
            raise AnnotateError(f"gold answers of {record_id}: no question {unknown[0]!r}")
    upsert = _insert(session)
    added = existing = n_gold = 0
    seen_gold: set[str] = set()
    for batch in batches:
        rows, tags_of = [], {}
        for record in batch:
            if select is not None and not select(record):
                continue
            _check(record, questions, need)
            prio, tags_of[record.id], overlap = _plan(record, project, priority)
            is_gold = record.id in gold
            seen_gold.update([record.id] if is_gold else [])
            rows.append(
                {
                    "project_id": project.id,
                    "record_id": record.id,
                    "payload": {**_payload(record), **(extra(record) if extra else {})},
                    "priority": prio,
                    "overlap": overlap,
                    "is_gold": is_gold,
                    "gold_answers": gold.get(record.id),
                    "language": record.language or project.language,
                }
            )
        if not rows:
            continue
        stmt = upsert(Item).on_conflict_do_nothing(index_elements=["project_id", "record_id"])
        new = session.execute(stmt.returning(Item.id, Item.record_id, Item.is_gold), rows).all()
        expertise = [{"item_id": i, "tag": t} for i, rid, _ in new for t in tags_of[rid]]
        if expertise:
            session.execute(insert(ItemExpertise), expertise)
        added += len(new)
        existing += len(rows) - len(new)
        n_gold += sum(1 for *_, g in new if g)
    missing = sorted(set(gold) - seen_gold)
    if missing:
        raise AnnotateError(f"gold answers for records not in the dataset: {missing[0]}")
    details = {**(source or {}), "added": added, "gold": n_gold}
    audit(session, actor.id if actor else None, "push", f"project:{project.name}", details, ip)
    session.flush()
    return PushResult(added=added, existing=existing, gold=n_gold)


def _batches(dataset: Dataset, version: int | None):  # type: ignore[no-untyped-def]
    try:
        yield from dataset.batches(version, batch_size=BATCH)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{dataset.path}: unreadable: {e}") from None


def _responses(
    session: Session, project: Project, record_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The responses to these records, as export rows, by record id."""
    rows = session.execute(
        select(Response, Item.record_id, Item.is_gold, User.username, Assignment.display_order)
        .join(Item, Item.id == Response.item_id)
        .join(User, User.id == Response.user_id)
        .join(Assignment, Assignment.id == Response.assignment_id)
        .where(Item.project_id == project.id, Item.record_id.in_(record_ids))
        .order_by(Response.id)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row.record_id, []).append(response_row(*row))
    return out


def _first_unmatched(session: Session, project: Project, matched: set[str]) -> str | None:
    ids = session.scalars(
        select(Item.record_id).where(Item.project_id == project.id, Item.n_submitted > 0)
    )
    return next((i for i in ids if i not in matched), None)


def pull_to_dataset(
    session: Session, project: Project, dataset_dir: str | Path, version: int | None = None
) -> PullResult:
    """Write a new version of the dataset whose records carry the project's submitted
    responses. Every response must find its record in ``version`` (the latest if None);
    otherwise nothing is written and the error names a missing record."""
    dataset = Dataset.open(dataset_dir)
    parent = dataset.version(version).version
    url = session.get_bind().url.render_as_string(hide_password=True)
    total = session.scalar(
        select(func.count()).select_from(Response).where(Response.project_id == project.id)
    )
    matched_ids: set[str] = set()
    matched = annotated = n_annotations = records = 0
    params = {"project": project.name, "db": url, "questions": project.questions}
    with dataset.writer("annotate", params, parent=parent) as w:
        for batch in _batches(dataset, parent):
            found = _responses(session, project, [r.id for r in batch])
            for record in batch:
                rows = found.get(record.id, [])
                matched += len(rows)
                matched_ids.update([record.id] if rows else [])
                new = as_annotations(project.name, rows, record)
                if new:
                    record = record.model_copy(update={"annotations": [*record.annotations, *new]})
                    annotated += 1
                    n_annotations += len(new)
                w.write(record)
                records += 1
        if matched < (total or 0):
            lost = _first_unmatched(session, project, matched_ids)
            raise DatasetError(
                f"{dataset.path} version {parent}: {total - matched} responses of project "
                f"{project.name!r} are for records not in this version (e.g. {lost}); "
                "nothing written"
            )
    assert w.committed is not None
    return PullResult(w.committed.version, records, annotated, n_annotations)
