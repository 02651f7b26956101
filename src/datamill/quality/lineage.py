"""Questions kept in a dataset's lineage: an annotation pull keeps its project's questions
in its version's params, and a resolve keeps the questions it used."""

from __future__ import annotations

from collections.abc import Iterator

from datamill.quality.questions import Question, from_project
from datamill.store import Dataset, Version


def resolved_questions(dataset: Dataset, version: int | None = None) -> dict[str, Question]:
    """The questions the latest resolve in a version's lineage used."""
    for found in lineage(dataset, version):
        if found.stage == "resolve":
            stored = found.params.get("questions") or {}
            return {n: Question.model_validate(q) for n, q in stored.items()}  # type: ignore[union-attr]
    return {}


def project_questions(dataset: Dataset, version: int | None = None) -> dict[str, Question]:
    """The questions of every annotation project pulled into a version's lineage (kept in
    the pull's params); a later pull's question wins over an earlier one of the same name."""
    out: dict[str, Question] = {}
    for found in lineage(dataset, version):
        configs = found.params.get("questions")
        if found.stage == "annotate" and isinstance(configs, list):
            where = f"{dataset.path} version {found.version} params.questions"
            for name, question in from_project(configs, where).items():
                out.setdefault(name, question)
    return out


def lineage(dataset: Dataset, version: int | None) -> Iterator[Version]:
    """A version, its parent, and so on to the root."""
    current: int | None = dataset.version(version).version
    while current is not None:
        found = dataset.version(current)
        yield found
        current = found.parent
