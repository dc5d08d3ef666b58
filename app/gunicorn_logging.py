"""Gunicorn's own lines (errors, the access log) in SNORQ's format, with the request id.

The Procfile's web process names this class (``--logger-class``). The app's lines
go to the root logger, set up here too, since gunicorn leaves it alone.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from app.logs import configure_logging, make_formatter, request_context
from app.web.request_ids import HEADER


class GunicornLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        configure_logging()
        formatter = make_formatter()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time) -> None:
        """The access line, with the id the response carries (the request's own is over)."""
        wanted = HEADER.lower()
        found = next((value for name, value in resp.headers if name.lower() == wanted), None)
        with request_context(found):
            super().access(resp, req, environ, request_time)
