"""Labels: admins define them, any staff member applies them, the list filters by them."""

import pytest

from app import live
from app.auth import create_api_token, hash_password
from app.db import database
from app.models import AuditLog, ConversationLabel, Label, Role, User
from tests.fixtures import make_connection
from tests.test_api import make_conversation


@pytest.fixture
def admin(org):
    return User.create(
        organization=org,
        email="owner@acme.test",
        password_hash=hash_password("pw"),
        role=Role.ADMIN,
    )


@pytest.fixture
def admin_headers(admin):
    return {"Authorization": f"Bearer {create_api_token(admin)}"}


@pytest.fixture
def vip(org):
    return Label.create(organization=org, name="VIP", color="#c62828")


@pytest.fixture
def refund(org):
    return Label.create(organization=org, name="refund", color="#2f5fd0")


@pytest.fixture
def foreign_label(other_org):
    return Label.create(organization=other_org, name="Theirs", color="#000000")


@pytest.fixture
def conversation(connections):
    return make_conversation(connections["whatsapp"], "Zoë")


def put_labels(client, headers, conversation, ids):
    return client.put(
        f"/api/v1/conversations/{conversation.id}/labels", json={"label_ids": ids}, headers=headers
    )


def label_names(conversation_json: dict) -> list[str]:
    return [label["name"] for label in conversation_json["labels"]]


# -- defining labels ---------------------------------------------------------------------


def test_an_admin_creates_a_label_and_everyone_lists_it(client, admin_headers, api_headers, org):
    response = client.post(
        "/api/v1/labels", json={"name": " Urgent ", "color": "#FFAA00"}, headers=admin_headers
    )

    assert response.status_code == 201
    label = response.json["label"]
    assert (label["name"], label["color"]) == ("Urgent", "#ffaa00")
    listed = client.get("/api/v1/labels", headers=api_headers).json
    assert listed == {"labels": [label]}
    events, _ = live.events_since(org.id, 0)
    assert [(e["type"], e["data"]) for e in events] == [("label:created", {"label": label})]


def test_labels_are_listed_by_name_whatever_the_case(client, api_headers, vip, refund):
    listed = client.get("/api/v1/labels", headers=api_headers).json["labels"]
    assert [label["name"] for label in listed] == ["refund", "VIP"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/labels"),
        ("PATCH", "/api/v1/labels/{id}"),
        ("DELETE", "/api/v1/labels/{id}"),
    ],
)
def test_staff_who_are_not_admins_cannot_change_labels(client, api_headers, vip, method, path):
    body = {"name": "Renamed", "color": "#123456"}
    response = client.open(path.format(id=vip.id), method=method, json=body, headers=api_headers)

    assert response.status_code == 403
    assert "admin" in response.json["error"]
    assert [(label.name, label.color) for label in Label.select()] == [("VIP", "#c62828")]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "color": "#ffffff"},
        {"name": "x" * 51, "color": "#ffffff"},
        {"name": "Fine"},
        {"name": "Fine", "color": "red"},
        {"name": "Fine", "color": "#fff"},
        {"name": 4, "color": "#ffffff"},
        [],
    ],
)
def test_a_label_without_a_name_and_a_colour_answers_400(client, admin_headers, body):
    response = client.post("/api/v1/labels", json=body, headers=admin_headers)
    assert response.status_code == 400
    assert response.json["error"].endswith(".")
    assert Label.select().count() == 0


def test_a_second_label_of_the_same_name_in_any_case_answers_409(client, admin_headers, vip):
    response = client.post(
        "/api/v1/labels", json={"name": "vip", "color": "#ffffff"}, headers=admin_headers
    )
    assert response.status_code == 409
    assert response.json["error"] == "There is a label named vip already."


def test_another_organization_may_use_the_same_name(client, admin_headers, foreign_label):
    response = client.post(
        "/api/v1/labels", json={"name": "theirs", "color": "#ffffff"}, headers=admin_headers
    )
    assert response.status_code == 201


def test_an_admin_renames_and_recolours_a_label_and_pages_hear_of_it(
    client, admin_headers, vip, org
):
    response = client.patch(
        f"/api/v1/labels/{vip.id}", json={"name": "Gold", "color": "#FFD700"}, headers=admin_headers
    )

    assert response.status_code == 200
    assert response.json["label"] == {"id": vip.id, "name": "Gold", "color": "#ffd700"}
    events, _ = live.events_since(org.id, 0)
    assert [(e["type"], e["data"]) for e in events] == [
        ("label:updated", {"label": response.json["label"]})
    ]


def test_renaming_to_a_name_in_use_answers_409(client, admin_headers, vip, refund):
    response = client.patch(
        f"/api/v1/labels/{vip.id}", json={"name": "Refund"}, headers=admin_headers
    )
    assert response.status_code == 409
    assert Label.get_by_id(vip.id).name == "VIP"


def test_an_empty_change_answers_400(client, admin_headers, vip):
    response = client.patch(f"/api/v1/labels/{vip.id}", json={}, headers=admin_headers)
    assert response.status_code == 400


def test_deleting_a_label_takes_it_off_every_conversation(
    client, admin_headers, vip, refund, conversation, org
):
    ConversationLabel.create(conversation=conversation, label=vip)
    ConversationLabel.create(conversation=conversation, label=refund)

    response = client.delete(f"/api/v1/labels/{vip.id}", headers=admin_headers)

    assert response.status_code == 204
    shown = client.get(f"/api/v1/conversations/{conversation.id}", headers=admin_headers).json
    assert label_names(shown["conversation"]) == ["refund"]
    events, _ = live.events_since(org.id, 0)
    assert [(e["type"], e["data"]) for e in events] == [("label:deleted", {"label_id": vip.id})]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_another_organizations_label_answers_404(client, admin_headers, foreign_label, method):
    response = client.open(
        f"/api/v1/labels/{foreign_label.id}",
        method=method,
        json={"name": "Mine"},
        headers=admin_headers,
    )
    assert response.status_code == 404
    assert Label.get_by_id(foreign_label.id).name == "Theirs"


def test_every_label_change_is_audited(client, admin_headers, admin):
    created = client.post(
        "/api/v1/labels", json={"name": "VIP", "color": "#ffffff"}, headers=admin_headers
    ).json["label"]
    client.patch(
        f"/api/v1/labels/{created['id']}", json={"color": "#000000"}, headers=admin_headers
    )
    client.delete(f"/api/v1/labels/{created['id']}", headers=admin_headers)

    entries = AuditLog.select().order_by(AuditLog.id)
    assert [(e.action, e.platform, e.detail, e.user_id) for e in entries] == [
        ("label_create", "snorq", f"label {created['id']}", admin.id),
        ("label_update", "snorq", f"label {created['id']}: color", admin.id),
        ("label_delete", "snorq", f"label {created['id']}", admin.id),
    ]


# -- labels on conversations -------------------------------------------------------------


def test_any_staff_member_sets_a_conversations_labels(
    client, api_headers, conversation, vip, refund, user, org
):
    response = put_labels(client, api_headers, conversation, [vip.id, refund.id])

    assert response.status_code == 200
    assert response.json["conversation"]["id"] == conversation.id
    assert label_names(response.json["conversation"]) == ["refund", "VIP"]
    assert response.json["conversation"]["labels"][1] == {
        "id": vip.id,
        "name": "VIP",
        "color": "#c62828",
    }
    entry = AuditLog.get(AuditLog.action == "conversation_labels")
    assert (entry.platform, entry.user_id, entry.organization_id) == ("whatsapp", user.id, org.id)
    assert entry.detail == f"conversation {conversation.id}: labels {sorted([vip.id, refund.id])}"


def test_setting_labels_replaces_them_and_tells_the_other_pages(
    client, api_headers, conversation, vip, refund, org
):
    put_labels(client, api_headers, conversation, [vip.id])
    response = put_labels(client, api_headers, conversation, [refund.id, refund.id])

    assert label_names(response.json["conversation"]) == ["refund"]
    events, _ = live.events_since(org.id, 0)
    assert [(e["type"], e["data"]["conversation_id"]) for e in events] == [
        ("conversation:labels", conversation.id),
        ("conversation:labels", conversation.id),
    ]
    assert events[-1]["data"]["labels"] == [{"id": refund.id, "name": "refund", "color": "#2f5fd0"}]
    put_labels(client, api_headers, conversation, [])
    assert ConversationLabel.select().count() == 0


@pytest.mark.parametrize("ids", ["1", None, [True], ["1"], [1.5]])
def test_label_ids_that_are_not_a_list_of_ids_answer_400(client, api_headers, conversation, ids):
    response = put_labels(client, api_headers, conversation, ids)
    assert response.status_code == 400
    assert "label_ids" in response.json["error"] or "label" in response.json["error"]


def test_an_unknown_or_another_organizations_label_answers_400_and_changes_nothing(
    client, api_headers, conversation, vip, foreign_label
):
    put_labels(client, api_headers, conversation, [vip.id])
    response = put_labels(client, api_headers, conversation, [vip.id, foreign_label.id, 98765])

    assert response.status_code == 400
    assert response.json["error"] == (
        f"The organization has no label with id {foreign_label.id}, 98765."
    )
    assert [row.label_id for row in ConversationLabel.select()] == [vip.id]


def test_labels_on_another_organizations_conversation_answer_404(
    client, api_headers, other_org, vip
):
    foreign = make_conversation(make_connection(other_org, "whatsapp", "999"), "Stranger")
    response = put_labels(client, api_headers, foreign, [vip.id])
    assert response.status_code == 404
    assert ConversationLabel.select().count() == 0


# -- the list ----------------------------------------------------------------------------


def test_the_list_filters_by_label_and_pages_through_it(
    client, api_headers, connections, vip, refund
):
    tagged = [
        make_conversation(connections["whatsapp"], f"Tagged {n}", minutes_ago=n) for n in range(3)
    ]
    make_conversation(connections["facebook"], "Untagged")
    for conversation in tagged:
        ConversationLabel.create(conversation=conversation, label=vip)
    ConversationLabel.create(conversation=tagged[0], label=refund)

    first = client.get(f"/api/v1/conversations?label={vip.id}&limit=2", headers=api_headers).json
    rest = client.get(
        f"/api/v1/conversations?label={vip.id}&cursor={first['next_cursor']}", headers=api_headers
    ).json
    pages = first["conversations"] + rest["conversations"]
    assert [c["id"] for c in pages] == [c.id for c in tagged]
    assert label_names(pages[0]) == ["refund", "VIP"]
    assert rest["next_cursor"] is None
    only_refund = client.get(f"/api/v1/conversations?label={refund.id}", headers=api_headers).json
    assert [c["id"] for c in only_refund["conversations"]] == [tagged[0].id]


def test_the_list_filtered_by_another_organizations_label_is_empty(
    client, api_headers, conversation, other_org, foreign_label
):
    foreign = make_conversation(make_connection(other_org, "whatsapp", "999"), "Stranger")
    ConversationLabel.create(conversation=foreign, label=foreign_label)
    listed = client.get(f"/api/v1/conversations?label={foreign_label.id}", headers=api_headers)
    assert listed.json["conversations"] == []


def test_a_label_filter_that_is_not_an_id_answers_400(client, api_headers):
    response = client.get("/api/v1/conversations?label=vip", headers=api_headers)
    assert response.status_code == 400


def test_the_list_fetches_a_whole_pages_labels_in_one_query(
    client, api_headers, connections, vip, refund
):
    for n in range(6):
        conversation = make_conversation(connections["whatsapp"], f"Customer {n}", minutes_ago=n)
        ConversationLabel.create(conversation=conversation, label=vip if n % 2 else refund)

    def queries(limit: int) -> int:
        statements = []
        original = database.obj.execute_sql

        def counted(sql, params=None):
            statements.append(sql)
            return original(sql, params)

        database.obj.execute_sql = counted
        try:
            response = client.get(f"/api/v1/conversations?limit={limit}", headers=api_headers)
        finally:
            del database.obj.execute_sql
        assert all(c["labels"] for c in response.json["conversations"])
        return sum('"label"' in sql for sql in statements)

    assert queries(1) == queries(6) == 1
