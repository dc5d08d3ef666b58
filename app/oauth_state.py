"""The OAuth ``state``: who started connecting which platform, signed and short-lived.

A platform sends the state back unchanged with the code, so the callback knows the
organization and staff member the grant is for without trusting anything else in
the request. It is signed with ``SECRET_KEY`` (a tampered state fails), expires
after :data:`MAX_AGE` seconds, and carries a nonce so one state connects once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

#: Seconds between starting to connect and the platform's callback.
MAX_AGE = 600

_SALT = "snorq.oauth-state"


class StateError(Exception):
    """The state is missing, tampered with, expired or for another platform.

    Parameters:
      message: A sentence staff can read, saying what to do next.
    """


@dataclass(frozen=True)
class State:
    organization_id: int
    user_id: int
    platform: str
    nonce: str


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SALT)


def sign(secret_key: str, *, organization_id: int, user_id: int, platform: str) -> str:
    """A new state for one attempt to connect ``platform``."""
    payload = [organization_id, user_id, platform, secrets.token_urlsafe(16)]
    return _serializer(secret_key).dumps(payload)


def verify(secret_key: str, value: str | None, platform: str) -> State:
    """The state a callback for ``platform`` carries.

    Raises:
      StateError: when it is missing, not signed by us, too old, or not for ``platform``.
    """
    if not value:
        raise StateError("The link has no state, so it did not come from SNORQ.")
    try:
        payload = _serializer(secret_key).loads(value, max_age=MAX_AGE)
    except SignatureExpired:
        raise StateError(
            f"This link expired: finish connecting within {MAX_AGE // 60} minutes."
        ) from None
    except BadSignature:
        raise StateError("The link's state is not valid, so it did not come from SNORQ.") from None
    state = State(*payload)
    if state.platform != platform:
        raise StateError("The link's state is for another platform.")
    return state
