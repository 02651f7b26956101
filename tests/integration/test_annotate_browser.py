"""The annotation app in a real browser (Debian's chromium, headless, driven by Playwright):
a whole session by keyboard alone, hostile model output kept inert, attacks from other pages."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from annotate_web import PASSWORD, live_server, records, seed

from support import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    db = f"sqlite:///{tmp_path / 'a.sqlite'}"
    tokens = seed(db, overlap=1)
    with live_server(db) as url:
        yield url, tokens, db


def push(url: str, token: str, items: list[Any], **extra: Any) -> None:
    from datamill.annotate.client import Client

    with Client(url, token) as c:
        c.push("p1", items, **extra)


def log_in(page: Any, url: str, username: str, password: str = PASSWORD) -> int:
    """By keyboard (the user name field has the focus); returns the status of the POST."""
    page.goto(f"{url}/login")
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    posted = lambda r: r.url.endswith("/login") and r.request.method == "POST"  # noqa: E731
    with page.expect_response(posted) as answer, page.expect_navigation():
        page.keyboard.press("Enter")
    return int(answer.value.status)


def at_work(browser: Any, app: tuple[str, dict[str, str], str], items: list[Any]) -> Any:
    """A page where Alice annotates ``items``, pushed to project p1, logged in by keyboard."""
    url, tokens, _ = app
    push(url, tokens["root"], items)
    page = browser.new_page()
    log_in(page, url, "alice")
    page.goto(f"{url}/projects/p1")
    return page


def export(url: str, token: str) -> list[dict[str, Any]]:
    from datamill.annotate.client import Client

    with Client(url, token) as c:
        return list(c.responses("p1"))


def test_a_whole_item_by_keyboard_alone(browser, app):
    url, tokens, _ = app
    page = at_work(browser, app, records(2))
    keys = page.keyboard
    for key in ["4", "5"]:  # rubric: accuracy 4, tone 5; then on to the next question
        keys.press(key)
    keys.press("b")  # pairwise: B is better...
    keys.press("2")  # ...clearly
    keys.press("j")
    keys.press("2")  # ranking: the second response first...
    keys.press("1")  # ...then the first; the question is complete, the next one has focus
    keys.press("i")  # rewrite: into the text box, to the end, add a sentence
    keys.press("Control+End")
    keys.type(" Also, check the units.")
    keys.press("Escape")
    keys.press("j")
    keys.press("i")  # write a response
    keys.type("A fresh answer, typed by hand.")
    keys.press("Escape")
    keys.press("j")
    keys.press("i")  # a conversation: a user turn, then "+" adds the assistant's
    keys.type("Hello there")
    keys.press("Escape")
    keys.press("+")
    keys.type("Hi! How can I help?")
    keys.press("Escape")
    keys.press("j")
    keys.press("0")  # single label: the tenth, "other_unsafe"; moves on
    keys.press("1")  # multi-label: sarcasm and humour
    keys.press("2")
    keys.press("j")
    keys.press("i")  # comment
    keys.type("Fine overall.")
    keys.press("Escape")
    keys.press("j")
    keys.press("i")  # spans: select the first six characters of the response, highlight
    keys.press("Control+Home")
    for _ in range(6):
        keys.press("Shift+ArrowRight")
    keys.press("h")
    keys.type("zz")  # the text to highlight in cannot be changed
    assert "zz" not in page.input_value("textarea.source")
    keys.press("Escape")
    keys.press("?")
    assert page.is_visible("#help")
    keys.press("Escape")
    assert not page.is_visible("#help")
    with page.expect_navigation():
        keys.press("Enter")
    with page.expect_navigation():
        keys.press("s")  # skip the second item
    page.wait_for_selector("#done")

    (row,) = export(url, tokens["root"])
    a, order = row["answers"], row["display_order"]
    assert a["quality"] == {"accuracy": 4, "tone": 5}
    assert a["preference"]["chosen"] == order[1] and a["preference"]["strength"] == 2
    assert a["rank"] == [order[1], order[0]]
    assert a["rewrite"]["text"].endswith("Also, check the units.")
    assert "+" in a["rewrite"]["diff"]
    assert a["better"] == "A fresh answer, typed by hand."
    assert a["dialogue"] == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi! How can I help?"},
    ]
    assert a["safety"] == "other_unsafe" and a["nuance"] == ["sarcasm", "humour"]
    assert a["note"] == "Fine overall."
    assert a["claims"] == [{"message": 1, "start": 0, "end": 6, "label": "hallucination"}]
    assert row["typing_seconds"] > 0 and row["paste_events"] == 0
    assert row["seconds"] > 0


def test_pasted_text_is_counted_and_flagged(browser, app):
    url, tokens, _ = app
    push(url, tokens["root"], records(1))
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, url, "alice")
    page.goto(f"{url}/projects/p1")
    page.evaluate(
        "navigator.clipboard.writeText('A long answer that came from elsewhere. ' .repeat(20))"
    )
    keys = page.keyboard
    keys.press("Enter")  # too early: nothing is sent, the first unanswered question is shown
    assert "quality" in page.inner_text("#missing")
    assert page.url.endswith("/projects/p1")
    for key in ["3", "3", "a", "1", "j", "1", "2", "j", "i"]:  # on to the write question
        keys.press(key)
    keys.press("Control+V")  # the write question gets pasted text
    keys.press("Escape")
    for key in ["j", "j", "1"]:  # past the conversation, the safety label
        keys.press(key)
    keys.press("Enter")
    page.wait_for_selector("#done")
    (row,) = export(url, tokens["root"])
    assert row["paste_events"] == 1 and "pasted" in row["flags"]
    context.close()


def test_model_output_cannot_run_script_in_the_page(browser, app):
    page = at_work(browser, app, records(1, hostile=True))
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None
    conversation = page.locator(".conversation")
    assert conversation.locator("img, script").count() == 0  # inert because escaped
    assert "<script>window.__pwned=2</script>" in conversation.inner_text()
    assert conversation.locator("strong").count() >= 1  # while Markdown still renders
    page.locator("details.guidelines summary").click()  # the guidelines carry it too
    assert page.locator(".guidelines img, .guidelines script").count() == 0
    assert page.evaluate("window.__pwned") is None


@contextlib.contextmanager
def attacker_site(html: str) -> Iterator[str]:
    """A page on another origin (another port) that a logged-in annotator visits."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_attacks_from_the_browser_fail(browser, app):
    url = app[0]
    page = at_work(browser, app, records(1))
    assignment = page.get_attribute("#skip", "action")
    # Cross-site request forgery: another site's form posts to the app in Alice's browser.
    forged = f"""<form id=f method=post action="{url}{assignment}"></form>
    <script>document.getElementById('f').submit()</script>"""
    posted = lambda r: r.request.method == "POST" and r.url == f"{url}{assignment}"  # noqa: E731
    with attacker_site(forged) as evil, page.expect_response(posted) as answer:
        page.goto(evil, wait_until="commit")  # the page's script navigates on at once
    # Another port of 127.0.0.1 is the same site, so her cookie went along: the missing CSRF
    # token is what refuses the post. Waiting for its page to load ends that navigation
    # before the next one starts (else the two race, and either may be cut short).
    assert answer.value.status == 403
    page.wait_for_url(f"{url}{assignment}", wait_until="load")
    # Reading what is not hers, from her own logged-in browser.
    for path, status in [
        ("/api/projects/p1/responses", 403),
        ("/api/projects/p2/next", 404),
        ("/api/items/1", 403),
    ]:
        assert page.goto(f"{url}{path}").status == status, path
    page.goto(f"{url}/projects/p1")
    assert page.get_attribute("#skip", "action") == assignment  # the lease was not skipped
    # Session fixation: a session cookie planted before login does not survive it.
    other = browser.new_context()
    other.add_cookies([{"name": "dm_session", "value": "planted", "url": url}])
    victim = other.new_page()
    log_in(victim, url, "bob")
    cookie = next(c for c in other.cookies() if c["name"] == "dm_session")
    assert cookie["value"] != "planted" and cookie["httpOnly"]
    other.close()
    # Login rate limiting, through the login form.
    guesser = browser.new_page()
    statuses = [log_in(guesser, url, "rita", "guess") for _ in range(5)]
    statuses.append(log_in(guesser, url, "rita"))  # the right password, too late
    assert statuses == [401] * 5 + [429]
    assert json.loads(guesser.inner_text("body"))["detail"].startswith("too many")


def test_a_refused_answer_keeps_what_was_typed(browser, app):
    url, tokens, _ = app
    page = at_work(browser, app, records(1))
    keys = page.keyboard
    for key in ["4", "5", "b", "2", "j", "2", "1", "i"]:  # ratings, choices, into the rewrite
        keys.press(key)
    keys.press("Control+End")
    keys.type(" Also, check the units.")
    for key in ["Escape", "j", "i"]:
        keys.press(key)
    keys.type("A fresh answer.")
    for key in ["Escape", "j", "i"]:
        keys.press(key)
    keys.type("Only one turn")  # a conversation needs two: the server refuses this one
    for key in ["Escape", "j", "0", "1", "2", "j", "i"]:  # labels, then the comment
        keys.press(key)
    keys.type("Fine overall.")
    for key in ["Escape", "j", "i", "Control+Home", *["Shift+ArrowRight"] * 6, "h", "Escape"]:
        keys.press(key)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        keys.press("Enter")
    assert answer.value.status == 422
    page.wait_for_load_state("load")
    assert "dialogue" in page.inner_text(".errors")

    def q(name: str) -> str:
        return f'.q[data-name="{name}"]'

    for checked in [
        'input[name="quality:accuracy"][value="4"]',
        'input[name="quality:tone"][value="5"]',
        'input[name="preference:choice"][value="B"]',
        'input[name="preference:strength"][value="2"]',
        'input[name="safety"][value="other_unsafe"]',
        f'{q("nuance")} input[value="sarcasm"]',
        f'{q("nuance")} input[value="humour"]',
    ]:
        assert page.is_checked(checked), checked
    ranked = page.locator(f"{q('rank')} ol.ranked li")
    assert [ranked.nth(i).get_attribute("data-value") for i in range(2)] == ["1", "0"]
    assert page.input_value(f"{q('rewrite')} textarea").endswith(" Also, check the units.")
    assert page.input_value(f"{q('better')} textarea") == "A fresh answer."
    assert page.input_value(f"{q('dialogue')} textarea") == "Only one turn"
    assert page.input_value(f"{q('note')} textarea") == "Fine overall."
    span = page.locator(f"{q('claims')} ol.spans li")
    assert span.count() == 1 and span.get_attribute("data-end") == "6"

    page.focus(q("dialogue"))  # the missing turn, and it goes through
    keys.press("+")
    keys.type("Hello!")
    keys.press("Escape")
    with page.expect_navigation():
        keys.press("Enter")
    page.wait_for_selector("#done")
    (row,) = export(url, tokens["root"])
    a, order = row["answers"], row["display_order"]
    assert a["quality"] == {"accuracy": 4, "tone": 5} and a["rank"] == [order[1], order[0]]
    assert a["dialogue"][0]["content"] == "Only one turn" and len(a["dialogue"]) == 2
    assert a["rewrite"]["text"].endswith(" Also, check the units.")
    assert a["claims"] == [{"message": 1, "start": 0, "end": 6, "label": "hallucination"}]
    assert a["nuance"] == ["sarcasm", "humour"] and row["typing_seconds"] > 0


def test_every_option_past_the_tenth_has_its_keys(browser, app):
    url, tokens, _ = app
    from datamill.annotate.client import Client

    options = [f"o{i:02d}" for i in range(1, 13)]
    with Client(url, tokens["root"]) as root:
        root.create_project(
            "many",
            questions=[
                {"type": "label", "name": "topic", "options": options},
                {"type": "multilabel", "name": "tags", "options": options},
            ],
        )
        root.add_member("many", "alice")
        root.push("many", records(1))
    page = browser.new_page()
    log_in(page, url, "alice")
    page.goto(f"{url}/projects/many")
    shown = page.locator('.q[data-name="topic"] label kbd').all_inner_texts()
    assert shown == [f"{i:02d}" for i in range(1, 13)]  # each on its button
    assert "two (or more) digits" in page.inner_text("#help")
    keys = page.keyboard
    for key in ["1", "2"]:  # the twelfth topic; on to the tags
        keys.press(key)
    for key in ["0", "3", "1", "1", "1", "Backspace", "0", "1"]:  # a half-typed key is dropped
        keys.press(key)
    assert page.is_checked('.q[data-name="topic"] input[value="o12"]')
    with page.expect_navigation():
        keys.press("Enter")
    page.wait_for_selector("#done")
    with Client(url, tokens["root"]) as root:
        (row,) = root.responses("many")
    assert row["answers"] == {"topic": "o12", "tags": ["o01", "o03", "o11"]}
