"""Noun fixtures: the app and its client, an organization with staff, connections, a worker."""

from __future__ import annotations

import pytest

ACCOUNT_IDS = {"whatsapp": "106540352242922", "facebook": "1234567890", "tiktok": "7312345678901"}


@pytest.fixture
def app():
    from app import create_app

    flask_app = create_app()
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def org():
    from app.models import Organization

    return Organization.create(name="Acme")


@pytest.fixture
def other_org():
    from app.models import Organization

    return Organization.create(name="Globex")


@pytest.fixture
def user(org):
    from app.auth import hash_password
    from app.models import User

    return User.create(organization=org, email="agent@acme.test", password_hash=hash_password("pw"))


@pytest.fixture
def api_headers(user):
    from app.auth import create_api_token

    return {"Authorization": f"Bearer {create_api_token(user)}"}


def make_connection(org, platform: str, account_id: str | None = None, **fields):
    from app.models import PlatformConnection

    refresh_token = fields.pop("refresh_token", None)
    connection = PlatformConnection(
        organization=org,
        platform=platform,
        account_id=account_id or ACCOUNT_IDS[platform],
        name=f"Acme {platform}",
        **fields,
    )
    connection.set_tokens(f"{platform}-access-token", refresh_token)
    connection.save()
    return connection


@pytest.fixture
def connections(org):
    """One connection per platform for ``org``, by platform name."""
    return {name: make_connection(org, name) for name in ACCOUNT_IDS}


@pytest.fixture
def worker(request):
    """A Dramatiq worker on the test broker; ``worker.drain()`` runs everything queued.

    A test module sets ``WORKER_QUEUES`` to leave some queues alone (its webhooks'
    files are not fetched without ``media``).
    """
    import dramatiq

    from workers.broker import QUEUES, broker

    queues = getattr(request.module, "WORKER_QUEUES", QUEUES)
    running = dramatiq.Worker(broker, queues=set(queues), worker_threads=2, worker_timeout=100)
    running.start()

    def drain(timeout_ms: int = 20_000) -> None:
        for _ in range(3):
            for queue in queues:
                broker.join(queue, timeout=timeout_ms)
            running.join()

    running.drain = drain
    yield running
    running.stop(timeout=5_000)


class _CountedCursor:
    """A cursor that notes each statement sent through it: one message to the server."""

    def __init__(self, cursor, sent: list[str]) -> None:
        self._cursor, self._sent = cursor, sent

    def execute(self, sql, params=None):
        self._sent.append(sql)
        return self._cursor.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


@pytest.fixture
def wire(monkeypatch) -> list[str]:
    """What this thread sends PostgreSQL, one entry per message (round trip) to the server.

    PostgreSQL only: there, BEGIN and statements run later travel with other statements.
    """
    from app.db import database, is_postgres

    if not is_postgres():
        pytest.skip("statements are sent together on PostgreSQL only")
    sent: list[str] = []
    cursor = database.obj.cursor
    monkeypatch.setattr(database.obj, "cursor", lambda: _CountedCursor(cursor(), sent))
    return sent
