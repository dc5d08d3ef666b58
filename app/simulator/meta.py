"""What WhatsApp and Messenger share on the Graph API: token checks and field selection."""

from __future__ import annotations

import time

from app.simulator.accounts import Registry, Token
from app.simulator.errors import (
    expired_token,
    graph_error,
    invalid_token,
    missing_token,
    unknown_object,
)


def authorize(
    registry: Registry,
    value: str | None,
    platform: str | None,
    account_id: str | None = None,
    *,
    method: str = "get",
) -> Token:
    """The token of a Graph call, if it is valid for ``platform`` (and ``account_id``).

    ``platform`` None accepts a token of either Meta platform.

    Raises:
      ApiError: 104 without a token, 190 for an unknown or expired one, and the
        "object does not exist" error (100/33) for an account it does not open.
    """
    if not value:
        raise missing_token()
    token = registry.token(value)
    if token is None or platform not in (None, token.platform):
        raise invalid_token()
    if token.expired(time.time()):
        raise expired_token()
    if account_id is not None and account_id not in token.account_ids:
        raise unknown_object(account_id, method)
    return token


def selected(node: dict, fields: str | None) -> dict:
    """``node`` reduced to the ``fields=a,b`` asked for (Graph always returns ``id``).

    Raises:
      ApiError: a field the node does not have (100, "nonexisting field").
    """
    if not fields:
        return node
    wanted = {name.strip() for name in fields.split(",") if name.strip()}
    unknown = sorted(wanted - node.keys())
    if unknown:
        raise graph_error(400, 100, f"(#100) Tried accessing nonexisting field ({unknown[0]})")
    return {key: value for key, value in node.items() if key in wanted | {"id"}}
