"""The stages where people answer: annotate, resolve, adjudicate.

``annotate`` pushes what routing sent to humans in a project of the annotation store
(creating the project from the stage's parameters if missing), then pauses the run until
every pushed item has its k answers; run again once they have, and it pulls the answers
into a new version. ``adjudicate`` does the same with the records resolve left open,
through the project's adjudication project and its reviewers. Pushing is idempotent, so a
paused stage run again only counts answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, JsonValue

from datamill.pipeline.stages import Params, StepContext, StepOutcome, stage

DB_FILE = "annotate.sqlite"


class StoreParams(Params):
    project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    db: str | None = None  # a database URL or a SQLite file (relative: to OUT); default OUT/


def _open(ctx: StepContext, params: StoreParams) -> Any:
    from datamill.annotate import db

    url = params.db or DB_FILE
    if "://" not in url:
        url = f"sqlite:///{ctx.output(Path(url))}"
    database = db.connect(url)
    db.migrate(database.engine)
    return database


def _where(database: Any) -> str:
    return database.engine.url.render_as_string(hide_password=True)


def _waiting(what: str, progress: dict[str, int], database: Any, project: str, role: str) -> str:
    done, total = progress["complete"], progress["items"] - progress["gold_items"]
    db = _where(database)
    return (
        f"{what}: {done} of {total} items of project {project!r} have all their answers "
        f"({progress['responses']} answers so far). {role.capitalize()}s answer in the app: "
        f"`datamill serve --db {db}` (add one with `datamill annotate user NAME --role {role} "
        f"--project {project} --db {db}`)"
    )


# -- annotate ----------------------------------------------------------------------------


class AnnotateParams(StoreParams):
    questions: list[dict[str, JsonValue]] | None = None  # to create the project if missing
    guidelines: str = ""  # Markdown, or the path of a Markdown file (relative: to the recipe)
    overlap: int = Field(1, ge=1, le=100)  # for records whose route decision gives no k
    expertise: list[str] = Field(default_factory=list)  # the project requires it of everyone
    language: str | None = None


def _project(session: Any, ctx: StepContext, params: AnnotateParams) -> Any:
    from datamill.annotate import service
    from datamill.annotate.errors import NotFound
    from datamill.errors import InputError

    try:
        return service.get_project(session, params.project)
    except NotFound:
        if not params.questions:
            raise InputError(
                "annotate",
                None,
                "questions",
                f"project {params.project!r} does not exist; give its questions to create it",
            ) from None
    guide = params.guidelines
    path = ctx.input(Path(guide)) if guide.endswith(".md") else None
    if path is not None:
        guide = path.read_text(encoding="utf-8")
    return service.create_project(
        session,
        params.project,
        params.questions,  # type: ignore[arg-type]
        guide,
        params.overlap,
        params.expertise,
        params.language,
    )


@stage("annotate", AnnotateParams)
def _annotate(ctx: StepContext, params: AnnotateParams) -> StepOutcome:
    from datamill.annotate import service

    database = _open(ctx, params)
    try:
        with database.write() as s:
            project = _project(s, ctx, params)
            select = service.routed_to(params.project)
            pushed = service.push_dataset(s, ctx.dataset.path, ctx.parent, project, select=select)
        with database.read() as s:
            project = service.get_project(s, params.project)
            progress = service.progress(s, project)
            if progress["complete"] < progress["items"] - progress["gold_items"]:
                why = _waiting("annotate", progress, database, params.project, "annotator")
                return StepOutcome(summary=f"{pushed.added} new items", paused=why)
            done = service.pull_to_dataset(s, project, ctx.dataset.path, ctx.parent)
    finally:
        database.dispose()
    summary = f"{done.annotations} answers on {done.annotated} records from {params.project}"
    return StepOutcome(ctx.dataset.version(done.version), summary=summary)


# -- resolve -----------------------------------------------------------------------------


class ResolveParams(Params):
    method: Literal["auto", "majority", "dawid_skene"] = "auto"
    min_agreement: float = Field(0.5, ge=0, le=1)
    min_annotators: int = Field(1, ge=1)
    robust: Literal["median", "trimmed_mean"] = "median"


@stage("resolve", ResolveParams)
def _resolve(ctx: StepContext, params: ResolveParams) -> StepOutcome:
    from datamill.resolve import Settings, resolve_dataset

    # Questions come from the projects pulled into the lineage (annotate keeps them).
    done = resolve_dataset(ctx.dataset, ctx.parent, None, Settings(**params.model_dump()))
    summary = f"resolved {done.resolved}, to adjudicate {done.adjudicate}"
    return StepOutcome(done.version, summary=summary)


# -- adjudicate --------------------------------------------------------------------------


class AdjudicateParams(StoreParams):
    reviewers: list[str] = Field(default_factory=list)  # default: every reviewer in the store


@stage("adjudicate", AdjudicateParams)
def _adjudicate(ctx: StepContext, params: AdjudicateParams) -> StepOutcome:
    from datamill.annotate import adjudication, service

    if not any(adjudication.waiting(r) for r in ctx.dataset.records(ctx.parent)):
        return StepOutcome(summary="nothing to adjudicate")
    database = _open(ctx, params)
    try:
        with database.write() as s:
            source = service.get_project(s, params.project)
            users = [service.get_user(s, n) for n in params.reviewers] or None
            target = adjudication.ensure_project(s, source, users)
            adjudication.push_for_review(s, ctx.dataset.path, ctx.parent, target, source)
        with database.read() as s:
            target = service.get_project(s, adjudication.project_name(params.project))
            progress = service.progress(s, target)
            if progress["complete"] < progress["items"]:
                why = _waiting("adjudicate", progress, database, target.name, "reviewer")
                return StepOutcome(summary=f"{progress['items']} records to review", paused=why)
            done, n = adjudication.pull_verdicts(s, target, ctx.dataset.path, ctx.parent)
    finally:
        database.dispose()
    after = ctx.parent if done is None else done.version
    left = sum(1 for r in ctx.dataset.records(after) if adjudication.waiting(r))
    note = f"; {left} left open (a reviewer answered none of their open questions)" if left else ""
    return StepOutcome(done, summary=f"{n} records adjudicated by reviewers{note}")
