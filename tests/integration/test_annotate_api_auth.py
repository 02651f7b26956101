"""Logging in to the annotation app: sessions, CSRF, session fixation, rate limits, headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from annotate_web import PASSWORD, db_url, records, seed  # noqa: F401

from support import require

JAR_DOMAIN = "testserver.local"  # where the test client's cookie jar files testserver's cookies


@pytest.fixture
def app(db_url: str) -> Iterator[tuple[Any, dict[str, str]]]:  # noqa: F811
    require("fastapi", "pip install 'datamill[annotate]'")
    from datamill.annotate.app import create_app
    from datamill.annotate.auth import LoginLimits

    tokens = seed(db_url)
    app = create_app(db_url, migrate=False, login_limits=LoginLimits(per_user=3, per_ip=6))
    yield app, tokens
    app.state.db.dispose()


def browser(app: Any) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(app, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def log_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    form = {"username": username, "password": password, "csrf": token}
    return client.post("/login", data=form)


def test_login_sets_a_new_httponly_session_and_forms_need_its_csrf_token(app):
    app, _ = app
    with browser(app) as c:
        assert c.get("/").headers["location"] == "/login"  # pages ask for a login
        # The login form itself is protected: no token, no login.
        c.get("/login")
        no_csrf = c.post("/login", data={"username": "alice", "password": PASSWORD})
        assert no_csrf.status_code == 403
        r = log_in(c, "alice")
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        page = c.get("/")
        # Links, not bare names: the page's random CSRF token may contain "p2".
        links = 'href="/projects/p1"' in page.text and 'href="/projects/p2"' not in page.text
        assert page.status_code == 200 and links
        token = csrf_of(page.text)
        # A state change with the cookie but without the token is refused, on forms and API.
        assert c.post("/logout").status_code == 403
        assert c.post("/assignments/1/skip", data={"csrf": "forged"}).status_code == 403
        assert c.post("/api/assignments/1/skip").status_code == 403
        headers = {"X-CSRF-Token": token}
        assert c.post("/api/assignments/1/skip", headers=headers).status_code == 404
        assert c.post("/logout", data={"csrf": token}).status_code == 303
        assert c.get("/api/me").status_code == 401


def test_a_session_planted_before_login_is_not_the_victims(app):
    app, _ = app
    from datamill.annotate.auth import SESSION_COOKIE

    with browser(app) as attacker, browser(app) as victim:
        log_in(attacker, "eve")
        planted = attacker.cookies[SESSION_COOKIE]
        victim.cookies.set(SESSION_COOKIE, planted, domain=JAR_DOMAIN, path="/")
        log_in(victim, "alice")
        fresh = victim.cookies[SESSION_COOKIE]
        assert fresh != planted
        assert victim.get("/api/me").json()["username"] == "alice"
        # The planted session was revoked at login; it never becomes Alice's.
        assert attacker.get("/api/me").status_code == 401
        fixed = browser(app)
        fixed.cookies.set(SESSION_COOKIE, "chosen-by-attacker", domain=JAR_DOMAIN, path="/")
        log_in(fixed, "bob")
        assert fixed.cookies[SESSION_COOKIE] != "chosen-by-attacker"


def test_failed_logins_are_limited_per_user_even_with_the_right_password(app):
    app, _ = app
    with browser(app) as c:
        for _ in range(3):
            assert log_in(c, "alice", "wrong password").status_code == 401
        assert log_in(c, "alice").status_code == 429
        token = c.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
        assert token.status_code == 429 and int(token.headers["retry-after"]) > 0
        # Another user is not locked out by Alice's attacker (up to the per-address limit).
        got = c.post("/api/auth/token", json={"username": "bob", "password": PASSWORD})
        assert got.status_code == 200 and got.json()["token"].startswith("dm_")


def test_pages_escape_model_text_and_carry_security_headers(app):
    app, tokens = app
    body = {"records": [r.model_dump(mode="json") for r in records(1, hostile=True)]}
    with browser(app) as c:
        pushed = c.post(
            "/api/projects/p1/items",
            json=body,
            headers={"Authorization": f"Bearer {tokens['root']}"},
        )
        assert pushed.status_code == 200, pushed.text
        log_in(c, "alice")
        page = c.get("/projects/p1")
        assert page.status_code == 200
        html = page.text
        assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in html
        assert "<script>window" not in html and "<img src=x" not in html
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script at all


def test_dashboard_and_review_pages_are_for_their_roles(app):
    app, tokens = app
    root = {"Authorization": f"Bearer {tokens['root']}"}
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    body = {"records": [r.model_dump(mode="json") for r in records(1, hostile=True)]}
    with browser(app) as c:
        assert c.post("/api/projects/p1/items", json=body, headers=root).status_code == 200
        job = c.get("/api/projects/p1/next", headers=alice).json()
        answers = {"quality": {"accuracy": 1, "tone": 1}, "preference": {"choice": "tie"}}
        answers |= {"rank": [0, 1], "rewrite": "<b>mine</b>", "safety": "hate"}
        url = f"/api/assignments/{job['assignment_id']}/submit"
        assert c.post(url, json={"answers": answers}, headers=alice).status_code == 200
        log_in(c, "alice")
        assert c.get("/admin").status_code == 403
        assert c.get("/projects/p1/review").status_code == 403
    with browser(app) as c:
        log_in(c, "rita")
        review = c.get("/projects/p1/review")
        assert review.status_code == 200 and "alice" in review.text
        assert "<b>mine</b>" not in review.text and "<script>window" not in review.text
        assert "<ins>&lt;b&gt;mine&lt;/b&gt;</ins>" in review.text  # the rewrite, as a diff
        assert c.get("/admin").status_code == 403
    with browser(app) as c:
        log_in(c, "root")
        board = c.get("/admin")
        assert board.status_code == 200 and "too_fast" in board.text  # answered in no time
