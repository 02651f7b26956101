"""The annotation store on real SQLite and real PostgreSQL: migrations, users and projects,
assignment (overlap, expertise, language, gold, leases, display order), submit and skip,
what each role sees, progress and the audit log."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from annotate_db import KINDS, open_store
from support import require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from sqlalchemy import func, select, text  # noqa: E402

from datamill.annotate import db as dbm  # noqa: E402
from datamill.annotate import service as s  # noqa: E402
from datamill.annotate.errors import AnswerError, Conflict, Forbidden, NotFound  # noqa: E402
from datamill.annotate.models import AuditLog, Item, ItemExpertise, User, utc_now  # noqa: E402

Q = [
    {"name": "pref", "type": "pairwise"},
    {"name": "note", "type": "comment"},
]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with open_store(request.param, tmp_path) as database:
        yield database


def payload(i: int, candidates: int = 2, language: str | None = None) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"question {i}"}],
        "candidates": [{"content": f"answer {i}.{c}"} for c in range(candidates)],
        "language": language,
    }


def add_items(session: Any, project: Any, n: int, **fields: Any) -> list[Item]:
    items = [
        Item(
            project_id=project.id,
            record_id=f"r{i}-{fields.get('is_gold', False)}",
            payload=payload(i),
            **fields,
        )
        for i in range(n)
    ]
    session.add_all(items)
    session.flush()
    return items


def setup(store: Any, users: int = 3, items: int = 4, **project: Any) -> None:
    with store.write() as session:
        p = s.create_project(session, "p", Q, **{"overlap": 2, **project})
        for i in range(users):
            u = s.create_user(session, f"u{i}", "hash", languages=["en"] if i == 0 else [])
            s.add_member(session, p, u)
        add_items(session, p, items)


def lease(store: Any, username: str, now: Any = None, **kw: Any) -> Any:
    with store.write() as session:
        return s.next_item(
            session, s.get_project(session, "p"), s.get_user(session, username), now, **kw
        )


def answer(store: Any, assignment: Any, choice: str = "A", seconds: float = 30, **kw: Any) -> Any:
    with store.write() as session:
        return s.submit(
            session, assignment, {"pref": {"choice": choice}}, s.Timing(seconds=seconds), **kw
        )


def test_migrations_from_empty_and_again(store: Any) -> None:
    assert dbm.current_revision(store.engine) == "0003_items_next_desc"
    assert dbm.migrate(store.engine) == []  # nothing left to apply


@pytest.mark.parametrize("kind", KINDS)
def test_migrate_reports_and_refuses_newer(kind: str, tmp_path: Path) -> None:
    with open_store(kind, tmp_path, migrate=False) as database:
        assert dbm.migrate(database.engine) == [
            "0001_initial",
            "0002_item_overlap",
            "0003_items_next_desc",
        ]
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(dbm.StoreError, match="newer than this datamill"):
            dbm.migrate(database.engine)


@pytest.mark.parametrize("kind", KINDS)
def test_items_of_a_first_schema_store_survive_the_overlap_migration(
    kind: str, tmp_path: Path
) -> None:
    from alembic import command

    with open_store(kind, tmp_path, migrate=False) as database:
        config = dbm._alembic_config(database.engine)
        with database.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001_initial")
        with database.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO projects (name, guidelines, questions, overlap, "
                    "required_expertise, gold_ratio, lease_seconds, created_at) VALUES "
                    "('old', '', '[{\"name\": \"c\", \"type\": \"comment\"}]', 2, '[]', "
                    "0, 60, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO items (project_id, record_id, payload, priority, is_gold, "
                    "n_active, n_submitted, created_at) SELECT id, 'r1', '{\"messages\": []}', "
                    "0, false, 0, 0, CURRENT_TIMESTAMP FROM projects"
                )
            )
        assert dbm.migrate(database.engine) == ["0002_item_overlap", "0003_items_next_desc"]
        with database.read() as session:
            item = session.scalars(select(Item)).one()
            assert (item.record_id, item.overlap) == ("r1", None)


def test_urls() -> None:
    assert dbm.normalise_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert dbm.normalise_url("some/file.sqlite").database == "some/file.sqlite"
    with pytest.raises(dbm.StoreError, match="unsupported"):
        dbm.normalise_url("mysql://u@h/d")


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with open_store("sqlite", tmp_path) as database, database.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30_000


def test_users_projects_and_their_errors(store: Any) -> None:
    with store.write() as session:
        admin = s.create_user(session, "admin", "h", role="admin")
        s.create_user(session, "ann", "h", expertise=["Clinician", "clinician"])
        p = s.create_project(session, "med", Q, required_expertise=["clinician"], actor=admin)
        assert p.questions[0]["allow_tie"] is True  # stored with its defaults filled in
    with store.write() as session:
        ann = s.get_user(session, "ann")
        assert ann.expertise == ["clinician"]
        with pytest.raises(Conflict):
            s.create_user(session, "ann", "h")
        with pytest.raises(Conflict):
            s.create_project(session, "med", Q)
        for bad in ["", "a b", "<script>", "x" * 65]:
            with pytest.raises(s.AnnotateError):
                s.create_user(session, bad, "h")
        with pytest.raises(s.AnnotateError, match="role"):
            s.create_user(session, "root", "h", role="superuser")
        with pytest.raises(s.AnnotateError, match="overlap"):
            s.create_project(session, "p2", Q, overlap=0)
        with pytest.raises(s.AnnotateError, match="gold ratio"):
            s.create_project(session, "p2", Q, gold_ratio=1.5)
        # Annotators see only their projects; an unknown and a forbidden one look the same.
        assert s.projects_for_user(session, ann) == []
        assert [x.name for x in s.projects_for_user(session, s.get_user(session, "admin"))] == [
            "med"
        ]
        with pytest.raises(NotFound, match="no project 'med'"):
            s.get_project(session, "med", ann)


def test_overlap_priority_and_reload(store: Any) -> None:
    setup(store, users=3, items=2)
    with store.write() as session:
        session.execute(
            Item.__table__.update().where(Item.record_id == "r1-False").values(priority=5)
        )
    a0 = lease(store, "u0")
    assert lease(store, "u0").id == a0.id  # a reload gets the same lease
    a1, a2 = lease(store, "u1"), lease(store, "u2")
    assert a0.item_id == a1.item_id != a2.item_id  # priority first, then k = 2 per item
    with store.read() as session:
        top = session.get(Item, a0.item_id)
        assert top.record_id == "r1-False" and top.n_active == 2
    answer(store, a0)
    answer(store, a1)
    answer(store, a2)
    assert lease(store, "u2") is None  # seen its items; the first is full
    b0 = lease(store, "u0")
    assert b0.item_id == a2.item_id
    assert lease(store, "u1") is None  # the second item is full


def test_leases_expire_and_return(store: Any) -> None:
    setup(store, users=3, items=1, overlap=1, lease_seconds=60)
    now = utc_now()
    a0 = lease(store, "u0", now)
    assert lease(store, "u1", now) is None  # k = 1, taken
    later = now + timedelta(seconds=61)
    a1 = lease(store, "u1", later)  # u0 walked away: the item returns to the pool
    assert a1 is not None and a1.item_id == a0.item_id
    with pytest.raises(Conflict, match="went to another annotator"):
        answer(store, a0, now=later)
    answer(store, a1, now=later)
    with pytest.raises(Conflict, match="already submitted"):
        answer(store, a1, now=later)
    with store.read() as session:
        item = session.get(Item, a1.item_id)
        assert (item.n_active, item.n_submitted) == (1, 1)


def test_late_submit_is_kept_when_the_slot_is_free(store: Any) -> None:
    setup(store, users=2, items=1, overlap=1, lease_seconds=60)
    now = utc_now()
    a0 = lease(store, "u0", now)
    later = now + timedelta(seconds=120)
    assert lease(store, "u0", later).id == a0.id  # own expired lease, taken up again
    answer(store, a0, now=later + timedelta(seconds=120))  # past again, swept by no one
    with store.write() as session:
        s.expire_leases(session, s.get_project(session, "p").id, later + timedelta(days=1))
    with store.read() as session:
        assert session.get(Item, a0.item_id).n_active == 1


def test_skip_frees_the_slot(store: Any) -> None:
    setup(store, users=2, items=1, overlap=1)
    a0 = lease(store, "u0")
    with store.write() as session:
        s.skip(session, a0, ip="10.0.0.1")
    assert lease(store, "u0") is None  # not offered again
    assert lease(store, "u1") is not None
    with store.write() as session, pytest.raises(Conflict):
        s.skip(session, a0)


def test_expertise_and_language(store: Any) -> None:
    with store.write() as session:
        p = s.create_project(session, "p", Q, overlap=3)
        doc = s.create_user(session, "doc", "h", expertise=["clinician"], languages=["de"])
        anyone = s.create_user(session, "anyone", "h")
        for u in (doc, anyone):
            s.add_member(session, p, u)
        medical, german, english = add_items(session, p, 3)
        medical.priority, german.language, english.language = 9, "de", "en"
        session.add(ItemExpertise(item_id=medical.id, tag="clinician"))
    got = []
    while (a := lease(store, "doc")) is not None:
        got.append(a.item_id)
        answer(store, a)
    assert got == [medical.id, german.id]  # not the English one
    got = []
    while (a := lease(store, "anyone")) is not None:
        got.append(a.item_id)
        answer(store, a)
    assert got == [german.id, english.id]  # not the one for clinicians


def test_membership_and_project_expertise_are_required(store: Any) -> None:
    with store.write() as session:
        p = s.create_project(session, "p", Q, required_expertise=["attorney"])
        s.create_user(session, "outsider", "h")
        member = s.create_user(session, "member", "h")
        s.add_member(session, p, member)
    with pytest.raises(Forbidden, match="not a member"):
        lease(store, "outsider")
    with pytest.raises(Forbidden, match="attorney"):
        lease(store, "member")
    with store.write() as session:
        s.set_user_active(session, s.get_user(session, "member"), False)
    with pytest.raises(Forbidden, match="inactive"):
        lease(store, "member")


def test_gold_ratio(store: Any) -> None:
    setup(store, users=1, items=60, overlap=1, gold_ratio=0.2)
    with store.write() as session:
        add_items(session, s.get_project(session, "p"), 20, is_gold=True, gold_answers={})
    kinds = []
    for _ in range(50):
        a = lease(store, "u0")
        kinds.append(a.is_gold)
        answer(store, a)
    assert sum(kinds) == 10  # every fifth item
    assert Counter(kinds[i] for i in range(4, 50, 5)) == Counter({True: 10})


def test_display_order_is_random_recorded_and_mapped_back(store: Any) -> None:
    with store.write() as session:
        p = s.create_project(
            session,
            "p",
            [{"name": "rank", "type": "ranking"}, {"name": "pref", "type": "pairwise"}],
        )
        u = s.create_user(session, "u0", "h")
        s.add_member(session, p, u)
        session.add(Item(project_id=p.id, record_id="r", payload=payload(0, candidates=4)))
    a = lease(store, "u0", rng=random.Random(3))
    order = a.display_order
    assert sorted(order) == [0, 1, 2, 3] and order != [0, 1, 2, 3]
    with store.read() as session:
        shown = s.item_for_annotator(session, s.get_assignment(session, a.id, u))
    assert [c["content"] for c in shown["candidates"]] == [f"answer 0.{i}" for i in order]
    with store.write() as session:
        r = s.submit(
            session,
            a,
            {"rank": [3, 2, 1, 0], "pref": {"choice": "B", "strength": 3}},
            s.Timing(seconds=20),
        )
    assert r.answers["rank"] == list(reversed(order))
    assert r.answers["pref"]["chosen"] == order[1]
    assert r.answers["pref"]["rejected"] == order[0]


def test_bad_answers_change_nothing(store: Any) -> None:
    setup(store, users=1, items=1)
    a = lease(store, "u0")
    for bad in [{"pref": {"choice": "Z"}}, {"pref": {"choice": "A"}, "x": 1}, {}, "A"]:
        with pytest.raises(AnswerError), store.write() as session:
            s.submit(session, a, bad, s.Timing(seconds=30))
    answer(store, a)
    with store.read() as session:
        assert session.get(Item, a.item_id).n_submitted == 1


def test_quality_flags(store: Any) -> None:
    with store.write() as session:
        p = s.create_project(session, "p", [{"name": "w", "type": "write"}], overlap=3)
        for name in ("u0", "u1", "u2"):
            s.add_member(session, p, s.create_user(session, name, "h"))
        add_items(session, p, 1)
    essay = "A careful answer. " * 30
    timings = {
        "u0": s.Timing(seconds=120, typing_seconds=110, paste_events=0),
        "u1": s.Timing(seconds=1, typing_seconds=1, paste_events=0),
        "u2": s.Timing(seconds=30, typing_seconds=2, paste_events=1),
    }
    flags = {}
    for name, timing in timings.items():
        a = lease(store, name)
        with store.write() as session:
            flags[name] = s.submit(session, a, {"w": essay}, timing).flags
    assert flags == {"u0": [], "u1": ["too_fast"], "u2": ["pasted"]}
    with store.read() as session:
        p = s.get_project(session, "p")
        assert s.progress(session, p)["flagged"] == 2
        rows = {r["annotator"]: r for r in s.annotator_progress(session, p)}
        assert rows["u2"]["flagged"] == 1 and rows["u0"]["seconds"] == 120


def test_what_each_role_sees(store: Any) -> None:
    with store.write() as session:
        p = s.create_project(session, "p", Q, overlap=2, gold_ratio=0.5)
        ann = [s.create_user(session, f"a{i}", "h") for i in range(2)]
        rev = s.create_user(session, "rev", "h", role="reviewer")
        for u in [*ann, rev]:
            s.add_member(session, p, u)
        [gold] = add_items(session, p, 1, is_gold=True, gold_answers={"pref": {"chosen": 1}})
    a0 = lease(store, "a0")
    answer(store, a0, "A")
    a1 = lease(store, "a1")
    with store.read() as session:
        u0, u1 = s.get_user(session, "a0"), s.get_user(session, "a1")
        seen = s.item_for_annotator(session, s.get_assignment(session, a1.id, u1))
        flat = repr(seen)
        assert "gold" not in flat and "chosen" not in flat and "a0" not in flat
        with pytest.raises(NotFound):
            s.get_assignment(session, a1.id, u0)  # not theirs
        with pytest.raises(NotFound):
            s.item_for_reviewer(session, gold.id, u0)
        full = s.item_for_reviewer(session, gold.id, s.get_user(session, "rev"))
        assert full["gold_answers"] == {"pref": {"chosen": 1}}
        assert [r["annotator"] for r in full["responses"]] == ["a0"]
        assert full["responses"][0]["display_order"] == a0.display_order


def test_every_write_is_audited(store: Any) -> None:
    with store.write() as session:
        admin = s.create_user(session, "admin", "h", role="admin")
        p = s.create_project(session, "p", Q, actor=admin, ip="192.0.2.1")
        u = s.create_user(session, "u0", "h", actor=admin, ip="192.0.2.1")
        s.add_member(session, p, u, actor=admin, ip="192.0.2.1")
        add_items(session, p, 2)
    answer(store, lease(store, "u0"), ip="198.51.100.7")
    second = lease(store, "u0")
    with store.write() as session:
        s.skip(session, second, ip="198.51.100.7")
    with store.read() as session:
        rows = session.execute(
            select(AuditLog.action, User.username, AuditLog.ip)
            .outerjoin(User, User.id == AuditLog.user_id)
            .order_by(AuditLog.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("user.create", None, None),
            ("project.create", "admin", "192.0.2.1"),
            ("user.create", "admin", "192.0.2.1"),
            ("member.add", "admin", "192.0.2.1"),
            ("submit", "u0", "198.51.100.7"),
            ("skip", "u0", "198.51.100.7"),
        ]
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 6
