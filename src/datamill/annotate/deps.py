"""Request dependencies: who is asking, with what right, and the CSRF check.

An API call authenticates with ``Authorization: Bearer <token>`` or with the session cookie;
a state-changing call made with the cookie must carry the session's CSRF token in the
``X-CSRF-Token`` header (pages: the ``csrf`` form field). Pages redirect to /login instead of
answering 401.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from datamill.annotate import auth
from datamill.annotate.db import Database

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Principal:
    user: auth.Caller
    session_csrf: str | None  # the session's CSRF token; None when the caller used an API token

    @property
    def csrf(self) -> str:
        return self.session_csrf or ""


class LoginRequired(Exception):
    """Raised by page dependencies; the app answers with a redirect to /login."""


def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def app_database(request: Request) -> Database:
    """``database`` as a dependency: async, since it does no I/O (a plain function would
    cost every request a hop to the thread pool and back)."""
    return database(request)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass(frozen=True)
class Credentials:
    """What a request presents (token, session cookie, CSRF header), read without I/O;
    ``check`` looks them up in the caller's transaction, so that the annotator's calls
    need no transaction of their own to learn who is asking."""

    token: str | None
    secret: str | None
    csrf_sent: str | None
    changes_state: bool
    arrived: float | None = None  # perf_counter() when read, for the slow-request log

    @classmethod
    def of(cls, request: Request) -> Credentials:
        return cls(
            token=auth.bearer(request.headers.get("authorization")),
            secret=request.cookies.get(auth.SESSION_COOKIE),
            csrf_sent=request.headers.get(auth.CSRF_HEADER),
            changes_state=request.method not in SAFE_METHODS,
            arrived=time.perf_counter(),
        )

    def lookup(self, s: Session) -> Principal | None:
        """Who presented these, if anyone; a bad token is 401 at once."""
        if self.token:
            user = auth.token_user(s, self.token)
            if user is None:
                raise HTTPException(401, "invalid or revoked API token")
            return Principal(user, None)
        found = auth.session_user(s, self.secret) if self.secret else None
        return Principal(*found) if found else None

    def check(self, s: Session) -> Principal:
        """The API's caller: 401 without a login, 403 for a cookie without its CSRF token."""
        who = self.lookup(s)
        if who is None:
            raise HTTPException(401, "log in or send an API token", {"WWW-Authenticate": "Bearer"})
        forged = self.changes_state and not auth.same(self.csrf_sent, who.session_csrf)
        if who.session_csrf is not None and forged:
            raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")
        return who


def identify(request: Request) -> Principal | None:
    with database(request).read() as s:
        return Credentials.of(request).lookup(s)


def api_principal(request: Request) -> Principal:
    with database(request).read() as s:
        return Credentials.of(request).check(s)


async def credentials(request: Request) -> Credentials:
    return Credentials.of(request)


async def page_principal(request: Request) -> Principal:
    who = await run_in_threadpool(identify, request)  # database I/O: off the event loop
    if who is None:
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        form = await request.form()
        if not auth.same(str(form.get("csrf") or ""), who.csrf):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
    return who


def admin(who: Annotated[Principal, Depends(api_principal)]) -> Principal:
    if who.user.role != "admin":
        raise HTTPException(403, "admins only")
    return who


def reviewer(who: Annotated[Principal, Depends(api_principal)]) -> Principal:
    if who.user.role not in ("admin", "reviewer"):
        raise HTTPException(403, "reviewers and admins only")
    return who


ApiUser = Annotated[Principal, Depends(api_principal)]
ApiCaller = Annotated[Credentials, Depends(credentials)]  # checked in the call's transaction
ApiAdmin = Annotated[Principal, Depends(admin)]
ApiReviewer = Annotated[Principal, Depends(reviewer)]
PageUser = Annotated[Principal, Depends(page_principal)]
DB = Annotated[Database, Depends(app_database)]
