"""Shared fixtures: an isolated instance, a clean database and Redis for every test.

By default the suite runs embedded (SQLite in a temporary directory, in-process
Redis). To run it against real servers, name a database and a Redis database
that the suite may wipe:

    SNORQ_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/snorq_test \\
    SNORQ_TEST_REDIS_URL=redis://127.0.0.1:6379/7 pytest

``DATABASE_URL`` and ``REDIS_URL`` from the caller's environment are ignored, so
the suite never wipes a real deployment by accident.
"""

from __future__ import annotations

import os
import tempfile

from cryptography.fernet import Fernet

_INSTANCE = tempfile.mkdtemp(prefix="snorq-test-")
TEST_ENV = {
    "SNORQ_INSTANCE_PATH": _INSTANCE,
    "SECRET_KEY": "test-secret-key",
    "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "WHATSAPP_APP_ID": "wa-app-id",
    "WHATSAPP_APP_SECRET": "wa-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "wa-verify-token",
    "WHATSAPP_CONFIG_ID": "wa-config-id",
    "FACEBOOK_APP_ID": "fb-app-id",
    "FACEBOOK_APP_SECRET": "fb-app-secret",
    "FACEBOOK_VERIFY_TOKEN": "fb-verify-token",
    "TIKTOK_CLIENT_KEY": "tt-client-key",
    "TIKTOK_CLIENT_SECRET": "tt-client-secret",
    "GRAPH_API_URL": "https://graph.facebook.test/v25.0",
    "TIKTOK_API_URL": "https://business-api.tiktok.test/open_api/v1.3",
    "SNORQ_PUBLIC_URL": "http://snorq.test",
}
for _name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)
if os.environ.get("SNORQ_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["SNORQ_TEST_DATABASE_URL"]
if os.environ.get("SNORQ_TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["SNORQ_TEST_REDIS_URL"]

import pytest  # noqa: E402

from tests.support import reset_state  # noqa: E402

pytest_plugins = ["tests.fixtures", "tests.log_scan"]


@pytest.fixture(scope="session", autouse=True)
def _schema():
    from app.db import database, migrate
    from workers.broker import broker  # noqa: F401  (binds the database too)

    with database.connection_context():
        migrate()
    yield


@pytest.fixture(autouse=True)
def _clean_state():
    reset_state()
    yield
