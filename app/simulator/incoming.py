"""What an incoming API request carries, and the journal entry each one leaves.

Handlers name what a request is about with :func:`mark` (platform, endpoint
kind, account) as soon as they know; every request outside ``/_simulator`` is
journaled when it is answered, with its secrets left out.
"""

from __future__ import annotations

import json
import time

from flask import Flask, Response, g, request

from app.simulator.errors import graph_error

#: Fields that hold credentials; the journal never keeps them.
SECRET_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "fb_exchange_token",
        "input_token",
        "auth_code",
        "secret",
    }
)


def mark(platform: str, endpoint: str, account_id: str | None = None) -> None:
    """Say what the current request is about (for faults, limits and the journal)."""
    g.call = (platform, endpoint, account_id)


def graph_params() -> dict:
    """The request's parameters as Graph reads them: the query, then a form or JSON body.

    Form values holding JSON (``recipient={"id": …}``) are decoded, as Graph does.
    """
    values: dict = dict(request.args.items())
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise graph_error(400, 100, "(#100) The request body could not be parsed as JSON")
        values.update(body)
    else:
        values.update((key, _decoded(value)) for key, value in request.form.items())
    g.params = values
    return values


def json_body() -> dict | None:
    """The request's JSON object (TikTok takes JSON bodies), or None if it has none."""
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        g.params = body
        return body
    return None


def bearer_token(params: dict) -> str | None:
    """A Graph call's token: ``Authorization: Bearer …`` (or ``OAuth …``) or ``access_token``."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return params.get("access_token") or None


def _decoded(value: str):
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _arrived() -> None:
    g.arrived = time.time()


def _record(response: Response) -> Response:
    from app.simulator import current

    if request.path.startswith("/_simulator"):
        return response
    platform, endpoint, account_id = g.get("call", (None, "unknown", None))
    params = _redacted(g.get("params", {}))
    if "code" in params:
        # A request's top-level ``code`` is an OAuth code (in an answer, an error code).
        params["code"] = "…"
    current().journal.record(
        {
            "at": g.arrived,
            "finished_at": time.time(),
            "method": request.method,
            "path": request.path,
            "platform": platform,
            "endpoint": endpoint,
            "account_id": account_id,
            "params": params,
            "files": sorted(request.files),
            "status": response.status_code,
            "response": _redacted(response.get_json(silent=True)) if response.is_json else None,
        }
    )
    return response


def _redacted(value):
    if isinstance(value, dict):
        return {k: "…" if k in SECRET_FIELDS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def init_app(app: Flask) -> None:
    app.before_request(_arrived)
    app.after_request(_record)
