"""Logging for every SNORQ process: one format, a request id on every line, nothing secret.

``LOG_FORMAT=json`` writes one JSON object per line; otherwise lines are plain
text. Every record carries the id of the request it serves (``request_id``): the
web process takes it from the request, and the worker from the job, which the
request stamped (``workers/request_ids.py``), so one grep follows a webhook from
the web process into its worker jobs.

Nothing secret reaches a handler, whichever logged it and however: a record
factory, installed once per process, scrubs each record as it is made —

- a queued message in the arguments shows as its actor and id (Dramatiq logs
  ``actor(arg, …)``, and for SNORQ those arguments are webhook bodies);
- the secrets in the settings (app secrets, verify tokens, keys), bearer and
  basic credentials, ``access_token=``-style values and SNORQ API tokens become
  ``[redacted]``, in the message and in a traceback;
- texts a job declared customer-written (:func:`concealing`) become ``[text]``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import re
import uuid
from collections.abc import Iterator

from dramatiq.broker import MessageProxy
from dramatiq.message import Message

from app.config import get_settings, log_format

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
REDACTED = "[redacted]"
CONCEALED = "[text]"

#: The request a line is logged for (a web request, or the webhook or request a job serves).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_concealed: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "concealed", default=()
)

#: What an incoming ``X-Request-Id`` may be to be kept (no commas: a job lists several).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,128}")

_CREDENTIALS = (
    # Authorization: Bearer …, Basic …
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    # access_token=…, "refresh_token": "…", client_secret=…, Access-Token: …, ?code=…
    (
        re.compile(
            r"""((?:access|refresh)[_-]token|client[_-]secret|app[_-]?secret|appsecret_proof"""
            r"""|verify[_-]token|password|authorization|(?<=[?&])code)"""
            r"""(["']?\s*[:=]\s*["']?)(?!\[redacted\])[^"'&\s,;}]+""",
            re.IGNORECASE,
        ),
        rf"\1\2{REDACTED}",
    ),
    # SNORQ API tokens (app/auth.py)
    (re.compile(r"snorq_[A-Za-z0-9_-]{40,}"), REDACTED),
)


def accept_request_id(value: str | None) -> str:
    """``value`` when it is a sane request id (bounded, safe characters), else a new one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


@contextlib.contextmanager
def request_context(value: str | None) -> Iterator[None]:
    """Log everything inside with ``value`` as the request id."""
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


@contextlib.contextmanager
def concealing(texts) -> Iterator[None]:
    """Keep these customer-written texts out of every line logged inside."""
    kept = tuple(text for text in texts if isinstance(text, str) and len(text) >= 4)
    token = _concealed.set(_concealed.get() + kept)
    try:
        yield
    finally:
        _concealed.reset(token)


def scrub(text: str) -> str:
    """``text`` without secrets, credentials, or the texts being concealed."""
    for secret in _known_secrets():
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    for concealed in _concealed.get():
        text = text.replace(concealed, CONCEALED)
    return text


_secrets_of: tuple[object, tuple[str, ...]] = (None, ())


def _known_secrets() -> tuple[str, ...]:
    """The secret values in the settings, once the process has read them.

    Logging never reads the settings itself: in the embedded mode that would make
    the development secrets, and a command that needs none may log anywhere.
    """
    global _secrets_of
    if not get_settings.cache_info().currsize:
        return ()
    settings = get_settings()
    if _secrets_of[0] is not settings:
        values = {settings.secret_key, *settings.encryption_keys}
        for platform in settings.platforms.values():
            values |= {platform.app_secret, platform.verify_token, platform.webhook_secret}
        # Longest first, so a secret containing another is replaced whole.
        _secrets_of = (settings, tuple(sorted((v for v in values if len(v) >= 6), key=len)[::-1]))
    return _secrets_of[1]


class _QueuedMessageRef:
    """What a log line shows of a queued message: its actor and id, no arguments."""

    def __init__(self, message: Message | MessageProxy) -> None:
        self.text = f"{message.actor_name}#{message.message_id}"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _redact(value):
    if isinstance(value, (Message, MessageProxy)):
        return _QueuedMessageRef(value)
    return value


#: Dramatiq's actor logs each call's arguments at DEBUG (``Actor.__call__``).
_ACTOR_CALL = "Received args=%r kwargs=%r."


def _scrub_record(record: logging.LogRecord) -> None:
    if record.msg == _ACTOR_CALL:
        record.msg, record.args = "Received its arguments (not logged).", None
    if isinstance(record.args, tuple) and record.args:
        record.args = tuple(_redact(arg) for arg in record.args)
    try:
        message = record.getMessage()
    except Exception:  # noqa: S110  (a bad format string is logging's to report, at emit)
        pass
    else:
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))


def _redacting_factory(make_record):
    def factory(*args, **kwargs):
        record = make_record(*args, **kwargs)
        record.request_id = request_id.get()
        _scrub_record(record)
        return record

    factory.snorq_redacting = True
    return factory


def install_redaction() -> None:
    """Make every log record scrubbed and tagged with its request id (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "snorq_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id]: message``, the request id only when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        value = getattr(record, "request_id", None)
        record.request_tag = f" [{value}]" if value else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        value = getattr(record, "request_id", None)
        if value:
            line["request_id"] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def make_formatter(name: str | None = None) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for (``name`` overrides it)."""
    return JsonFormatter() if (name or log_format()) == "json" else TextFormatter()


def configure_logging(level: int = logging.INFO, *, replace: bool = False) -> None:
    """Log to stderr in ``LOG_FORMAT``, for a process that owns its logging.

    Parameters:
      level: The root logger's level.
      replace: Remove the handlers someone set up before (the ``dramatiq`` command's).
    """
    install_redaction()
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter())
    logging.basicConfig(level=level, handlers=[handler], force=replace)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
