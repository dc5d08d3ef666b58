"""What WhatsApp and Messenger sends share: the account's ``/messages`` edge on the Graph API.

Replies, read receipts and typing indicators all POST JSON there, with the token in
the ``Authorization`` header (never in the URL: a URL can end up in an error message
or a log). A refusal is Graph's error object; each adapter classifies it by its code
(Messenger by its subcode too), never by its text.
https://developers.facebook.com/docs/graph-api/guides/error-handling
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.platforms import http
from app.platforms.base import Account
from app.platforms.calls import answer_json, unconfirmed, with_retry_after
from app.platforms.errors import PlatformError
from app.platforms.meta import MetaPlatform


@dataclass(frozen=True)
class Refusal:
    """Graph's ``{"error": {...}}`` answer, with the HTTP status it came with."""

    code: int | None
    subcode: int | None
    message: str
    http_status: int


def post_messages(
    platform: MetaPlatform,
    account: Account,
    body: dict,
    classify: Callable[[Refusal], PlatformError],
) -> dict:
    """POST ``body`` to the account's ``/messages`` edge; the answer.

    Raises:
      PlatformError: the refusal as ``classify`` names it, or a network failure.
    """
    url = platform.graph_url(f"{account.account_id}/messages")
    headers = {"Authorization": f"Bearer {account.access_token}"}
    response = http.request("POST", url, json=body, headers=headers)
    answer = answer_json(response)
    if response.ok and "error" not in answer:
        if not answer:
            raise unconfirmed(platform.title)
        return answer
    raise with_retry_after(classify(_refusal(response.status_code, answer)), response)


def _refusal(http_status: int, answer: dict) -> Refusal:
    error = answer.get("error")
    error = error if isinstance(error, dict) else {}
    return Refusal(
        code=_number(error.get("code")),
        subcode=_number(error.get("error_subcode")),
        message=str(error.get("message") or f"HTTP {http_status}"),
        http_status=http_status,
    )


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
