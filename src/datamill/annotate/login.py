"""Logging in and out: the login page, the token endpoint for the CLI and SDK, logout.

Both ways in share one rate limit (``auth.login_blocked``) and leave a login_attempts row and
an audit row either way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from datamill.annotate import auth
from datamill.annotate.audit import audit
from datamill.annotate.db import Database
from datamill.annotate.deps import DB, PageUser, client_ip
from datamill.annotate.models import User, utc_now
from datamill.annotate.templating import templates

router = APIRouter()


def _login(db: Database, request: Request, username: str, password: str) -> User | None:
    """The user, or None for a wrong password; 429 while this name or address is blocked.

    The password is checked outside the write transaction: argon2 takes tens of milliseconds,
    and SQLite's write lock should not wait for it.
    """
    ip = client_ip(request)
    limits = request.app.state.login_limits
    with db.read() as s:
        blocked = auth.login_blocked(s, username, ip, limits, utc_now())
        user = None if blocked else auth.authenticate(s, username, password)
    with db.write() as s:
        if not blocked:
            auth.record_attempt(s, username, ip, user is not None)
        action = "login.blocked" if blocked else "login" if user else "login.failed"
        audit(s, user.id if user else None, action, f"user:{username[:64]}", ip=ip)
    if blocked:
        raise HTTPException(
            429,
            "too many failed logins; wait a few minutes",
            {"Retry-After": str(limits.window_seconds)},
        )
    return user


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies or request.url.scheme == "https",
        path="/",
    )


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, error: str = "", username: str = "") -> Response:
    token = auth.new_secret()
    page = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "user": None, "error": error, "username": username},
        status_code=401 if error else 200,
    )
    _cookie(page, request, auth.LOGIN_CSRF_COOKIE, token, 3600)
    return page


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    db: DB,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not auth.same(csrf, request.cookies.get(auth.LOGIN_CSRF_COOKIE)):
        raise HTTPException(403, "missing or wrong CSRF token; reload the login page")
    user = _login(db, request, username, password)
    if user is None:
        return login_page(request, error="Wrong user name or password.", username=username)
    with db.write() as s:
        presented = request.cookies.get(auth.SESSION_COOKIE)
        ua = request.headers.get("user-agent")
        secret = auth.start_session(s, user, client_ip(request), ua, presented)
    response = RedirectResponse("/", status_code=303)
    _cookie(response, request, auth.SESSION_COOKIE, secret, auth.SESSION_DAYS * 86400)
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, db: DB, who: PageUser) -> Response:
    with db.write() as s:
        auth.end_session(s, request.cookies.get(auth.SESSION_COOKIE, ""))
        audit(s, who.user.id, "logout", f"user:{who.user.username}", ip=client_ip(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


class TokenRequest(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)
    name: str = Field("api", max_length=100)


class TokenAnswer(BaseModel):
    token: str
    username: str
    role: str


@router.post("/api/auth/token", tags=["auth"])
def create_token(body: TokenRequest, request: Request, db: DB) -> TokenAnswer:
    """Exchange a user name and password for an API token (``Authorization: Bearer …``)."""
    user = _login(db, request, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong user name or password")
    with db.write() as s:
        token = auth.issue_token(s, user, body.name)
        audit(s, user.id, "token.create", f"user:{user.username}", ip=client_ip(request))
    return TokenAnswer(token=token, username=user.username, role=user.role)
