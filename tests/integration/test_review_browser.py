"""The reviewer's adjudication panel in a real browser (Debian's chromium, headless, driven by
Playwright): styled, inert with hostile answers, and an item resolved by keyboard alone,
whose decision comes back naming the reviewer and how it was settled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from annotate_web import live_server
from test_annotate_adjudication import annotated
from test_annotate_browser import log_in

pytestmark = pytest.mark.slow


def style(page: Any, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}"))


def test_a_reviewer_settles_an_open_item_by_keyboard(browser: Any, tmp_path: Path) -> None:
    from datamill.annotate import adjudication, service

    db_url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    database, dataset, _ = annotated(db_url, tmp_path)
    with database.write() as s:
        source = service.get_project(s, "p")
        target = adjudication.ensure_project(s, source)
        adjudication.push_for_review(s, dataset.path, None, target, source)
    open_id = next(r.id for r in dataset.records() if adjudication.waiting(r))

    with live_server(db_url) as url:
        page = browser.new_page()
        assert log_in(page, url, "rita") == 303
        page.goto(f"{url}/projects/p-adjudication")
        panel = page.locator("section.review")
        assert panel.is_visible() and "Adjudicate: pref" in panel.inner_text()
        # review.css is applied: the panel is marked, the open column and consensus stand out
        assert style(page, "section.review", "borderLeftWidth") == "4px"
        assert style(page, "section.review th.open", "backgroundColor") == "rgb(255, 248, 232)"
        assert style(page, "tr.consensus td.who", "color") == "rgb(11, 98, 214)"
        answers = panel.locator("td.open code").all_inner_texts()
        assert any("<script>" in text for text in answers)  # shown as text…
        assert page.evaluate("window.__pwned") is None  # …and never run

        contents = page.locator(".cand .content").all_inner_texts()
        plain = "ab"[next(i for i, t in enumerate(contents) if "Plain candidate 0" in t)]
        keys = page.keyboard
        keys.press(plain)  # the plain candidate is better…
        keys.press("2")  # …clearly
        with page.expect_navigation():
            keys.press("Enter")
        page.wait_for_selector("#done")

        page.goto(f"{url}/projects/p-adjudication/review")  # the reviewers' overview
        assert "rita" in page.locator(".review-item").inner_text()
        assert style(page, ".review-item h2 small", "fontWeight") == "400"
        page.close()

    with database.read() as s:
        version, settled = adjudication.pull_verdicts(s, target, dataset.path)
    database.dispose()
    assert version is not None and settled == 1
    decision = next(r for r in dataset.records(version.version) if r.id == open_id).decisions[
        "resolve"
    ]
    assert (decision.outcome, decision.by) == ("adjudicated", "reviewer:rita")
    assert decision.reason == "adjudicated in p-adjudication"
    pref = decision.details["questions"]["pref"]  # type: ignore[index]
    assert pref["status"] == "adjudicated" and pref["reviewer"] == "rita"  # type: ignore[index]
    assert pref["value"]["chosen"] == 1 and pref["value"]["strength"] == 2  # type: ignore[index]
    assert decision.details["previous"]["outcome"] == "adjudicate"  # type: ignore[index]
