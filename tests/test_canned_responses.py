"""Canned responses: the team's saved answers, by shortcut; any staff member keeps them."""

import pytest

from app.models import AuditLog, CannedResponse

PATH = "/api/v1/canned-responses"
HELLO = {"shortcut": "hello", "content": "Hi! Thanks for writing to Acme — how can we help?"}


@pytest.fixture
def hello(org):
    return CannedResponse.create(organization=org, **HELLO)


@pytest.fixture
def foreign(other_org):
    return CannedResponse.create(organization=other_org, shortcut="theirs", content="Not yours")


def test_a_staff_member_adds_a_canned_response_and_the_team_lists_it(client, api_headers):
    response = client.post(PATH, json=HELLO, headers=api_headers)

    assert response.status_code == 201
    created = response.json["canned_response"]
    assert {key: created[key] for key in HELLO} == HELLO
    assert client.get(PATH, headers=api_headers).json == {"canned_responses": [created]}


def test_canned_responses_are_listed_by_shortcut_and_only_the_organizations(
    client, api_headers, org, foreign
):
    for shortcut in ("thanks", "address", "hours"):
        CannedResponse.create(organization=org, shortcut=shortcut, content=shortcut)
    listed = client.get(PATH, headers=api_headers).json["canned_responses"]
    assert [c["shortcut"] for c in listed] == ["address", "hours", "thanks"]


@pytest.mark.parametrize(
    "body",
    [
        {"shortcut": "Hello", "content": "x"},
        {"shortcut": "-hello", "content": "x"},
        {"shortcut": "hel lo", "content": "x"},
        {"shortcut": "a" * 33, "content": "x"},
        {"shortcut": "", "content": "x"},
        {"shortcut": "hello", "content": ""},
        {"shortcut": "hello", "content": "x" * 5_001},
        {"shortcut": "hello"},
        "hello",
    ],
)
def test_a_bad_shortcut_or_content_answers_400_with_a_sentence(client, api_headers, body):
    response = client.post(PATH, json=body, headers=api_headers)
    assert response.status_code == 400
    assert response.json["error"].endswith(".")
    assert CannedResponse.select().count() == 0


def test_a_shortcut_in_use_answers_409(client, api_headers, hello):
    response = client.post(PATH, json={"shortcut": "hello", "content": "x"}, headers=api_headers)
    assert response.status_code == 409
    assert response.json["error"] == "The shortcut /hello is taken already."


def test_another_organization_may_use_the_same_shortcut(client, api_headers, foreign):
    response = client.post(PATH, json={"shortcut": "theirs", "content": "x"}, headers=api_headers)
    assert response.status_code == 201


def test_a_canned_response_is_changed(client, api_headers, hello, org):
    CannedResponse.create(organization=org, shortcut="bye", content="Bye!")
    changed = client.patch(
        f"{PATH}/{hello.id}", json={"shortcut": "hi", "content": "Hey!"}, headers=api_headers
    )
    assert changed.status_code == 200
    assert changed.json["canned_response"] == {"id": hello.id, "shortcut": "hi", "content": "Hey!"}
    taken = client.patch(f"{PATH}/{hello.id}", json={"shortcut": "bye"}, headers=api_headers)
    assert taken.status_code == 409
    assert client.patch(f"{PATH}/{hello.id}", json={}, headers=api_headers).status_code == 400
    assert CannedResponse.get_by_id(hello.id).shortcut == "hi"


def test_a_canned_response_is_deleted(client, api_headers, hello):
    assert client.delete(f"{PATH}/{hello.id}", headers=api_headers).status_code == 204
    assert CannedResponse.select().count() == 0


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_another_organizations_canned_response_answers_404(client, api_headers, foreign, method):
    response = client.open(
        f"{PATH}/{foreign.id}", method=method, json={"content": "Mine now"}, headers=api_headers
    )
    assert response.status_code == 404
    assert CannedResponse.get_by_id(foreign.id).content == "Not yours"


def test_every_change_is_audited_without_the_content(client, api_headers, user):
    created = client.post(PATH, json=HELLO, headers=api_headers).json["canned_response"]
    client.patch(f"{PATH}/{created['id']}", json={"content": "Hey!"}, headers=api_headers)
    client.delete(f"{PATH}/{created['id']}", headers=api_headers)

    entries = AuditLog.select().order_by(AuditLog.id)
    assert [(e.action, e.platform, e.detail, e.user_id) for e in entries] == [
        ("canned_response_create", "snorq", f"canned response {created['id']}", user.id),
        ("canned_response_update", "snorq", f"canned response {created['id']}: content", user.id),
        ("canned_response_delete", "snorq", f"canned response {created['id']}", user.id),
    ]


def test_canned_responses_need_credentials(client):
    assert client.get(PATH).status_code == 401
    assert client.post(PATH, json=HELLO).status_code == 401
