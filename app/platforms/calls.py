"""What adapters share when reading a platform's answer: its JSON, Retry-After, no id."""

from __future__ import annotations

import datetime
import email.utils

import requests

from app.platforms.errors import ErrorCode, PlatformError, TemporaryError


def answer_json(response: requests.Response) -> dict:
    """The answer's JSON object, or an empty dict when it has none (an HTML error page)."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def retry_after(response: requests.Response) -> float | None:
    """Seconds the ``Retry-After`` header asks to wait (delta seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.UTC)
    return max(0.0, (at - datetime.datetime.now(datetime.UTC)).total_seconds())


def with_retry_after(error: PlatformError, response: requests.Response) -> PlatformError:
    """``error``, carrying the wait the platform asked for when it is worth retrying."""
    if isinstance(error, TemporaryError) and error.retry_after is None:
        error.retry_after = retry_after(response)
    return error


def unconfirmed(title: str) -> TemporaryError:
    """A 2xx answer that names no message: it may have been sent, so it is not repeated."""
    return TemporaryError(
        ErrorCode.PLATFORM_UNAVAILABLE,
        f"{title} accepted the request but did not say which message it sent.",
        maybe_delivered=True,
    )
