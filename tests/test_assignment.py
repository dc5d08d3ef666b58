"""Assignment and conversation status: who handles a conversation, and where it stands.

Through the API as staff use it, through signed webhooks and a real worker for
what customers' messages change, and through the clock's actor for snoozes.
"""

import datetime
import uuid

import pytest

from app import live
from app.auth import create_api_token, hash_password
from app.db import utcnow
from app.models import AuditLog, Conversation, ConversationStatus, Organization, Role, User
from app.serializers import timestamp
from tests.payloads import payload
from tests.support import signed
from tests.test_api import make_conversation
from workers.snoozes import wake_snoozed

OPEN, PENDING, SNOOZED, RESOLVED = ConversationStatus.ALL


@pytest.fixture
def colleague(org):
    return User.create(organization=org, email="bea@acme.test", password_hash=hash_password("pw"))


@pytest.fixture
def stranger(other_org):
    return User.create(
        organization=other_org, email="eve@globex.test", password_hash=hash_password("pw")
    )


@pytest.fixture
def conversation(connections):
    return make_conversation(connections["whatsapp"], "Zoë")


def headers_of(user: User) -> dict:
    return {"Authorization": f"Bearer {create_api_token(user)}"}


def assign(client, headers, conversation_id, assignee_id):
    return client.post(
        f"/api/v1/conversations/{conversation_id}/assign",
        json={"assignee_id": assignee_id},
        headers=headers,
    )


def set_status(client, headers, conversation_id, status, **extra):
    return client.post(
        f"/api/v1/conversations/{conversation_id}/status",
        json={"status": status, **extra},
        headers=headers,
    )


def events_of(org, kind: str) -> list[dict]:
    events, complete = live.events_since(org.id, 0)
    assert complete
    return [event["data"] for event in events if event["type"] == kind]


def audited(action: str) -> list[AuditLog]:
    return list(AuditLog.select().where(AuditLog.action == action).order_by(AuditLog.id))


def listed(client, headers, query: str = "") -> list[int]:
    response = client.get(f"/api/v1/conversations{query}", headers=headers)
    assert response.status_code == 200, response.json
    return [c["id"] for c in response.json["conversations"]]


def in_an_hour() -> str:
    return (utcnow() + datetime.timedelta(hours=1)).isoformat() + "Z"


# -- assignment ----------------------------------------------------------------------------


def test_a_conversation_is_assigned_to_a_colleague_live_and_audited(
    client, api_headers, user, colleague, conversation, org
):
    response = assign(client, api_headers, conversation.id, colleague.id)

    assert response.status_code == 200
    assert response.json["conversation"]["assignee_id"] == colleague.id
    assert Conversation.get_by_id(conversation.id).assignee_id == colleague.id
    [event] = events_of(org, "conversation:assigned")
    assert event == {
        "conversation_id": conversation.id,
        "status": OPEN,
        "snoozed_until": None,
        "status_changed_at": None,
        "assignee_id": colleague.id,
        "by": user.id,
    }
    [entry] = audited("assign")
    assert (entry.user_id, entry.platform, entry.organization_id) == (user.id, "whatsapp", org.id)
    assert entry.detail == f"conversation {conversation.id}: assigned to staff {colleague.id}"


def test_null_unassigns_and_assigning_the_same_person_again_changes_nothing(
    client, api_headers, colleague, conversation, org
):
    assign(client, api_headers, conversation.id, colleague.id)
    assert assign(client, api_headers, conversation.id, colleague.id).status_code == 200

    response = assign(client, api_headers, conversation.id, None)

    assert response.json["conversation"]["assignee_id"] is None
    assert [e["assignee_id"] for e in events_of(org, "conversation:assigned")] == [
        colleague.id,
        None,
    ]
    assert [e.detail.split(": ")[1] for e in audited("assign")] == [
        f"assigned to staff {colleague.id}",
        "assigned to nobody",
    ]


@pytest.mark.parametrize("body", [{}, {"assignee_id": "2"}, {"assignee_id": True}, [1]])
def test_an_assignment_without_a_staff_id_is_refused(client, api_headers, conversation, body):
    response = client.post(
        f"/api/v1/conversations/{conversation.id}/assign", json=body, headers=api_headers
    )
    assert response.status_code == 400
    assert response.json["error"]


def test_nobody_of_another_organization_is_assigned_or_assigns(
    client, api_headers, stranger, conversation, other_org, connections
):
    response = assign(client, api_headers, conversation.id, stranger.id)
    assert response.status_code == 400
    assert "staff member of yours" in response.json["error"]

    # The other organization's staff cannot see the conversation at all.
    assert assign(client, headers_of(stranger), conversation.id, None).status_code == 404
    assert set_status(client, headers_of(stranger), conversation.id, RESOLVED).status_code == 404
    assert Conversation.get_by_id(conversation.id).assignee_id is None
    assert audited("assign") == []


def test_a_staff_member_who_leaves_leaves_their_conversations_unassigned(
    client, api_headers, colleague, conversation
):
    assign(client, api_headers, conversation.id, colleague.id)
    colleague.delete_instance()
    assert Conversation.get_by_id(conversation.id).assignee_id is None


def test_the_list_filters_mine_unassigned_and_a_colleague(
    client, api_headers, user, colleague, connections
):
    mine = make_conversation(connections["whatsapp"], "Mine", minutes_ago=3)
    theirs = make_conversation(connections["facebook"], "Theirs", minutes_ago=2)
    nobodys = make_conversation(connections["tiktok"], "Nobody's", minutes_ago=1)
    assign(client, api_headers, mine.id, user.id)
    assign(client, api_headers, theirs.id, colleague.id)

    assert listed(client, api_headers, "?assignee=me") == [mine.id]
    assert listed(client, api_headers, "?assignee=none") == [nobodys.id]
    assert listed(client, api_headers, f"?assignee={colleague.id}") == [theirs.id]
    assert listed(client, api_headers) == [nobodys.id, theirs.id, mine.id]
    # The same filter seen by the colleague: "me" is whoever asks.
    assert listed(client, headers_of(colleague), "?assignee=me") == [theirs.id]


def test_an_unknown_assignee_filter_is_a_clear_400(client, api_headers):
    response = client.get("/api/v1/conversations?assignee=someone", headers=api_headers)
    assert response.status_code == 400
    assert "me, none" in response.json["error"]


# -- status --------------------------------------------------------------------------------


def test_resolving_is_live_audited_and_stamped(client, api_headers, user, conversation, org):
    response = set_status(client, api_headers, conversation.id, RESOLVED)

    assert response.status_code == 200
    shown = response.json["conversation"]
    assert shown["status"] == RESOLVED
    stored = Conversation.get_by_id(conversation.id)
    assert stored.status == RESOLVED
    assert shown["status_changed_at"] == timestamp(stored.status_changed_at)
    [event] = events_of(org, "conversation:status")
    assert (event["status"], event["by"], event["conversation_id"]) == (
        RESOLVED,
        user.id,
        conversation.id,
    )
    [entry] = audited("conversation_status")
    assert entry.detail == f"conversation {conversation.id}: OPEN → RESOLVED"
    assert entry.user_id == user.id


def test_a_snooze_keeps_its_end_and_any_other_status_clears_it(
    client, api_headers, conversation, org
):
    until = in_an_hour()
    snoozed = set_status(client, api_headers, conversation.id, SNOOZED, snoozed_until=until)
    assert snoozed.status_code == 200
    assert snoozed.json["conversation"]["snoozed_until"][:19] == until[:19]

    pending = set_status(client, api_headers, conversation.id, PENDING)

    assert pending.json["conversation"]["snoozed_until"] is None
    assert Conversation.get_by_id(conversation.id).snoozed_until is None
    assert [e["status"] for e in events_of(org, "conversation:status")] == [SNOOZED, PENDING]


def test_the_same_status_again_changes_nothing(client, api_headers, conversation, org):
    set_status(client, api_headers, conversation.id, RESOLVED)
    assert set_status(client, api_headers, conversation.id, RESOLVED).status_code == 200
    assert len(events_of(org, "conversation:status")) == 1
    assert len(audited("conversation_status")) == 1


@pytest.mark.parametrize(
    "body, says",
    [
        ({"status": "CLOSED"}, "status must be one of"),
        ({"status": "resolved"}, "status must be one of"),
        ({"status": SNOOZED}, "snoozed_until must be a time"),
        ({"status": SNOOZED, "snoozed_until": "tomorrow"}, "snoozed_until must be a time"),
        ({"status": SNOOZED, "snoozed_until": "2030-01-01T09:00:00"}, "with its offset"),
        ({"status": SNOOZED, "snoozed_until": "2020-01-01T09:00:00Z"}, "in the future"),
        ({"status": SNOOZED, "snoozed_until": "2999-01-01T09:00:00Z"}, "within a year"),
        ({"status": RESOLVED, "snoozed_until": "2030-01-01T09:00:00Z"}, "SNOOZED only"),
    ],
)
def test_a_status_change_that_makes_no_sense_is_a_clear_400(
    client, api_headers, conversation, body, says
):
    response = client.post(
        f"/api/v1/conversations/{conversation.id}/status", json=body, headers=api_headers
    )
    assert response.status_code == 400
    assert says in response.json["error"]
    assert Conversation.get_by_id(conversation.id).status == OPEN


def test_a_snooze_end_with_an_offset_is_kept_in_utc(client, api_headers, conversation):
    local = (utcnow() + datetime.timedelta(hours=3)).replace(microsecond=0)
    in_madrid = (local + datetime.timedelta(hours=1)).isoformat() + "+01:00"

    set_status(client, api_headers, conversation.id, SNOOZED, snoozed_until=in_madrid)

    assert Conversation.get_by_id(conversation.id).snoozed_until == local


def test_the_list_filters_by_status_and_shows_every_status_without_a_filter(
    client, api_headers, connections
):
    by_status = {
        status: make_conversation(connections["whatsapp"], status, minutes_ago=n)
        for n, status in enumerate((OPEN, PENDING, RESOLVED))
    }
    for status in (PENDING, RESOLVED):
        set_status(client, api_headers, by_status[status].id, status)

    assert listed(client, api_headers, "?status=OPEN") == [by_status[OPEN].id]
    assert listed(client, api_headers, "?status=open,PENDING") == [
        by_status[OPEN].id,
        by_status[PENDING].id,
    ]
    assert listed(client, api_headers, "?status=SNOOZED") == []
    assert len(listed(client, api_headers)) == 3
    response = client.get("/api/v1/conversations?status=OPEN,DONE", headers=api_headers)
    assert response.status_code == 400
    assert "OPEN, PENDING, SNOOZED, RESOLVED" in response.json["error"]


# -- what customers' messages and the clock change ------------------------------------------


def customer_text(phone: str = "16505551234", text: str = "Any news?") -> dict:
    """A WhatsApp text from the customer with this phone number, as Meta sends it."""
    body = payload("whatsapp", "text")
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id=phone, user_id=f"US.{phone}")
    message = value["messages"][0]
    message.update({"from": phone, "from_user_id": f"US.{phone}", "id": f"wamid.{uuid.uuid4()}"})
    message["text"]["body"] = text
    return body


def deliver(client, worker, body: dict) -> None:
    data, headers = signed("whatsapp", body)
    assert client.post("/api/v1/webhooks/whatsapp", data=data, headers=headers).status_code == 200
    worker.drain()


def the_conversation(phone: str = "16505551234") -> Conversation:
    return (
        Conversation.select()
        .join(Conversation.contact.rel_model)
        .where(Conversation.contact.rel_model.phone == phone)
        .get()
    )


@pytest.mark.parametrize("put_away", [RESOLVED, PENDING, SNOOZED])
def test_a_customer_message_opens_the_conversation_again(
    client, api_headers, worker, connections, org, put_away
):
    deliver(client, worker, customer_text())
    conversation = the_conversation()
    extra = {"snoozed_until": in_an_hour()} if put_away == SNOOZED else {}
    set_status(client, api_headers, conversation.id, put_away, **extra)

    deliver(client, worker, customer_text(text="Hello? Still waiting"))

    stored = Conversation.get_by_id(conversation.id)
    assert (stored.status, stored.snoozed_until) == (OPEN, None)
    reopened = events_of(org, "conversation:status")[-1]
    assert (reopened["status"], reopened["by"], reopened["snoozed_until"]) == (OPEN, None, None)
    assert reopened["status_changed_at"] == timestamp(stored.status_changed_at)
    new_message = events_of(org, "new:message")[-1]
    assert new_message["conversation"]["status"] == OPEN
    entry = audited("conversation_status")[-1]
    assert entry.user_id is None
    assert entry.detail.endswith("opened again by a message from the customer")


def test_a_message_to_an_open_conversation_or_a_platform_notice_reopens_nothing(
    client, api_headers, worker, connections, org
):
    deliver(client, worker, customer_text())
    deliver(client, worker, customer_text(text="And another thing"))
    assert events_of(org, "conversation:status") == []

    conversation = the_conversation()
    set_status(client, api_headers, conversation.id, RESOLVED)
    deliver(client, worker, payload("whatsapp", "system"))

    assert Conversation.get_by_id(conversation.id).status == RESOLVED
    assert len(audited("conversation_status")) == 1


def test_the_clock_opens_a_snoozed_conversation_once_its_snooze_is_over(
    client, api_headers, connections, org
):
    due = make_conversation(connections["whatsapp"], "Due")
    later = make_conversation(connections["facebook"], "Later")
    for conversation in (due, later):
        set_status(client, api_headers, conversation.id, SNOOZED, snoozed_until=in_an_hour())
    Conversation.update(snoozed_until=utcnow() - datetime.timedelta(seconds=1)).where(
        Conversation.id == due.id
    ).execute()

    wake_snoozed.fn()
    wake_snoozed.fn()

    assert Conversation.get_by_id(due.id).status == OPEN
    assert Conversation.get_by_id(later.id).status == SNOOZED
    woken = [e for e in events_of(org, "conversation:status") if e["status"] == OPEN]
    assert [(e["conversation_id"], e["by"]) for e in woken] == [(due.id, None)]
    entry = audited("conversation_status")[-1]
    assert entry.detail == f"conversation {due.id}: SNOOZED → OPEN: snooze over"


def test_the_clock_runs_the_snooze_pass_every_minute():
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler.jobs import add_jobs

    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler)
    job = scheduler.get_job("snoozes")
    assert str(job.trigger) == "cron[minute='*/1']"
    assert job.args == ("snoozes", 1, wake_snoozed.send)


# -- handing new conversations out in turn ---------------------------------------------------


@pytest.fixture
def team(org, user, colleague):
    """Ana (``user``) and Bea available, Cy away; the organization assigns in turn."""
    away = User.create(organization=org, email="cy@acme.test", password_hash=hash_password("pw"))
    Organization.update(auto_assign=True).where(Organization.id == org.id).execute()
    User.update(available=True).where(User.id.in_([user.id, colleague.id])).execute()
    return user, colleague, away


def test_new_conversations_go_in_turn_to_the_available_staff(client, worker, connections, team):
    ana, bea, _ = team

    for n in range(4):
        deliver(client, worker, customer_text(phone=f"1650555000{n}"))
    deliver(client, worker, customer_text(phone="16505550000", text="Me again"))

    assignees = [the_conversation(f"1650555000{n}").assignee_id for n in range(4)]
    assert assignees == [ana.id, bea.id, ana.id, bea.id]
    assert len(audited("assign")) == 4
    assert all(e.detail.endswith("in turn") and e.user_id is None for e in audited("assign"))


def test_nothing_is_handed_out_unless_the_organization_asks(client, worker, connections, org, team):
    Organization.update(auto_assign=False).where(Organization.id == org.id).execute()
    deliver(client, worker, customer_text())
    assert the_conversation().assignee_id is None
    assert events_of(org, "conversation:assigned") == []


def test_the_assignment_in_turn_is_live(client, worker, connections, org, team):
    ana, _, _ = team
    deliver(client, worker, customer_text())
    [event] = events_of(org, "conversation:assigned")
    assert (event["assignee_id"], event["by"]) == (ana.id, None)
    assert events_of(org, "new:message")[0]["conversation"]["assignee_id"] == ana.id


# -- the team --------------------------------------------------------------------------------


def test_staff_lists_the_organization_only(client, api_headers, user, colleague, stranger):
    response = client.get("/api/v1/staff", headers=api_headers)
    assert response.json == {
        "staff": [
            {"id": user.id, "email": "agent@acme.test", "available": False},
            {"id": colleague.id, "email": "bea@acme.test", "available": False},
        ]
    }


def test_staff_say_when_they_are_available(client, api_headers, user):
    response = client.patch("/api/v1/staff/me", json={"available": True}, headers=api_headers)

    assert response.json["staff"]["available"] is True
    assert User.get_by_id(user.id).available is True
    [entry] = audited("staff_available")
    assert entry.user_id == user.id
    bad = client.patch("/api/v1/staff/me", json={"available": "yes"}, headers=api_headers)
    assert bad.status_code == 400


def test_only_an_admin_turns_assignment_in_turn_on(client, api_headers, org):
    refused = client.patch("/api/v1/organization", json={"auto_assign": True}, headers=api_headers)
    assert refused.status_code == 403

    admin = User.create(
        organization=org, email="boss@acme.test", password_hash=hash_password("pw"), role=Role.ADMIN
    )
    response = client.patch(
        "/api/v1/organization", json={"auto_assign": True}, headers=headers_of(admin)
    )

    assert response.json["organization"] == {"id": org.id, "name": "Acme", "auto_assign": True}
    assert client.get("/api/v1/organization", headers=api_headers).json == response.json
    [entry] = audited("auto_assign")
    assert entry.user_id == admin.id
