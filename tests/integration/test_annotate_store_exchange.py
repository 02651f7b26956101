"""Push a real dataset version into a project, annotate, pull the answers back as
annotations on the records of a new version; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotate_db import KINDS, open_store
from support import chat, require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from sqlalchemy import func, select  # noqa: E402

from datamill.annotate import service as s  # noqa: E402
from datamill.annotate.models import AuditLog, Item, ItemExpertise  # noqa: E402
from datamill.errors import DatasetError  # noqa: E402
from datamill.records import Candidate  # noqa: E402
from datamill.store import Dataset  # noqa: E402

Q = [
    {"name": "pref", "type": "pairwise"},
    {"name": "fix", "type": "edit"},
]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with open_store(request.param, tmp_path) as database:
        with database.write() as session:
            p = s.create_project(session, "p", Q, overlap=2, language="en")
            for name in ("u0", "u1"):
                s.add_member(session, p, s.create_user(session, name, "h"))
        yield database


def records(n: int, start: int = 0) -> list[Any]:
    out = []
    for i in range(start, start + n):
        r = chat(
            f"Question {i}: <script>alert({i})</script>",
            f"Answer {i}.",
            candidates=[Candidate(content=f"first {i}"), Candidate(content=f"second {i}")],
            metadata={"expertise": ["clinician"]} if i == 0 else {"priority": i},
        )
        out.append(r)
    return out


def dataset(tmp_path: Path, rows: list[Any]) -> Dataset:
    ds = Dataset.create(tmp_path / "ds")
    ds.write(rows, stage="import")
    return ds


def counts(store: Any) -> tuple[int, int, int]:
    with store.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Item)) or 0,
            session.scalar(select(func.count()).select_from(ItemExpertise)) or 0,
            session.scalar(select(func.count()).select_from(AuditLog)) or 0,
        )


def push(store: Any, path: Path, **kw: Any) -> Any:
    with store.write() as session:
        return s.push_dataset(session, path, None, s.get_project(session, "p"), **kw)


def test_push_pull_round_trip(store: Any, tmp_path: Path) -> None:
    rows = records(30)
    ds = dataset(tmp_path, rows)
    gold_id = rows[5].id
    result = push(store, ds.path, gold={gold_id: {"pref": {"chosen": 1, "tie": False}}})
    assert (result.added, result.existing, result.gold) == (30, 0, 1)
    assert push(store, ds.path).added == 0  # idempotent: nothing new the second time
    with store.read() as session:
        first = session.scalar(select(Item).where(Item.record_id == rows[3].id))
        assert first.priority == 3 and first.language == "en" and first.payload["candidates"]
        assert session.scalar(select(func.count()).select_from(ItemExpertise)) == 1

    submitted = 0
    for name in ("u0", "u1"):
        for _ in range(3):
            with store.write() as session:
                a = s.next_item(session, s.get_project(session, "p"), s.get_user(session, name))
                edit = f"Answer {submitted}, improved."
                s.submit(
                    session,
                    a,
                    {"pref": {"choice": "A", "strength": 2}, "fix": edit},
                    s.Timing(seconds=40, typing_seconds=20, paste_events=0),
                )
                submitted += 1

    with store.read() as session:
        out = s.pull_to_dataset(session, s.get_project(session, "p"), ds.path)
    assert (out.records, out.annotations) == (30, 2 * submitted)
    version = ds.version(out.version)
    assert version.stage == "annotate" and version.parent == 1
    assert version.params["project"] == "p"
    assert str(version.params["db"]).split(":")[0] in {"sqlite", "postgresql+psycopg"}
    pulled = {r.id: r for r in ds.records(out.version)}
    annotated = [r for r in pulled.values() if r.annotations]
    assert len(annotated) == out.annotated
    annotation = next(a for r in annotated for a in r.annotations if a.question == "pref")
    order = annotation.metadata["display_order"]
    assert annotation.value["chosen"] == order[0]  # "A" was the candidate shown first
    assert annotation.annotator in {"u0", "u1"} and annotation.project == "p"
    assert annotation.seconds == 40 and annotation.metadata["flags"] == []
    fix = next(a for r in annotated for a in r.annotations if a.question == "fix")
    assert "+Answer" in fix.value["diff"]
    # Every record came through, with its provenance; only annotations were added.
    assert {r.id for r in rows} == set(pulled)
    assert pulled[rows[0].id].provenance == rows[0].provenance

    # Pulling again into the new version adds nothing twice.
    with store.read() as session:
        again = s.pull_to_dataset(session, s.get_project(session, "p"), ds.path)
    assert again.annotations == 0
    assert sum(len(r.annotations) for r in ds.records(again.version)) == 2 * submitted


def test_a_bad_record_leaves_the_store_unchanged(store: Any, tmp_path: Path) -> None:
    rows = records(1200)
    rows[1100] = rows[1100].model_copy(update={"candidates": rows[1100].candidates[:1]})
    ds = dataset(tmp_path, rows)
    before = counts(store)
    with pytest.raises(s.AnnotateError, match=rf"record {rows[1100].id}: .* 2 candidate"):
        push(store, ds.path)  # the first two batches were inserted, then rolled back
    assert counts(store) == before


@pytest.mark.parametrize(
    ("metadata", "error"),
    [({"priority": 2**40}, "metadata.priority"), ({"expertise": "<b>x</b>"}, "metadata.expertise")],
)
def test_hostile_metadata_names_the_record(
    store: Any, tmp_path: Path, metadata: dict[str, Any], error: str
) -> None:
    rows = records(3)
    rows[2] = rows[2].model_copy(update={"metadata": metadata})
    before = counts(store)
    with pytest.raises(s.AnnotateError, match=rf"record {rows[2].id}: {error}"):
        push(store, dataset(tmp_path, rows).path)
    assert counts(store) == before


def test_a_record_without_a_response_to_edit(store: Any, tmp_path: Path) -> None:
    bad = records(1)[0].model_copy(update={"messages": records(1)[0].messages[:1]})
    ds = dataset(tmp_path, [bad])
    with pytest.raises(s.AnnotateError, match="edits the final assistant message"):
        push(store, ds.path)


def test_a_corrupt_shard_leaves_the_store_unchanged(store: Any, tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "ds")
    ds.write(records(5), stage="import")
    ds.write(records(5, start=5), stage="import", extend=True)
    shard = ds.path / ds.version().shards[-1]
    shard.write_bytes(shard.read_bytes()[:100])
    before = counts(store)
    with pytest.raises(DatasetError, match="unreadable"):
        push(store, ds.path)
    assert counts(store) == before


def test_gold_for_an_unknown_record_or_question(store: Any, tmp_path: Path) -> None:
    ds = dataset(tmp_path, records(3))
    before = counts(store)
    with pytest.raises(s.AnnotateError, match="not in the dataset"):
        push(store, ds.path, gold={"nope": {"pref": {"chosen": 0}}})
    with pytest.raises(s.AnnotateError, match="no question 'mood'"):
        push(store, ds.path, gold={"x": {"mood": 1}})
    assert counts(store) == before
    with pytest.raises(DatasetError, match="not a datamill dataset"):
        push(store, tmp_path / "missing")


def test_pull_refuses_a_version_missing_annotated_records(store: Any, tmp_path: Path) -> None:
    rows = records(4)
    ds = dataset(tmp_path, rows)
    push(store, ds.path)
    with store.write() as session:
        p, u = s.get_project(session, "p"), s.get_user(session, "u1")
        a = s.next_item(session, p, u)
        s.submit(session, a, {"pref": {"choice": "tie"}, "fix": "x"}, s.Timing(seconds=9))
        record_id = session.get(Item, a.item_id).record_id
    ds.write([r for r in rows if r.id != record_id], stage="filter")
    with store.read() as session, pytest.raises(DatasetError, match=record_id):
        s.pull_to_dataset(session, s.get_project(session, "p"), ds.path)
    assert [v.stage for v in ds.versions] == ["import", "filter"]  # nothing written


def routed(rows: list[Any]) -> list[Any]:
    """Route decisions as the route stage leaves them: to p with k 1 or 3, elsewhere, none."""
    from datamill.records import Decision

    def decide(outcome: str, project: str, k: int, priority: float, tags: list[str]) -> Any:
        details = {"project": project, "k": k, "priority": priority, "expertise": tags}
        return Decision(outcome=outcome, by="policy:test", details=details)

    plans = [
        decide("human", "p", 1, 2.0, []),
        decide("human", "p", 3, 0.5, ["clinician"]),
        decide("human", "other", 2, 4.0, []),
        decide("accept", "p", 0, 0.0, []),
    ]
    return [r.with_decision("route", plans[i]) for i, r in enumerate(rows[:4])] + rows[4:]


def test_push_takes_only_what_routing_sent_with_its_k_expertise_and_priority(
    store: Any, tmp_path: Path
) -> None:
    rows = routed(records(5, start=1))  # the fifth has no route decision: not pushed
    rows[1] = rows[1].model_copy(update={"metadata": {"expertise": "attorney"}})  # counts too
    ds = dataset(tmp_path, rows)
    result = push(store, ds.path, select=s.routed_to("p"))
    assert (result.added, result.existing) == (2, 0)
    with store.read() as session:
        items = {i.record_id: i for i in session.scalars(select(Item))}
        tags = session.scalars(select(ItemExpertise.tag)).all()
    assert set(items) == {rows[0].id, rows[1].id}
    first, second = items[rows[0].id], items[rows[1].id]
    assert (first.overlap, first.priority) == (1, 2000)  # higher priority: leased first
    assert (second.overlap, second.priority) == (3, 500)
    assert sorted(tags) == ["attorney", "clinician"]
    # k=1 wins over the project's overlap of 2: the second annotator gets nothing of it.
    with store.write() as session:
        doc = s.create_user(session, "doc", "h", expertise=["clinician", "attorney"])
        s.add_member(session, s.get_project(session, "p"), doc)
    leased = {}
    for name in ("u0", "u1", "doc"):
        with store.write() as session:
            a = s.next_item(session, s.get_project(session, "p"), s.get_user(session, name))
            leased[name] = a and session.get_one(Item, a.item_id).record_id
    assert leased == {"u0": rows[0].id, "u1": None, "doc": rows[1].id}
    with store.read() as session:
        assert s.progress(session, s.get_project(session, "p"))["items"] == 2


def test_pull_keeps_the_project_questions_on_the_version(store: Any, tmp_path: Path) -> None:
    ds = dataset(tmp_path, records(2, start=1))
    push(store, ds.path)
    with store.read() as session:
        out = s.pull_to_dataset(session, s.get_project(session, "p"), ds.path)
    assert [q["name"] for q in ds.version(out.version).params["questions"]] == ["pref", "fix"]


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"project": "p", "k": 0, "priority": 1.0}, "route k .0.: 1 to 100"),
        ({"project": "p", "k": "3", "priority": 1.0}, "route k .3.: 1 to 100"),
        ({"project": "p", "k": 1, "priority": "high"}, "route priority .high."),
        ({"project": "p", "k": 1, "priority": 1.0, "expertise": ["<b>x</b>"]}, "expertise"),
    ],
)
def test_a_malformed_route_decision_names_the_record(
    store: Any, tmp_path: Path, details: dict[str, Any], message: str
) -> None:
    from datamill.records import Decision

    bad = records(1, start=1)[0].with_decision(
        "route", Decision(outcome="human", by="x", details=details)
    )
    ds = dataset(tmp_path, [*records(2, start=2), bad])
    before = counts(store)
    with pytest.raises(s.AnnotateError, match=f"record {bad.id}: .*{message}"):
        push(store, ds.path, select=s.routed_to("p"))
    assert counts(store) == before
