"""Who is asking: passwords, server-side sessions, CSRF, login rate limits, API tokens.

- Passwords are hashed with argon2id (argon2-cffi's RFC 9106 defaults).
- A browser session is a random 256-bit secret in an HttpOnly, SameSite=Strict cookie (Secure
  over HTTPS); the database keeps only its SHA-256, so a leaked table opens no session. A new
  secret is issued at every login and whatever session the browser presented is revoked,
  which defeats session fixation.
- Each session has its own random CSRF token, put in every form and in a ``<meta>`` tag for
  scripts. It must come back in a form field ``csrf`` or an ``X-CSRF-Token`` header on every
  state change made with a cookie. Before login, the login form uses a double-submit cookie.
- API tokens (CLI, SDK) are ``Authorization: Bearer dm_…`` and need no CSRF token: a browser
  never attaches them by itself. They are stored as SHA-256 too.
- Login attempts are counted per user name and per client address over a window; past the
  limit the answer is 429 with Retry-After, even for the right password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from datamill.annotate.models import ApiToken, LoginAttempt, User, WebSession, utc_now

SESSION_COOKIE = "dm_session"
LOGIN_CSRF_COOKIE = "dm_login_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_PREFIX = "dm_"
SESSION_DAYS = 7


@dataclass(frozen=True)
class LoginLimits:
    """At most ``per_user`` failed logins per user name and ``per_ip`` per address."""

    per_user: int = 5
    per_ip: int = 20
    window_seconds: int = 900


_hasher = PasswordHasher()
# Verified against when the user does not exist, so that a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a session secret or API token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if that is what it is."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# --- users, sessions and tokens in the database ------------------------------------------------


def authenticate(s: Session, username: str, password: str) -> User | None:
    user = s.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok and user is not None and user.active else None


def start_session(
    s: Session, user: User, ip: str | None, user_agent: str | None, presented: str | None
) -> str:
    """A new session for ``user``; the session the browser presented, if any, is revoked."""
    if presented:
        s.execute(delete(WebSession).where(WebSession.id == digest(presented)))
    secret = new_secret()
    now = utc_now()
    s.add(
        WebSession(
            id=digest(secret),
            user_id=user.id,
            csrf_token=new_secret(),
            created_at=now,
            expires_at=now + timedelta(days=SESSION_DAYS),
            ip=ip,
            user_agent=(user_agent or "")[:512],
        )
    )
    return secret


@dataclass(frozen=True)
class Caller:
    """The user behind a request, as ``models.User`` has them, read with one statement on
    every request and never cached: deactivating a user stops their tokens and sessions at
    once, in every server process."""

    id: int
    username: str
    role: str
    expertise: list[str]
    languages: list[str]
    active: bool


_CALLER = [User.id, User.username, User.role, User.expertise, User.languages, User.active]
_BY_SESSION = (
    select(*_CALLER, WebSession.csrf_token)
    .join(WebSession, WebSession.user_id == User.id)
    .where(
        WebSession.id == bindparam("digest"),
        WebSession.expires_at > bindparam("now"),
        User.active.is_(True),
    )
)
_BY_TOKEN = (
    select(*_CALLER)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("digest"),
        ApiToken.revoked.is_(False),
        User.active.is_(True),
    )
)


def session_user(s: Session, secret: str) -> tuple[Caller, str] | None:
    """The user of a live session and the session's CSRF token."""
    row = s.execute(_BY_SESSION, {"digest": digest(secret), "now": utc_now()}).first()
    return (Caller(*row[:-1]), row[-1]) if row is not None else None


def end_session(s: Session, secret: str) -> None:
    s.execute(delete(WebSession).where(WebSession.id == digest(secret)))


def issue_token(s: Session, user: User, name: str) -> str:
    token = new_api_token()
    s.add(ApiToken(user_id=user.id, token_hash=digest(token), name=name[:100]))
    return token


def token_user(s: Session, token: str) -> Caller | None:
    row = s.execute(_BY_TOKEN, {"digest": digest(token)}).first()
    return Caller(*row) if row is not None else None


def login_blocked(
    s: Session, username: str, ip: str | None, limits: LoginLimits, now: datetime
) -> bool:
    """Whether too many logins failed lately for this user name or from this address."""
    since = now - timedelta(seconds=limits.window_seconds)
    failed = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.ok.is_(False), LoginAttempt.at > since)
    )
    by_user = s.scalar(failed.where(LoginAttempt.username == username[:64])) or 0
    by_ip = (s.scalar(failed.where(LoginAttempt.ip == ip)) or 0) if ip else 0
    return by_user >= limits.per_user or by_ip >= limits.per_ip


def record_attempt(s: Session, username: str, ip: str | None, ok: bool) -> None:
    s.add(LoginAttempt(username=username[:64], ip=ip, ok=ok))
