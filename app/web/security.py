"""Headers every response carries: only SNORQ's own scripts run, nothing is framed or sniffed.

A response that sets one of these itself (a customer's attachment, served with a
stricter policy) keeps its own.
"""

from __future__ import annotations

from flask import Flask, Response, request


def _security_headers(response: Response) -> Response:
    host = request.host
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"media-src 'self'; connect-src 'self' ws://{host} wss://{host}; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_security_headers)
