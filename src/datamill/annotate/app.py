"""The annotation web app: ``create_app(db_url)`` wires the database, the JSON API and the pages."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datamill import __version__
from datamill.annotate import db
from datamill.annotate.auth import LoginLimits
from datamill.annotate.deps import LoginRequired
from datamill.annotate.errors import AnnotateError, AnswerError, Conflict, Forbidden, NotFound

HERE = Path(__file__).parent

# No inline script or style anywhere, so the policy can forbid both: a script that slipped into
# a page through model output would still not run.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


MAX_BODY = 64 * 1024 * 1024  # bytes; pushes larger than this go in several requests


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response and refuses bodies declared over MAX_BODY
    (a plain ASGI wrapper: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            too_big = JSONResponse({"detail": f"body over {MAX_BODY} bytes"}, status_code=413)
            await too_big(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SerialWrites:
    """SQLite has one writer at a time. Writers of this process queue on a lock, where a
    waiting thread wakes as soon as the lock is free, instead of in SQLite's busy handler,
    which sleeps up to 100 ms between tries: that sleep was most of the p99 under load."""

    def __init__(self, database: db.Database) -> None:
        self.database = database
        self.lock = threading.Lock()

    def read(self) -> AbstractContextManager[Session]:
        return self.database.read()

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.lock, self.database.write() as session:
            yield session

    def dispose(self) -> None:
        self.database.dispose()


def create_app(
    db_url: str,
    *,
    secure_cookies: bool = False,
    login_limits: LoginLimits | None = None,
    migrate: bool = True,
    threads: int = 8,
) -> FastAPI:
    """The app on ``db_url`` (``sqlite:///path`` or ``postgresql://…``).

    ``secure_cookies`` marks cookies Secure even on plain HTTP (set it behind a TLS proxy);
    over HTTPS they are Secure anyway. ``threads`` bounds the threads that run requests:
    more only contend for the GIL (and SQLite's lock), which lengthens the slowest requests.
    """
    from datamill.annotate import api, api_admin, login, views, views_admin

    # On PostgreSQL, as many pooled connections as request threads, all opened at start: one
    # past the pool's size would be opened for a request and closed after it.
    sqlite = db.normalise_url(db_url).get_backend_name() == "sqlite"
    database = db.connect(db_url, **({} if sqlite else {"pool_size": threads}))
    if migrate:
        db.migrate(database.engine)
    app = FastAPI(
        title="datamill annotate",
        version=__version__,
        description="Expert annotation of LLM data: next item, submit, skip, projects, export.",
        docs_url=None,  # Swagger UI would load scripts from a CDN; the schema is enough
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan(threads, database),
    )
    app.state.db = SerialWrites(database) if database.is_sqlite else database
    app.state.secure_cookies = secure_cookies
    app.state.login_limits = login_limits or LoginLimits()
    app.include_router(login.router)
    app.include_router(api.router)
    app.include_router(api_admin.router)
    app.include_router(views.router)
    app.include_router(views_admin.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)
    _error_pages(app)
    return app


def _lifespan(n: int, database: db.Database):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = n
        await anyio.to_thread.run_sync(database.warm, n)
        # What is loaded by now (modules, models, the app) lives as long as the process:
        # out of the collector's way, a full collection no longer scans those ~180,000
        # objects, which stopped every request for up to 200 ms.
        gc.collect()
        gc.freeze()
        yield

    return lifespan


def _error_pages(app: FastAPI) -> None:
    """Store errors become HTTP answers; pages without a login go to the login page."""
    statuses = {NotFound: 404, Forbidden: 403, Conflict: 409, AnswerError: 422}

    async def store_error(request: Request, exc: Exception) -> Response:
        status = next(code for kind, code in statuses.items() if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(AnnotateError, store_error)
    app.add_exception_handler(LoginRequired, login_required)


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory`` with several workers: the database comes from DATAMILL_DB."""
    return create_app(os.environ["DATAMILL_DB"], migrate=False)
