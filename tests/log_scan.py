"""A pytest plugin that fails the run if any log line carries a secret, token or message body.

Every record logged during the session (message, arguments and traceback) is
kept; at the end each is searched for the suite's known secrets (app secrets,
verify tokens, session and encryption keys), every platform and API token the
tests hand out, and every customer text found in the payload fixtures.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

PAYLOADS = Path(__file__).parent / "payloads"
API_TOKEN = re.compile(r"snorq_[A-Za-z0-9_-]{40,}")
#: Keys whose values are customer-written text in platform payloads.
TEXT_KEYS = {"body", "text", "caption", "title", "emoji"}


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            # As logging.Formatter does: the traceback formatted when the record was made.
            text += "\n" + (record.exc_text or logging.Formatter().formatException(record.exc_info))
        self.lines.append(f"{record.name}: {text}")


_kept = _Keep()


def _texts(value, found: set[str], key: str | None = None) -> None:
    if isinstance(value, dict):
        for child_key, child in value.items():
            _texts(child, found, child_key)
    elif isinstance(value, list):
        for child in value:
            _texts(child, found, key)
    elif isinstance(value, str):
        if key == "content" and value.startswith("{"):
            _texts(json.loads(value), found)
        elif key in TEXT_KEYS and len(value) >= 8:
            found.add(value)


def customer_texts() -> set[str]:
    """Every customer-written text in the payload fixtures."""
    found: set[str] = set()
    for path in PAYLOADS.rglob("*.json"):
        _texts(json.loads(path.read_text()), found)
    return found


def canaries(secrets: dict[str, str]) -> set[str]:
    """What must never appear in a log line."""
    values = {value for value in secrets.values() if len(value) >= 8}
    values |= {f"{platform}-access-token" for platform in ("whatsapp", "facebook", "tiktok")}
    return values | customer_texts()


def leaks(lines: list[str], forbidden: set[str]) -> list[str]:
    """The lines that contain something forbidden, each with what it contains."""
    found = []
    for line in lines:
        hits = [value for value in forbidden if value in line]
        if API_TOKEN.search(line):
            hits.append("an API token")
        if hits:
            found.append(f"{line[:200]!r} contains {hits[0][:40]!r}")
    return found


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(_kept)
    root.setLevel(min(root.level, logging.INFO))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.conftest import TEST_ENV

    found = leaks(_kept.lines, canaries(TEST_ENV))
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"\n{len(found)} log line(s) leak a secret or a message body:")
        for line in found[:20]:
            reporter.write_line(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
