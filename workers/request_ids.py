"""Jobs carry the id of the request that queued them, and log with it.

A job queued while serving a request (a webhook, a staff reply, a job of its
own) gets that request's id in its options; while it runs, every line it logs
carries the id. A job of grouped webhooks carries all their ids, comma-separated
(``app/web/webhooks.py``), and logs each webhook's own while processing it.
"""

from __future__ import annotations

from dramatiq.middleware import Middleware

from app.logs import request_id

OPTION = "request_id"


class RequestIds(Middleware):
    """Stamps queued jobs with the current request id; sets it while a job runs.

    Added first, so every other middleware's lines before and after a job carry it too.
    """

    def before_enqueue(self, broker, message, delay):
        current = request_id.get()
        if current and OPTION not in message.options:
            message.options[OPTION] = current

    def before_process_message(self, broker, message):
        request_id.set(message.options.get(OPTION))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        request_id.set(None)

    after_skip_message = after_process_message
