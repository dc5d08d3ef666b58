"""Every request has an id: the caller's ``X-Request-Id`` when sane, else a new one.

It is on every line logged while serving the request, on every job the request
queues (``workers/request_ids.py``), and in the response's ``X-Request-Id``, so
a load balancer's, a platform's or a staff member's report leads to the lines.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from app.logs import accept_request_id, request_id

HEADER = "X-Request-Id"


def _begin() -> None:
    g.request_id = accept_request_id(request.headers.get(HEADER))
    g.request_id_token = request_id.set(g.request_id)


def _answer(response: Response) -> Response:
    if "request_id" in g:
        response.headers[HEADER] = g.request_id
    return response


def _end(_exception=None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)


def init_app(app: Flask) -> None:
    # First, so the other hooks' lines carry it too.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_answer)
    app.teardown_request(_end)
