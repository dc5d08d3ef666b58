"""Private notes: staff only, never a message, never sent; audited, live, scoped."""

import pytest

from app import live
from app.models import AuditLog, Conversation, Message, Note, User
from tests.fixtures import make_connection
from tests.test_api import add_message, make_conversation
from workers.broker import QUEUES, broker

NOTE = {"content": "Ring her back after 3 — she's asked twice about the refund. <b>ok</b>"}


@pytest.fixture
def conversation(connections):
    return make_conversation(connections["whatsapp"], "Zoë", unread=2)


@pytest.fixture
def foreign_conversation(other_org):
    return make_conversation(make_connection(other_org, "whatsapp", "999"), "Stranger")


def notes_path(conversation) -> str:
    return f"/api/v1/conversations/{conversation.id}/notes"


def test_a_note_is_stored_with_its_author_and_answered_201(client, api_headers, conversation, user):
    response = client.post(notes_path(conversation), json=NOTE, headers=api_headers)

    assert response.status_code == 201
    note = response.json["note"]
    assert note["content"] == NOTE["content"]
    assert note["conversation_id"] == conversation.id
    assert note["author"] == {"id": user.id, "email": user.email}
    assert note["created_at"].endswith("Z")
    assert Note.get_by_id(note["id"]).author_id == user.id


def test_notes_are_listed_oldest_first(client, api_headers, conversation):
    for text in ("first", "second", "third"):
        client.post(notes_path(conversation), json={"content": text}, headers=api_headers)

    listed = client.get(notes_path(conversation), headers=api_headers).json["notes"]
    assert [note["content"] for note in listed] == ["first", "second", "third"]
    older = client.get(
        f"{notes_path(conversation)}?before={listed[2]['id']}&limit=1", headers=api_headers
    )
    assert [note["content"] for note in older.json["notes"]] == ["second"]


def test_a_note_outlives_its_author_without_one(client, api_headers, conversation, user):
    client.post(notes_path(conversation), json=NOTE, headers=api_headers)
    User.delete_by_id(user.id)
    remaining = Note.get(Note.conversation == conversation.id)
    assert remaining.author_id is None


def test_a_note_is_never_a_message_and_nothing_is_queued_or_counted(
    client, api_headers, conversation
):
    add_message(conversation, "Where is my refund?")
    before = Conversation.get_by_id(conversation.id)

    client.post(notes_path(conversation), json=NOTE, headers=api_headers)

    assert Message.select().count() == 1
    after = Conversation.get_by_id(conversation.id)
    assert (after.last_message_preview, after.last_message_at, after.unread_count) == (
        before.last_message_preview,
        before.last_message_at,
        before.unread_count,
    )
    assert all(broker.client.hlen(f"{broker.namespace}:{queue}.msgs") == 0 for queue in QUEUES)
    messages = client.get(f"/api/v1/conversations/{conversation.id}/messages", headers=api_headers)
    assert messages.json["messages"][0]["content"] == "Where is my refund?"
    assert len(messages.json["messages"]) == 1


def test_a_note_is_audited_without_its_text(client, api_headers, conversation, user):
    note = client.post(notes_path(conversation), json=NOTE, headers=api_headers).json["note"]

    entry = AuditLog.get(AuditLog.action == "note_create")
    assert (entry.platform, entry.ok, entry.user_id) == ("whatsapp", True, user.id)
    assert entry.organization_id == conversation.organization_id
    assert entry.detail == f"note {note['id']} on conversation {conversation.id}"
    assert "refund" not in entry.detail


def test_other_staff_pages_hear_of_a_note(client, api_headers, conversation):
    note = client.post(notes_path(conversation), json=NOTE, headers=api_headers).json["note"]

    events, _ = live.events_since(conversation.organization_id, 0)
    assert [(e["type"], e["data"]) for e in events] == [
        ("note:created", {"conversation_id": conversation.id, "note": note})
    ]


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"content": ""}, {"content": "   "}, {"content": 7}, {"content": "x" * 10_001}],
)
def test_a_note_without_proper_text_answers_400_with_a_sentence(
    client, api_headers, conversation, body
):
    response = client.post(notes_path(conversation), json=body, headers=api_headers)
    assert response.status_code == 400
    assert response.json["error"].endswith(".")
    assert Note.select().count() == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_organizations_conversation_has_no_notes_here(
    client, api_headers, foreign_conversation, method
):
    response = client.open(
        notes_path(foreign_conversation), method=method, json=NOTE, headers=api_headers
    )
    assert response.status_code == 404
    assert Note.select().count() == 0


def test_notes_need_credentials_and_the_csrf_token(client, user, conversation):
    assert client.get(notes_path(conversation)).status_code == 401
    with client.session_transaction() as session:
        session["user_id"] = user.id
        session["csrf"] = "the-csrf-token"
    assert client.post(notes_path(conversation), json=NOTE).status_code == 403
    headers = {"X-CSRF-Token": "the-csrf-token"}
    assert client.post(notes_path(conversation), json=NOTE, headers=headers).status_code == 201
