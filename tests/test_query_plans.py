"""Every query on a hot path is served by an index, on PostgreSQL and on SQLite (issue 11).

Each path runs through the real code (the API through the Flask client, the inbound
worker's ``process``, the clock's sweeps, retention), and every statement it sends
is explained just before it runs, on the same connection. On PostgreSQL the tables
are seeded large first (``bench/seed.py``) and analyzed, so the planner picks an
index wherever one fits: a sequential scan of a large table fails the test. On
SQLite, whose planner takes every table without statistics for a large one, a
``SCAN`` of a large table without an index fails it.
"""

from __future__ import annotations

import datetime
import os
import re
import uuid
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from peewee import Case, Value

from app import routing
from app.auth import create_api_token, hash_password
from app.db import database, is_postgres, utcnow
from app.messages import create_outbound, forget_cached_ids, record_sent
from app.models import (
    AuditLog,
    Conversation,
    ConversationLabel,
    ConversationStatus,
    Label,
    Message,
    Organization,
    PlatformConnection,
    User,
    WebhookEvent,
    WebhookStatus,
)
from tests.fixtures import make_connection
from tests.payloads import payload
from tests.support import meta_body, reset_state

#: Tables that grow with use; a full scan of one is what the test forbids.
LARGE = {
    "message",
    "conversation",
    "contact",
    "platform_connection",
    "attachment",
    "webhook_event",
    "audit_log",
    "conversation_label",
}
_EXPLAINABLE = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|EXECUTE)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _clean_state():
    """The seeded dataset is shared by this module's tests (``dataset`` cleans up)."""
    yield


@pytest.fixture(scope="module")
def dataset():
    """A large organization (seeded on PostgreSQL) with a few messages through the app."""
    reset_state()
    with database.connection_context():
        org_id = _seed() if is_postgres() else _small_organization()
        data = _through_the_app(org_id)
    yield data
    reset_state()


def _seed() -> int:
    import psycopg2

    from bench.seed import Sizes, seed

    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        sizes = Sizes(
            organizations=300,
            conversations=20_000,
            messages=200_000,
            webhooks=20_000,
            audit=100_000,
        )
        return seed(connection, sizes)["organizations"][0]
    finally:
        connection.close()


def _small_organization() -> int:
    org = Organization.create(name="Acme")
    for platform in ("whatsapp", "facebook", "tiktok"):
        make_connection(org, platform, f"{platform}-account")
    return org.id


def _through_the_app(org_id: int) -> dict:
    """A staff token, a customer's messages and a sent reply, made by SNORQ's own code."""
    from workers.inbound import process

    # On PostgreSQL, one of the organization's seeded agents, with their conversations.
    user = User.select().where(User.organization == org_id).order_by(User.id.desc()).first()
    user = user or User.create(
        organization=org_id,
        email=f"{uuid.uuid4().hex}@plans.test",
        password_hash=hash_password("x"),
    )
    whatsapp = PlatformConnection.get(
        PlatformConnection.organization == org_id, PlatformConnection.platform == "whatsapp"
    )
    for phone in ("16505550001", "16505550000", "16505550000"):
        process(_webhook(inbound_text(whatsapp.account_id, phone)))
    conversation = Conversation.select().order_by(Conversation.id.desc()).first()
    reply, _ = create_outbound(conversation, user_id=user.id, content="On its way")
    record_sent(reply, f"wamid.plans-{uuid.uuid4().hex}")
    AuditLog.create(platform="whatsapp", action="send", ok=True, organization=org_id)
    label_id = _label_conversations(org_id, conversation.id)
    _hand_out_conversations(org_id, user.id, conversation.id)
    return {
        "headers": {"Authorization": f"Bearer {create_api_token(user)}"},
        "account_id": whatsapp.account_id,
        "conversation_id": conversation.id,
        "reply_external_id": Message.get_by_id(reply.id).external_id,
        "label_id": label_id,
        "user_id": user.id,
    }


def _label_conversations(org_id: int, conversation_id: int) -> int:
    """Two labels in each organization, on a quarter and on half of its conversations.

    Returns:
      The id of the organization's label on a quarter (and on ``conversation_id``).
    """
    for name, every in (("VIP", 4), ("Refund", 2)):
        each = Organization.select(Organization.id, Value(name), Value("#2f5fd0"), Value(utcnow()))
        Label.insert_from(
            each, [Label.organization, Label.name, Label.color, Label.created_at]
        ).execute()
        same = (Label.organization == Conversation.organization) & (Label.name == name)
        tagged = (
            Conversation.select(Conversation.id, Label.id)
            .join(Label, on=same)
            .where(Conversation.id.bin_and(every - 1) == 0)
        )
        ConversationLabel.insert_from(
            tagged, [ConversationLabel.conversation, ConversationLabel.label]
        ).execute()
    vip = Label.get(Label.organization == org_id, Label.name == "VIP")
    ConversationLabel.insert(conversation=conversation_id, label=vip).on_conflict_ignore().execute()
    if is_postgres():
        database.execute_sql("ANALYZE label")
        database.execute_sql("ANALYZE conversation_label")
    return vip.id


def _hand_out_conversations(org_id: int, user_id: int, conversation_id: int) -> None:
    """Most conversations resolved, some pending, an eighth of them assigned to ``user_id``
    (the seed lays such statuses out itself), and ``conversation_id`` snoozed until a moment
    just past, for the clock to wake."""
    if not is_postgres():
        Conversation.update(
            status=Case(
                None,
                [
                    (Conversation.id.bin_and(3) == 0, ConversationStatus.OPEN),
                    (Conversation.id.bin_and(7) == 1, ConversationStatus.PENDING),
                ],
                ConversationStatus.RESOLVED,
            )
        ).execute()
        mine = (Conversation.organization == org_id) & (Conversation.id.bin_and(7) < 2)
        Conversation.update(assignee=user_id).where(mine).execute()
    Conversation.update(
        status=ConversationStatus.SNOOZED, snoozed_until=utcnow() - datetime.timedelta(seconds=1)
    ).where(Conversation.id == conversation_id).execute()


def _webhook(body: dict) -> WebhookEvent:
    return WebhookEvent(
        delivery_id=uuid.uuid4().hex,
        platform="whatsapp",
        body=meta_body(body),
        received_at=utcnow(),
    )


def inbound_text(account_id: str, phone: str) -> dict:
    """A WhatsApp text from the customer with this phone number, to this account."""
    body = payload("whatsapp", "text")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = account_id
    value["contacts"][0].update(wa_id=phone, user_id=f"US.{phone}")
    value["messages"][0].update({"from": phone, "from_user_id": f"US.{phone}"})
    value["messages"][0]["id"] = f"wamid.plans-{uuid.uuid4().hex}"
    return body


def status_read(account_id: str, external_id: str) -> dict:
    body = payload("whatsapp", "status_read")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = account_id
    value["statuses"][0]["id"] = external_id
    return body


# -- the paths ---------------------------------------------------------------------------


def inbound_from_a_new_customer(client, data):
    from workers.inbound import process

    routing.forget()
    forget_cached_ids()
    process(_webhook(inbound_text(data["account_id"], f"1650{uuid.uuid4().int % 10**7:07d}")))


def inbound_from_a_known_customer(client, data):
    from workers.inbound import process

    routing.forget()
    forget_cached_ids()
    process(_webhook(inbound_text(data["account_id"], "16505550000")))


def status_update_by_external_id(client, data):
    from workers.inbound import process

    process(_webhook(status_read(data["account_id"], data["reply_external_id"])))


def conversation_list_pages(client, data):
    first = _get(client, data, "/api/v1/conversations?limit=1")
    _get(client, data, f"/api/v1/conversations?limit=50&cursor={first['next_cursor']}")


def conversation_list_filtered(client, data):
    _get(client, data, "/api/v1/conversations?unread=1")
    _get(client, data, "/api/v1/conversations?platform=whatsapp")


def conversation_list_by_label(client, data):
    path = f"/api/v1/conversations?label={data['label_id']}"
    first = _get(client, data, f"{path}&limit=1")
    if first["next_cursor"]:
        _get(client, data, f"{path}&limit=50&cursor={first['next_cursor']}")


def conversation_list_by_status(client, data):
    first = _get(client, data, "/api/v1/conversations?status=OPEN&limit=1")
    _get(client, data, f"/api/v1/conversations?status=OPEN&limit=50&cursor={first['next_cursor']}")
    _get(client, data, "/api/v1/conversations?status=OPEN,PENDING")


def conversation_list_mine_and_unassigned(client, data):
    _get(client, data, "/api/v1/conversations?assignee=me&status=OPEN")
    _get(client, data, "/api/v1/conversations?assignee=none&status=OPEN")
    _get(client, data, "/api/v1/conversations?assignee=me")


def assign_and_resolve(client, data):
    path = f"/api/v1/conversations/{data['conversation_id']}"
    _post(client, data, f"{path}/assign", {"assignee_id": data["user_id"]})
    _post(client, data, f"{path}/status", {"status": "RESOLVED"})
    _post(client, data, f"{path}/status", {"status": "OPEN"})


def snoozes_woken_by_the_clock(client, data):
    from workers.snoozes import wake_snoozed

    wake_snoozed.fn()


def thread_latest_and_older_messages(client, data):
    path = f"/api/v1/conversations/{data['conversation_id']}/messages"
    latest = _get(client, data, f"{path}?limit=2")["messages"]
    _get(client, data, f"{path}?limit=50&before={latest[0]['id']}")


def unread_count_reset(client, data):
    response = client.post(
        f"/api/v1/conversations/{data['conversation_id']}/read", headers=data["headers"]
    )
    assert response.status_code == 200


def events_since(client, data):
    _get(client, data, "/api/v1/events?since=0")


def clock_sweeps(client, data):
    from workers.inbound import sweep_webhooks
    from workers.media import sweep_media
    from workers.outbound import sweep_sends
    from workers.tokens import enqueue_due_refreshes

    sweep_sends.fn()
    sweep_media.fn()
    sweep_webhooks.fn()
    enqueue_due_refreshes()


def retention_pass(client, data):
    from app import retention
    from workers.retention import prune_stored

    prune_stored.fn()
    failed = WebhookEvent.select(WebhookEvent.id).where(WebhookEvent.status == WebhookStatus.FAILED)
    retention.discard_webhooks([row.id for row in failed.limit(3)])


def search_messages_and_contacts(client, data):
    """Words in most messages, in few, a contact's name, a phone's start; a second page."""
    for query in ("t", "the tracking", "tenepo", "Zoë", "1650555"):
        found = _get(client, data, f"/api/v1/search?{urlencode({'q': query})}")
        if found["next_before"]:
            page = urlencode({"q": query, "before": found["next_before"]})
            _get(client, data, f"/api/v1/search?{page}")


def _post(client, data, url: str, body: dict) -> dict:
    response = client.post(url, json=body, headers=data["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _get(client, data, url: str) -> dict:
    response = client.get(url, headers=data["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


PATHS = [
    inbound_from_a_new_customer,
    inbound_from_a_known_customer,
    status_update_by_external_id,
    conversation_list_pages,
    conversation_list_filtered,
    conversation_list_by_label,
    conversation_list_by_status,
    conversation_list_mine_and_unassigned,
    snoozes_woken_by_the_clock,
    assign_and_resolve,
    thread_latest_and_older_messages,
    unread_count_reset,
    events_since,
    search_messages_and_contacts,
    clock_sweeps,
    retention_pass,
]


@pytest.mark.parametrize("path", PATHS, ids=[path.__name__ for path in PATHS])
def test_every_query_of_a_hot_path_reads_large_tables_through_an_index(dataset, client, path):
    plans = record_plans(lambda: path(client, dataset))

    assert plans, "the path ran no query"
    scans = [(sql, plan, table) for sql, plan in plans for table in full_scans(sql, plan)]
    assert scans == [], "\n\n".join(
        f"full scan of {table}:\n{sql}\n" + "\n".join(plan) for sql, plan, table in scans
    )


def test_the_old_index_on_last_message_at_alone_is_gone_for_the_expression_index():
    with database.connection_context():
        names = {index.name for index in database.get_indexes("conversation")}
    assert "conversation_organization_activity" in names
    assert "conversation_organization_unread" in names
    assert "conversation_organization_id_last_message_at" not in names


# -- explaining ------------------------------------------------------------------------


def record_plans(run: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """Run ``run``; each statement it sent, with the plan the database had for it."""
    db = database.obj
    original = db.execute_sql
    plans = []

    def explain(sql, params):
        if _EXPLAINABLE.match(sql):
            prefix = "EXPLAIN " if is_postgres() else "EXPLAIN QUERY PLAN "
            rows = original(prefix + sql, params).fetchall()
            plans.append((sql, [str(row[0] if is_postgres() else row[-1]) for row in rows]))

    def explained(sql, params=None):
        explain(sql, params)
        return original(sql, params)

    patched = {"execute_sql": explained}
    if is_postgres():
        # What runs with the next statement (app/db.py) is explained where it is run.
        later = db.execute_later

        def explained_later(sql, params=None):
            explain(sql, params)
            later(sql, params)

        patched["execute_later"] = explained_later
    for name, function in patched.items():
        setattr(db, name, function)
    try:
        run()
    finally:
        for name in patched:
            delattr(db, name)
    return plans


def full_scans(sql: str, plan: list[str]) -> list[str]:
    """The large tables ``plan`` reads whole."""
    if is_postgres():
        found = [m.group(1) for line in plan for m in re.finditer(r"Seq Scan on (\w+)", line)]
    else:
        aliases = {alias: table for table, alias in re.findall(r'"(\w+)" AS "(\w+)"', sql)}
        found = []
        for line in plan:
            match = re.match(r"SCAN (\w+)(?: AS (\w+))?$", line)
            if match:
                found.append(aliases.get(match.group(1), match.group(1)))
    return [table for table in found if table in LARGE]


def test_a_full_scan_is_recognised_in_either_plan_format():
    if is_postgres():
        assert full_scans("", ["  ->  Seq Scan on message t1  (cost=0.00..1.00)"]) == ["message"]
    else:
        sql = 'SELECT 1 FROM "conversation" AS "t1"'
        assert full_scans(sql, ["SCAN t1"]) == ["conversation"]
        assert full_scans(sql, ["SCAN t1 USING INDEX conversation_organization_activity"]) == []
