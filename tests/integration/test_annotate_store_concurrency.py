"""50 annotators at once, each a thread with its own session, on SQLite and PostgreSQL:
no item ever goes beyond its overlap and no submission is lost."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from annotate_db import KINDS, open_store
from support import require

require("sqlalchemy", "pip install 'datamill[annotate]'")

from sqlalchemy import func, select  # noqa: E402

from datamill.annotate import service as s  # noqa: E402
from datamill.annotate.models import Assignment, Item, Response  # noqa: E402

ANNOTATORS = 50
ITEMS = 120
OVERLAP = 3


def hammer(store: Any, username: str, submitted: list[int], errors: list[BaseException]) -> None:
    try:
        while True:
            with store.write() as session:
                project = s.get_project(session, "p")
                assignment = s.next_item(session, project, s.get_user(session, username))
                if assignment is None:
                    return
            with store.write() as session:
                s.submit(session, assignment, {"pref": {"choice": "A"}}, s.Timing(seconds=30))
            submitted.append(assignment.item_id)
    except BaseException as e:
        errors.append(e)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fifty_annotators(kind: str, tmp_path: Path) -> None:
    with open_store(kind, tmp_path, pool_size=ANNOTATORS, max_overflow=0) as store:
        with store.write() as session:
            p = s.create_project(
                session, "p", [{"name": "pref", "type": "pairwise"}], overlap=OVERLAP
            )
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
                for i in range(ITEMS)
            )
        submitted: list[int] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=hammer, args=(store, f"u{i}", submitted, errors))
            for i in range(ANNOTATORS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors[:3]
        assert not any(t.is_alive() for t in threads)

        per_item = Counter(submitted)
        assert max(per_item.values()) <= OVERLAP
        assert len(submitted) == ITEMS * OVERLAP  # every item got its k answers
        with store.read() as session:
            assert session.scalar(select(func.count()).select_from(Response)) == len(submitted)
            states = Counter(session.scalars(select(Assignment.state)))
            assert states == {"submitted": ITEMS * OVERLAP}
            over = session.scalar(
                select(func.count())
                .select_from(Item)
                .where((Item.n_submitted != OVERLAP) | (Item.n_active != OVERLAP))
            )
            assert over == 0
            pairs = session.execute(
                select(Assignment.item_id, Assignment.user_id, func.count())
                .group_by(Assignment.item_id, Assignment.user_id)
                .having(func.count() > 1)
            ).all()
            assert pairs == []  # nobody got the same item twice
