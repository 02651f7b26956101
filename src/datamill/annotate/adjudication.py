"""Adjudication in the app: records resolve could not settle go to reviewers, and their
answers come back as the records' final decisions.

A source project ``P`` has an adjudication project ``P-adjudication``: the same questions
(none required: a reviewer answers the open ones and may overrule others), overlap 1, and
the reviewers as members. ``push_for_review`` adds the records whose resolve decision is
``adjudicate``; each item's payload carries a ``review`` block — the open questions, why
they are open, the consensus so far and every earlier annotator's answers — which only
reviewers and admins are shown (``service.item_for_annotator``). ``pull_verdicts`` applies
the reviewers' answers with ``resolve.adjudicate_dataset``: the final decision names the
reviewer who gave it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import JsonValue
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, aliased

from datamill.annotate.exchange import PushResult, push_dataset
from datamill.annotate.models import Item, ItemExpertise, Project, Response, User
from datamill.annotate.projects import add_member, create_project
from datamill.records import Record
from datamill.store import Dataset, Version

SUFFIX = "-adjudication"
SNIPPET = 160  # characters of a candidate shown in an earlier answer


def project_name(source: str) -> str:
    return f"{source}{SUFFIX}"


def waiting(record: Record) -> bool:
    """Whether resolve left the record for a reviewer."""
    decision = record.decisions.get("resolve")
    return decision is not None and decision.outcome == "adjudicate"


def ensure_project(
    session: Session, source: Project, reviewers: Iterable[User] | None = None
) -> Project:
    """The adjudication project of ``source``, created if missing; ``reviewers`` (default:
    every active reviewer) are made members."""
    name = project_name(source.name)
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        guidelines = (
            "Annotators disagreed on these items. Their answers are shown above the "
            "questions; answer the open questions (and any you overrule) with the final "
            f"answer.\n\n---\n\n{source.guidelines}"
        )
        project = create_project(
            session,
            name,
            [{**q, "required": False} for q in source.questions],
            guidelines[:200_000],
            overlap=1,
            required_expertise=source.required_expertise,
            language=source.language,
        )
    if reviewers is None:
        reviewers = session.scalars(select(User).where(User.role == "reviewer", User.active))
    for user in reviewers:
        add_member(session, project, user)
    return project


def _shown(record: Record, kind: str, value: JsonValue) -> JsonValue:
    """An answer as a reviewer reads it: candidates by their text, since the letters on the
    reviewer's screen are in an order of their own."""

    def cand(i: object) -> str:
        ok = isinstance(i, int) and 0 <= i < len(record.candidates)
        text = record.candidates[i].content if ok else str(i)  # type: ignore[index]
        return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"

    if kind == "pairwise" and isinstance(value, dict):
        return "tie" if value.get("tie") else f"prefers: {cand(value.get('chosen'))}"
    if kind == "ranking" and isinstance(value, list):
        return [cand(i) for i in value]
    if kind == "text" and isinstance(value, dict) and "text" in value:
        return value["text"]
    return value


def review_block(record: Record) -> dict[str, Any]:
    """What a reviewer is shown besides the item: open questions, reasons, consensus so far,
    and each earlier annotator's latest answers."""
    decision = record.decisions["resolve"]
    results: dict[str, Any] = decision.details.get("questions") or {}  # type: ignore[assignment]
    earlier: dict[str, dict[str, JsonValue]] = {}
    for a in sorted(record.annotations, key=lambda a: a.created_at):
        if a.question in results:
            shown = _shown(record, results[a.question].get("kind", ""), a.value)
            earlier.setdefault(a.annotator, {})[a.question] = shown
    return {
        "open": sorted(n for n, r in results.items() if r.get("status") == "adjudicate"),
        "reason": decision.reason,
        "consensus": {
            n: _shown(record, r.get("kind", ""), r.get("value")) for n, r in results.items()
        },
        "earlier": [{"annotator": who, "answers": answers} for who, answers in earlier.items()],
    }


def push_for_review(
    session: Session,
    dataset_dir: str | Path,
    version: int | None,
    project: Project,
    source: Project | None = None,
) -> PushResult:
    """Add the version's records waiting for adjudication to ``project`` (pushing twice
    adds nothing). With ``source``, each item needs the expertise its record's item needed
    there: a clinicians' dispute goes to a clinician reviewer."""
    result = push_dataset(
        session,
        dataset_dir,
        version,
        project,
        select=waiting,
        extra=lambda r: {"review": review_block(r)},
    )
    if source is not None:
        _copy_expertise(session, source, project)
    return result


def _copy_expertise(session: Session, source: Project, target: Project) -> None:
    new, old = aliased(Item), aliased(Item)
    needed = (
        select(new.id, ItemExpertise.tag)
        .join(old, (old.record_id == new.record_id) & (old.project_id == source.id))
        .join(ItemExpertise, ItemExpertise.item_id == old.id)
        .where(new.project_id == target.id)
        .except_(select(ItemExpertise.item_id, ItemExpertise.tag))
    )
    session.execute(insert(ItemExpertise).from_select(["item_id", "tag"], needed))


def reviewer_answers(session: Session, project: Project) -> dict[str, tuple[str, dict[str, Any]]]:
    """record id -> (reviewer, answers) of the latest submitted answer per item."""
    rows = session.execute(
        select(Item.record_id, User.username, Response.answers)
        .join(Item, Item.id == Response.item_id)
        .join(User, User.id == Response.user_id)
        .where(Response.project_id == project.id)
        .order_by(Response.id)
    )
    return {record_id: (username, answers) for record_id, username, answers in rows}


def pull_verdicts(
    session: Session, project: Project, dataset_dir: str | Path, version: int | None = None
) -> tuple[Version | None, int]:
    """A new version (stage ``adjudicate``) with the reviewers' answers applied to the
    records still waiting; (None, 0) when no reviewer has answered one of them yet.
    Answers to questions the record never had are left out; an answer that leaves every
    open question of its record unanswered settles nothing."""
    from datamill.resolve import Verdict, adjudicate_dataset

    dataset = Dataset.open(dataset_dir)
    parent = dataset.version(version).version
    given = reviewer_answers(session, project)
    verdicts: dict[str, Verdict] = {}
    for record in dataset.records(parent):
        if record.id not in given or not waiting(record):
            continue
        reviewer, answers = given[record.id]
        results: dict[str, Any] = record.decisions["resolve"].details.get("questions") or {}  # type: ignore[assignment]
        value = {k: v for k, v in answers.items() if k in results}
        if any(results[k].get("status") == "adjudicate" for k in value):
            verdicts[record.id] = Verdict(reviewer, value, f"adjudicated in {project.name}")
    if not verdicts:
        return None, 0
    return adjudicate_dataset(dataset, verdicts, parent), len(verdicts)
