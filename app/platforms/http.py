"""The one HTTP client setup for calls to the platforms, and the reading of their answers.

Network failures become :class:`TemporaryError` with a message that names only
the host (a URL's query can hold a secret). A failure after the request may
have left (no response, connection reset) is marked ``maybe_delivered``, so a
send is never blindly repeated into a duplicate.
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import threading
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from app.config import get_settings
from app.platforms.errors import ErrorCode, TemporaryError

#: Seconds to wait for a connection before giving up on it.
CONNECT_TIMEOUT = 3.05

_local = threading.local()


#: Sent with every request: requests' usual ones (Accept, gzip, keep-alive), naming SNORQ.
HEADERS = {**requests.utils.default_headers(), "User-Agent": "SNORQ/0.1"}


def session() -> requests.Session:
    """This thread's session (connection pooling without sharing across threads)."""
    current = getattr(_local, "session", None)
    if current is None:
        current = _local.session = requests.Session()
        # The environment is read once per host instead (`_environment`).
        current.trust_env = False
    return current


@functools.lru_cache(maxsize=64)
def _environment(scheme: str, netloc: str) -> dict:
    """The proxies and CA bundle the environment sets for calls to one host.

    requests reads them (and ``.netrc``) again on every call, which was a tenth of
    the CPU of a send; the environment does not change while SNORQ runs.
    """
    settings = requests.Session().merge_environment_settings(
        f"{scheme}://{netloc}/", {}, None, None, None
    )
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


def request(
    method: str, url: str, *, headers: dict | None = None, stream: bool = False, **fields
) -> requests.Response:
    """Make one HTTP request with SNORQ's timeouts.

    ``fields`` are what :meth:`requests.PreparedRequest.prepare` takes (``json``,
    ``data``, ``params``, ``files``). The request is prepared on its own, not merged
    with the session's settings: that merge was a seventh of the CPU of a call (60 µs),
    for settings SNORQ never sets and cookies the platforms' APIs do not use. Unlike
    :class:`requests.Request`, it leaves absent fields absent (an empty ``params`` and
    ``data`` cost two slow type checks, 30 µs a call). The session still pools
    connections and follows redirects.

    Raises:
      TemporaryError: the platform could not be reached or did not answer.
    """
    parts = urlsplit(url)
    host = parts.hostname or "the platform"
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method, url=url, headers={**HEADERS, **(headers or {})}, **fields)
    try:
        return session().send(
            prepared,
            stream=stream,
            timeout=(CONNECT_TIMEOUT, get_settings().http_timeout),
            **_environment(parts.scheme, parts.netloc),
        )
    except requests.ConnectTimeout:
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"Could not connect to {host} in time."
        ) from None
    except requests.ConnectionError as error:
        if _never_connected(error):
            raise TemporaryError(
                ErrorCode.PLATFORM_UNAVAILABLE, f"Could not connect to {host}."
            ) from None
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE,
            f"The connection to {host} broke before it answered.",
            maybe_delivered=True,
        ) from None
    except requests.ReadTimeout:
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"{host} did not answer in time.", maybe_delivered=True
        ) from None
    except requests.RequestException as error:
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"Request to {host} failed ({type(error).__name__})."
        ) from None


def _never_connected(error: requests.ConnectionError) -> bool:
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError | ConnectionRefusedError)


def json_object(response: requests.Response) -> dict | None:
    """The answer's JSON object; None when it has none (an HTML error page, say)."""
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


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
