"""Staff credentials: hashed passwords and API tokens (only their digests are stored)."""

from __future__ import annotations

import hashlib
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from app.db import utcnow
from app.models import ApiToken, User

TOKEN_PREFIX = "snorq_"  # noqa: S105 (a prefix, not a secret)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def create_api_token(user: User) -> str:
    """A new API token for ``user``; shown once, never stored in the clear."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.create(user=user, token_hash=_digest(token))
    return token


def user_for_token(token: str) -> User | None:
    """The staff member a bearer token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where(ApiToken.token_hash == _digest(token))
        .first()
    )
    if found is None:
        return None
    ApiToken.update(last_used_at=utcnow()).where(ApiToken.id == found.id).execute()
    return found.user


def _digest(token: str) -> str:
    # A lookup by digest is not a secret comparison: the token carries 256 random
    # bits, so its SHA-256 reveals nothing and needs no salt or slow hash.
    return hashlib.sha256(token.encode()).hexdigest()
