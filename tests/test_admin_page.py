"""The admin page: admins only, their organization's webhooks only, replays behind CSRF."""

import datetime

import pytest
from click.testing import CliRunner

from app.auth import hash_password
from app.cli import main
from app.db import utcnow
from app.models import Message, Role, User, WebhookEvent
from tests.fixtures import make_connection
from tests.payloads import payload
from tests.support import signed
from tests.test_inbox_pages import csrf_from, sign_in
from workers import dead_letters
from workers.broker import INBOUND, MAINTENANCE, OUTBOUND, broker
from workers.inbound import ingest_webhooks

WORKER_QUEUES = (INBOUND, OUTBOUND, MAINTENANCE)
GLOBEX_PHONE_NUMBER_ID, UNKNOWN_PHONE_NUMBER_ID = "555000555", "999000999"


def stuck_webhook(phone_number_id: str, message_id: str) -> WebhookEvent:
    """A webhook whose every attempt failed, an hour ago."""
    body = payload("whatsapp", "text")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    value["messages"][0]["id"] = message_id
    data, _ = signed("whatsapp", body)
    return WebhookEvent.create(
        delivery_id=message_id,
        platform="whatsapp",
        body=data,
        received_at=utcnow() - datetime.timedelta(hours=1),
    )


@pytest.fixture
def failures(connections, other_org):
    """One stuck webhook for Acme, one for Globex, one for nobody."""
    make_connection(other_org, "whatsapp", GLOBEX_PHONE_NUMBER_ID)
    return {
        "acme": stuck_webhook(connections["whatsapp"].account_id, "wamid.ACME"),
        "globex": stuck_webhook(GLOBEX_PHONE_NUMBER_ID, "wamid.GLOBEX"),
        "nobody": stuck_webhook(UNKNOWN_PHONE_NUMBER_ID, "wamid.NOBODY"),
    }


def as_role(client, user, role: str):
    user.role = role
    user.save()
    sign_in(client)
    return client


def replay(client, path: str, with_csrf: bool = True):
    data = {"csrf_token": csrf_from(client.get("/").get_data(as_text=True))} if with_csrf else {}
    return client.post(path, data=data)


def test_the_admin_page_is_not_there_for_staff_or_strangers(client, user, failures):
    assert client.get("/admin/").status_code == 302
    as_role(client, user, Role.STAFF)
    assert client.get("/admin/").status_code == 404
    assert replay(client, f"/admin/webhooks/{failures['acme'].id}/replay").status_code == 404
    assert 'href="/admin/"' not in client.get("/").get_data(as_text=True)


def test_an_admin_sees_only_their_organizations_webhooks(client, user, failures):
    as_role(client, user, Role.ADMIN)
    html = client.get("/admin/").get_data(as_text=True)

    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)
    assert f'data-event-id="{failures["acme"].id}"' in html
    assert f'data-event-id="{failures["globex"].id}"' not in html
    assert f'data-event-id="{failures["nobody"].id}"' not in html
    assert "Dead-lettered jobs" not in html


def test_an_admin_cannot_replay_another_organizations_webhook_or_a_job(client, user, failures):
    as_role(client, user, Role.ADMIN)
    for kind in ("globex", "nobody"):
        path = f"/admin/webhooks/{failures[kind].id}/replay"
        assert replay(client, path).status_code == 404
    assert replay(client, "/admin/jobs/anything/replay").status_code == 404
    assert Message.select().count() == 0


def test_replaying_from_the_page_needs_the_csrf_token_and_stores_one_message(
    client, user, failures
):
    as_role(client, user, Role.ADMIN)
    path = f"/admin/webhooks/{failures['acme'].id}/replay"
    assert replay(client, path, with_csrf=False).status_code == 403

    answer = replay(client, path)
    assert answer.headers["Location"] == "/admin/"
    assert "processed again" in client.get("/admin/").get_data(as_text=True)
    assert replay(client, path).status_code == 404  # processed: no longer listed
    assert Message.select().count() == 1


def test_an_operator_sees_unrouted_webhooks_and_dead_letters_and_replays_them(
    client, user, failures, worker, monkeypatch
):
    from workers import inbound

    monkeypatch.setattr(inbound, "process", lambda webhook: 1 / 0)
    delivery = ["d-1", "whatsapp", bytes(failures["acme"].body).decode(), 1767225600.0]
    ingest_webhooks.send_with_options(args=([delivery],), max_retries=0)
    worker.drain()
    monkeypatch.undo()
    [letter] = dead_letters.dead_letters(broker)

    as_role(client, user, Role.OPERATOR)
    html = client.get("/admin/").get_data(as_text=True)
    assert f"{UNKNOWN_PHONE_NUMBER_ID} <strong>(no connection)</strong>" in html
    assert f'data-event-id="{failures["globex"].id}"' in html
    assert f'data-job-id="{letter.message_id}"' in html

    assert replay(client, f"/admin/jobs/{letter.message_id}/replay").status_code == 302
    assert dead_letters.dead_letters(broker) == []
    assert replay(client, f"/admin/jobs/{letter.message_id}/replay").status_code == 404


def test_an_organizations_first_user_is_its_admin_and_roles_can_change(org):
    def snorq(*arguments):
        result = CliRunner().invoke(main, list(arguments))
        assert result.exit_code == 0, result.output
        return result.output

    for email in ("first@acme.test", "second@acme.test"):
        snorq("create-user", "--org", str(org.id), "--email", email, "--password", "pw")
    assert [u.role for u in User.select().order_by(User.id)] == [Role.ADMIN, Role.STAFF]

    snorq("set-role", "--email", "second@acme.test", "operator")
    assert User.get(User.email == "second@acme.test").is_operator


def test_a_user_made_before_roles_is_staff(org):
    user = User.create(organization=org, email="x@acme.test", password_hash=hash_password("pw"))
    assert (user.role, user.is_admin) == (Role.STAFF, False)
