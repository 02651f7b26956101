"""50 annotators at once, each a thread with its own session, on SQLite and PostgreSQL:
no item ever goes beyond its overlap and no submission is lost."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from annotate_db import KINDS, open_store
from support import require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from sqlalchemy import func, select  # noqa: E402

from datamill.annotate import service as s  # noqa: E402
from datamill.annotate.models import Assignment, Item, Response, utc_now  # noqa: E402

ANNOTATORS = 50
ITEMS = 120
OVERLAP = 3


def setup(store: Any, items: int, lease_seconds: int = 1800) -> None:
    with store.write() as session:
        questions = [{"name": "pref", "type": "pairwise"}]
        p = s.create_project(session, "p", questions, overlap=OVERLAP, lease_seconds=lease_seconds)
        for i in range(ANNOTATORS):
            s.add_member(session, p, s.create_user(session, f"u{i}", "h"))
        session.add_all(
            Item(
                project_id=p.id,
                record_id=f"r{i}",
                payload={
                    "messages": [{"role": "user", "content": "q"}],
                    "candidates": [{"content": "a"}, {"content": "b"}],
                },
                priority=i % 7,
            )
            for i in range(items)
        )


def hammer(
    store: Any,
    username: str,
    submitted: list[int],
    errors: list[BaseException],
    later: timedelta = timedelta(0),
    abandon: bool = False,
) -> None:
    """Lease and submit until nothing is left; ``abandon``: lease one item and walk away;
    ``later`` shifts this annotator's clock, so that others' leases look expired."""
    try:
        while True:
            now = utc_now() + later
            with store.write() as session:
                project = s.get_project(session, "p")
                assignment = s.next_item(session, project, s.get_user(session, username), now)
                if assignment is None or abandon:
                    return
            with store.write() as session:
                answers = {"pref": {"choice": "A"}}
                s.submit(session, assignment, answers, s.Timing(seconds=30), now)
            submitted.append(assignment.item_id)
    except BaseException as e:
        errors.append(e)


def run(errors: list[BaseException], *threads: threading.Thread) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fifty_annotators(kind: str, tmp_path: Path) -> None:
    with open_store(kind, tmp_path, pool_size=ANNOTATORS, max_overflow=0) as store:
        setup(store, ITEMS)
        submitted: list[int] = []
        errors: list[BaseException] = []
        run(
            errors,
            *(
                threading.Thread(target=hammer, args=(store, f"u{i}", submitted, errors))
                for i in range(ANNOTATORS)
            ),
        )
        assert max(Counter(submitted).values()) <= OVERLAP
        assert len(submitted) == ITEMS * OVERLAP  # every item got its k answers
        with store.read() as session:
            assert session.scalar(select(func.count()).select_from(Response)) == len(submitted)
            states = Counter(session.scalars(select(Assignment.state)))
            assert states == {"submitted": ITEMS * OVERLAP}
            off = session.scalar(
                select(func.count())
                .select_from(Item)
                .where((Item.n_submitted != OVERLAP) | (Item.n_active != OVERLAP))
            )
            assert off == 0
            twice = session.execute(
                select(Assignment.item_id, Assignment.user_id, func.count())
                .group_by(Assignment.item_id, Assignment.user_id)
                .having(func.count() > 1)
            ).all()
            assert twice == []  # nobody got the same item twice


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_abandoned_leases_return_under_load(kind: str, tmp_path: Path) -> None:
    """Ten annotators lease and walk away; forty others, whose clocks are past those
    leases, sweep them concurrently and bring every item to exactly k."""
    items, quitters = 30, 10
    with open_store(kind, tmp_path, pool_size=ANNOTATORS, max_overflow=0) as store:
        setup(store, items, lease_seconds=10)
        submitted: list[int] = []
        errors: list[BaseException] = []
        run(
            errors,
            *(
                threading.Thread(
                    target=hammer, args=(store, f"u{i}", submitted, errors, timedelta(0), True)
                )
                for i in range(quitters)
            ),
        )
        later = timedelta(seconds=20)
        run(
            errors,
            *(
                threading.Thread(target=hammer, args=(store, f"u{i}", submitted, errors, later))
                for i in range(quitters, ANNOTATORS)
            ),
        )
        assert max(Counter(submitted).values()) <= OVERLAP
        assert len(submitted) == items * OVERLAP
        with store.read() as session:
            states = Counter(session.scalars(select(Assignment.state)))
            assert states == {"submitted": items * OVERLAP, "expired": quitters}
            assert session.scalar(select(func.count()).select_from(Response)) == len(submitted)
