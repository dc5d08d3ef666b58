"""Connecting accounts: authorize URLs, the signed state, the callback, each code exchange."""

import datetime
import json
import time
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import responses
from itsdangerous import TimestampSigner

from app import live, oauth_state
from app.auth import hash_password
from app.config import get_settings
from app.db import utcnow
from app.models import (
    AuditLog,
    ConnectAttempt,
    ConnectionStatus,
    ConnectStatus,
    PlatformConnection,
    User,
)
from app.platforms import get_platform
from tests.fixtures import make_connection
from tests.platform_fakes import graph_error
from workers.broker import broker
from workers.tokens import connect_account, connect_gave_up

GRAPH = "https://graph.facebook.test/v25.0"
TIKTOK = "https://business-api.tiktok.test/open_api/v1.3"
CALLBACK = "http://snorq.test/api/v1/platforms/callback"
CODE = "AQD-one-time-code"
SECRETS = ("fb-app-secret", "wa-app-secret", "tt-client-secret", CODE)


@pytest.fixture
def fake():
    """The platforms' HTTP APIs; a request to anything not registered fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sign_in(client, user) -> None:
    with client.session_transaction() as session:
        session["user_id"] = user.id


def start(client, platform: str) -> str:
    """Begin connecting ``platform`` as the signed-in user; the state SNORQ signed."""
    response = client.get(f"/api/v1/platforms/connect/{platform}")
    assert response.status_code == 302
    return dict(parse_qsl(urlsplit(response.location).query))["state"]


def attempt_for(user, platform: str) -> ConnectAttempt:
    return ConnectAttempt.create(
        organization=user.organization_id, user=user, platform=platform, nonce=f"n-{platform}"
    )


def form(call) -> dict:
    return dict(parse_qsl(call.request.body))


def assert_no_secret_in_urls(fake, *tokens: str) -> None:
    for call in fake.calls:
        for secret in (*SECRETS, *tokens):
            assert secret not in call.request.url


def connection_events(org) -> list[dict]:
    events, _ = live.events_since(org.id, 0)
    return [e["data"]["connection"] for e in events if e["type"] == "connection:status"]


# -- authorize URLs -------------------------------------------------------------

FACEBOOK_DIALOG = "https://www.facebook.com/v25.0/dialog/oauth"


@pytest.mark.parametrize(
    ("platform", "endpoint", "params"),
    [
        (
            "facebook",
            FACEBOOK_DIALOG,
            {
                "client_id": "fb-app-id",
                "scope": "pages_show_list,pages_messaging,pages_manage_metadata",
            },
        ),
        (
            "whatsapp",
            FACEBOOK_DIALOG,
            {
                "client_id": "wa-app-id",
                "config_id": "wa-config-id",
                "override_default_response_type": "true",
            },
        ),
        (
            "tiktok",
            "https://www.tiktok.com/v2/auth/authorize/",
            {
                "client_key": "tt-client-key",
                "scope": "user.info.basic,user.info.username,user.info.profile,"
                "message.list.read,message.list.send,message.list.manage",
            },
        ),
    ],
)
def test_each_platform_sends_staff_to_its_own_authorize_page(platform, endpoint, params):
    url = urlsplit(get_platform(platform).authorize_url("the-state"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == endpoint
    assert parse_qs(url.query) == {
        key: [value]
        for key, value in {
            **params,
            "redirect_uri": f"{CALLBACK}/{platform}",
            "response_type": "code",
            "state": "the-state",
        }.items()
    }


def test_connect_redirects_to_the_platform_with_a_state_bound_to_the_user(client, user):
    sign_in(client, user)
    response = client.get("/api/v1/platforms/connect/tiktok")
    assert response.status_code == 302
    assert response.location.startswith("https://www.tiktok.com/v2/auth/authorize/?")
    state = dict(parse_qsl(urlsplit(response.location).query))["state"]
    verified = oauth_state.verify("test-secret-key", state, "tiktok")
    assert (verified.organization_id, verified.user_id) == (user.organization_id, user.id)


def test_connect_asks_a_signed_out_visitor_to_sign_in(client):
    response = client.get("/api/v1/platforms/connect/facebook")
    assert response.status_code == 302
    assert urlsplit(response.location).path == "/login"


def test_connect_says_what_is_missing_when_the_app_is_not_configured(client, user, monkeypatch):
    monkeypatch.setenv("WHATSAPP_CONFIG_ID", "")
    get_settings.cache_clear()
    sign_in(client, user)
    response = client.get("/api/v1/platforms/connect/whatsapp")
    assert response.status_code == 503
    assert "no WhatsApp app credentials" in response.get_data(as_text=True)


def test_connect_answers_404_for_a_platform_snorq_does_not_know(client, user):
    sign_in(client, user)
    assert client.get("/api/v1/platforms/connect/myspace").status_code == 404


# -- the signed state -------------------------------------------------------------


def test_a_state_is_good_for_one_platform_only():
    state = oauth_state.sign("k", organization_id=1, user_id=2, platform="facebook")
    assert oauth_state.verify("k", state, "facebook").user_id == 2
    with pytest.raises(oauth_state.StateError, match="another platform"):
        oauth_state.verify("k", state, "tiktok")


def test_every_state_carries_its_own_nonce():
    first = oauth_state.sign("k", organization_id=1, user_id=2, platform="tiktok")
    second = oauth_state.sign("k", organization_id=1, user_id=2, platform="tiktok")
    assert oauth_state.verify("k", first, "tiktok").nonce != (
        oauth_state.verify("k", second, "tiktok").nonce
    )


# -- the callback -----------------------------------------------------------------


def test_a_valid_callback_queues_the_exchange_without_calling_the_platform(client, user, fake):
    sign_in(client, user)
    state = start(client, "tiktok")
    response = client.get(f"/api/v1/platforms/callback/tiktok?code={CODE}&state={state}")

    attempt = ConnectAttempt.get()
    assert response.status_code == 303
    assert response.location == f"/connections/attempts/{attempt.id}"
    assert (attempt.status, attempt.organization_id, attempt.user_id) == (
        ConnectStatus.CONNECTING,
        user.organization_id,
        user.id,
    )
    queued = broker.client.hgetall(f"{broker.namespace}:maintenance.msgs").values()
    assert [json.loads(m)["args"] for m in queued] == [[attempt.id, CODE]]
    assert len(fake.calls) == 0

    page = client.get(response.location)
    assert "Connecting… SNORQ is finishing the authorization with TikTok" in page.get_data(
        as_text=True
    )
    status = client.get(f"/api/v1/platforms/connect-attempts/{attempt.id}").get_json()
    assert status["attempt"]["status"] == "CONNECTING"


def expired_state(monkeypatch, user) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(
            TimestampSigner,
            "get_timestamp",
            lambda self: int(time.time()) - oauth_state.MAX_AGE - 1,
        )
        return oauth_state.sign(
            "test-secret-key",
            organization_id=user.organization_id,
            user_id=user.id,
            platform="tiktok",
        )


def tampered_state(user) -> str:
    state = oauth_state.sign(
        "test-secret-key", organization_id=user.organization_id, user_id=user.id, platform="tiktok"
    )
    payload, rest = state.split(".", 1)
    return f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{rest}"


def foreign_key_state(user) -> str:
    return oauth_state.sign(
        "not-our-secret", organization_id=user.organization_id, user_id=user.id, platform="tiktok"
    )


@pytest.mark.parametrize(
    ("make_state", "message"),
    [
        (lambda monkeypatch, user: None, "has no state"),
        (lambda monkeypatch, user: tampered_state(user), "not valid"),
        (lambda monkeypatch, user: foreign_key_state(user), "not valid"),
        (expired_state, "This link expired"),
    ],
    ids=["missing", "tampered", "signed-by-someone-else", "expired"],
)
def test_the_callback_refuses_a_bad_state_with_a_clear_page(
    client, user, fake, monkeypatch, make_state, message
):
    sign_in(client, user)
    state = make_state(monkeypatch, user)
    query = {"code": CODE} if state is None else {"code": CODE, "state": state}
    response = client.get("/api/v1/platforms/callback/tiktok", query_string=query)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)
    assert ConnectAttempt.select().count() == 0
    assert len(fake.calls) == 0


def test_the_callback_refuses_a_state_started_by_a_colleague(client, user, org):
    sign_in(client, user)
    state = start(client, "facebook")
    colleague = User.create(organization=org, email="b@acme.test", password_hash=hash_password("x"))
    sign_in(client, colleague)
    response = client.get(f"/api/v1/platforms/callback/facebook?code={CODE}&state={state}")
    assert response.status_code == 403
    assert "Another staff member started this connection" in response.get_data(as_text=True)
    assert ConnectAttempt.select().count() == 0


def test_the_callback_refuses_a_state_from_another_organization(client, user, other_org):
    sign_in(client, user)
    state = start(client, "facebook")
    outsider = User.create(
        organization=other_org, email="eve@globex.test", password_hash=hash_password("x")
    )
    sign_in(client, outsider)
    response = client.get(f"/api/v1/platforms/callback/facebook?code={CODE}&state={state}")
    assert response.status_code == 403
    assert ConnectAttempt.select().count() == 0


def test_a_callback_link_connects_once(client, user):
    sign_in(client, user)
    state = start(client, "tiktok")
    url = f"/api/v1/platforms/callback/tiktok?code={CODE}&state={state}"
    assert client.get(url).status_code == 303
    again = client.get(url)
    assert again.status_code == 409
    assert "already used" in again.get_data(as_text=True)
    assert ConnectAttempt.select().count() == 1


def test_the_callback_shows_what_the_platform_said_when_staff_declined(client, user):
    sign_in(client, user)
    state = start(client, "facebook")
    response = client.get(
        "/api/v1/platforms/callback/facebook",
        query_string={
            "error": "access_denied",
            "error_code": "200",
            "error_description": "Permissions error <b>",
            "error_reason": "user_denied",
            "state": state,
        },
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Messenger did not grant access: Permissions error &lt;b&gt;" in text
    assert ConnectAttempt.select().count() == 0


def test_another_organizations_attempt_is_not_found(client, user, other_org):
    outsider = User.create(
        organization=other_org, email="eve@globex.test", password_hash=hash_password("x")
    )
    attempt = attempt_for(outsider, "tiktok")
    sign_in(client, user)
    assert client.get(f"/connections/attempts/{attempt.id}").status_code == 404
    assert client.get(f"/api/v1/platforms/connect-attempts/{attempt.id}").status_code == 404


# -- Facebook: user token → long-lived token → every Page, subscribed -------------

FACEBOOK_PAGES = [
    {"id": "1001", "name": "Acme Shoes", "access_token": "page-token-1001", "tasks": ["MESSAGING"]},
    {
        "id": "1002",
        "name": "Acme Outlet",
        "access_token": "page-token-1002",
        "tasks": ["MESSAGING"],
    },
    {
        "id": "1003",
        "name": "Acme Café ☕",
        "access_token": "page-token-1003",
        "tasks": ["MESSAGING"],
    },
    {"id": "1004", "name": "Acme Kids", "access_token": "page-token-1004", "tasks": ["MESSAGING"]},
]


def fake_facebook(fake, pages=FACEBOOK_PAGES, per_page: int = 2) -> None:
    """Graph's code exchange, long-lived exchange, paginated ``/me/accounts``, subscriptions."""

    def token(request):
        fields = dict(parse_qsl(request.body))
        if fields.get("grant_type") == "fb_exchange_token":
            body = {
                "access_token": "fb-long-user-token",
                "token_type": "bearer",
                "expires_in": 5183944,
            }
        else:
            body = {
                "access_token": "fb-short-user-token",
                "token_type": "bearer",
                "expires_in": 3600,
            }
        return 200, {}, json.dumps(body)

    def accounts(request):
        after = int(parse_qs(urlsplit(request.url).query).get("after", ["0"])[0])
        chunk = pages[after : after + per_page]
        paging = {"cursors": {"before": f"{after}", "after": f"{after + per_page}"}}
        if after + per_page < len(pages):
            # Graph's own next link repeats the token; SNORQ must not follow it as is.
            paging["next"] = f"{GRAPH}/me/accounts?access_token=fb-long-user-token&after=x"
        return 200, {}, json.dumps({"data": chunk, "paging": paging})

    fake.add_callback(responses.POST, f"{GRAPH}/oauth/access_token", callback=token)
    fake.add_callback(responses.GET, f"{GRAPH}/me/accounts", callback=accounts)
    for page in pages:
        fake.post(f"{GRAPH}/{page['id']}/subscribed_apps", json={"success": True})


def test_facebook_connects_every_page_across_all_result_pages(user, org, fake):
    fake_facebook(fake)
    attempt = attempt_for(user, "facebook")
    connect_account(attempt.id, CODE)

    code, long_lived, *listing = [c for c in fake.calls if "subscribed_apps" not in c.request.url]
    assert (code.request.method, code.request.url) == ("POST", f"{GRAPH}/oauth/access_token")
    assert form(code) == {
        "client_id": "fb-app-id",
        "client_secret": "fb-app-secret",
        "redirect_uri": f"{CALLBACK}/facebook",
        "code": CODE,
    }
    assert form(long_lived) == {
        "client_id": "fb-app-id",
        "client_secret": "fb-app-secret",
        "grant_type": "fb_exchange_token",
        "fb_exchange_token": "fb-short-user-token",
    }
    assert [c.request.method for c in listing] == ["GET", "GET"]
    assert [parse_qs(urlsplit(c.request.url).query) for c in listing] == [
        {"fields": ["id,name,access_token"], "limit": ["100"]},
        {"fields": ["id,name,access_token"], "limit": ["100"], "after": ["2"]},
    ]
    assert {c.request.headers["Authorization"] for c in listing} == {"Bearer fb-long-user-token"}

    subscriptions = [c for c in fake.calls if "subscribed_apps" in c.request.url]
    assert [(c.request.method, c.request.url) for c in subscriptions] == [
        ("POST", f"{GRAPH}/{page['id']}/subscribed_apps") for page in FACEBOOK_PAGES
    ]
    for call, page in zip(subscriptions, FACEBOOK_PAGES, strict=True):
        assert call.request.headers["Authorization"] == f"Bearer {page['access_token']}"
        assert form(call) == {
            "subscribed_fields": "messages,message_echoes,message_deliveries,"
            "message_reads,messaging_postbacks,message_reactions"
        }
    assert_no_secret_in_urls(fake, "fb-short-user-token", "fb-long-user-token")

    connections = list(PlatformConnection.select().order_by(PlatformConnection.account_id))
    assert [(c.account_id, c.name, c.access_token()) for c in connections] == [
        (p["id"], p["name"], p["access_token"]) for p in FACEBOOK_PAGES
    ]
    assert {(c.organization_id, c.token_expires_at, c.refresh_token()) for c in connections} == {
        (org.id, None, None)
    }
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.CONNECTED
    assert [a["account_id"] for a in attempt.accounts] == ["1001", "1002", "1003", "1004"]
    assert [e["account_id"] for e in connection_events(org)] == ["1001", "1002", "1003", "1004"]
    entries = AuditLog.select().where(AuditLog.action == "token_exchange", AuditLog.ok)
    assert sorted(e.connection_id for e in entries) == sorted(c.id for c in connections)


def test_facebook_with_no_page_granted_fails_with_a_reason(user, fake):
    fake_facebook(fake, pages=[])
    attempt = attempt_for(user, "facebook")
    connect_account(attempt.id, CODE)
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.FAILED
    assert "Messenger granted access to no account" in attempt.reason


def test_a_page_connected_by_another_organization_is_not_taken_over(user, org, other_org, fake):
    theirs = make_connection(other_org, "facebook", "1002")
    fake_facebook(fake)
    attempt = attempt_for(user, "facebook")
    connect_account(attempt.id, CODE)

    theirs = PlatformConnection.get_by_id(theirs.id)
    assert (theirs.organization_id, theirs.access_token()) == (
        other_org.id,
        "facebook-access-token",
    )
    ours = PlatformConnection.select().where(PlatformConnection.organization == org)
    assert sorted(c.account_id for c in ours) == ["1001", "1003", "1004"]
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.CONNECTED
    taken = next(a for a in attempt.accounts if a["account_id"] == "1002")
    assert taken["connection_id"] is None
    assert "another organization" in taken["error"]
    assert AuditLog.get(AuditLog.ok == False).detail.startswith("account 1002")  # noqa: E712


def test_a_refused_code_fails_the_attempt_with_metas_reason(user, fake):
    fake.post(
        f"{GRAPH}/oauth/access_token",
        status=400,
        json={
            "error": {
                "message": "This authorization code has been used.",
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 36009,
                "fbtrace_id": "A1b2C3",
            }
        },
    )
    attempt = attempt_for(user, "facebook")
    connect_account(attempt.id, CODE)
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.FAILED
    assert attempt.reason == "Messenger error 100: This authorization code has been used."
    assert PlatformConnection.select().count() == 0


# -- WhatsApp: business linking, the phone numbers it grants ----------------------

WABA = "102290129340398"
NUMBERS = [
    {"id": "106540352242922", "display_phone_number": "+1 555-078-3881", "verified_name": "Acme"},
    {"id": "106540352242923", "display_phone_number": "+1 555-078-3882", "verified_name": "Acme"},
]


def fake_whatsapp(fake) -> None:
    debug = {
        "data": {
            "app_id": "wa-app-id",
            "type": "SYSTEM_USER",
            "application": "SNORQ",
            "expires_at": 0,
            "is_valid": True,
            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
            "granular_scopes": [
                {"scope": "whatsapp_business_management", "target_ids": [WABA]},
                {"scope": "whatsapp_business_messaging", "target_ids": [WABA]},
            ],
            "user_id": "9000",
        }
    }
    fake.post(
        f"{GRAPH}/oauth/access_token",
        json={"access_token": "wa-business-token", "token_type": "bearer"},
    )
    fake.post(GRAPH, json=[{"code": 200, "body": json.dumps(debug)}])
    fake.post(f"{GRAPH}/{WABA}/subscribed_apps", json={"success": True})
    fake.get(
        f"{GRAPH}/{WABA}/phone_numbers",
        json={"data": NUMBERS, "paging": {"cursors": {"before": "a", "after": "b"}}},
    )


def test_whatsapp_connects_each_phone_number_the_business_shared(user, org, fake):
    fake_whatsapp(fake)
    attempt = attempt_for(user, "whatsapp")
    connect_account(attempt.id, CODE)

    code, batch, subscribe, numbers = fake.calls
    assert (code.request.method, code.request.url) == ("POST", f"{GRAPH}/oauth/access_token")
    assert form(code) == {
        "client_id": "wa-app-id",
        "client_secret": "wa-app-secret",
        "redirect_uri": f"{CALLBACK}/whatsapp",
        "code": CODE,
    }
    assert (batch.request.method, batch.request.url) == ("POST", GRAPH)
    assert batch.request.headers["Authorization"] == "Bearer wa-app-id|wa-app-secret"
    assert json.loads(form(batch)["batch"]) == [
        {"method": "GET", "relative_url": "debug_token?input_token=wa-business-token"}
    ]
    assert form(batch)["include_headers"] == "false"
    assert (subscribe.request.method, subscribe.request.url) == (
        "POST",
        f"{GRAPH}/{WABA}/subscribed_apps",
    )
    assert subscribe.request.headers["Authorization"] == "Bearer wa-business-token"
    assert numbers.request.method == "GET"
    assert parse_qs(urlsplit(numbers.request.url).query) == {
        "fields": ["id,display_phone_number,verified_name"]
    }
    assert numbers.request.headers["Authorization"] == "Bearer wa-business-token"
    assert_no_secret_in_urls(fake, "wa-business-token")

    connections = list(PlatformConnection.select().order_by(PlatformConnection.account_id))
    assert [(c.account_id, c.name, c.access_token()) for c in connections] == [
        ("106540352242922", "Acme · +1 555-078-3881", "wa-business-token"),
        ("106540352242923", "Acme · +1 555-078-3882", "wa-business-token"),
    ]
    assert all(c.token_expires_at is None for c in connections)
    assert ConnectAttempt.get_by_id(attempt.id).status == ConnectStatus.CONNECTED


# -- TikTok: the Business Messaging token endpoint --------------------------------


def tiktok_token_answer(access: str = "tt-access-1", refresh: str = "tt-refresh-1") -> dict:
    return {
        "code": 0,
        "message": "OK",
        "request_id": "202611250000000000001",
        "data": {
            "open_id": "7312345678901",
            "scope": "user.info.basic,message.list.read,message.list.send,message.list.manage",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "refresh_token_expires_in": 31536000,
        },
    }


def fake_tiktok(fake) -> None:
    fake.post(f"{TIKTOK}/tt_user/oauth2/token/", json=tiktok_token_answer())
    fake.get(
        f"{TIKTOK}/business/get/",
        json={
            "code": 0,
            "message": "OK",
            "request_id": "202611250000000000002",
            "data": {"username": "acme.shoes", "display_name": "Acme Shoes 👟"},
        },
    )


def test_tiktok_stores_both_tokens_with_both_expiries(user, org, fake):
    fake_tiktok(fake)
    attempt = attempt_for(user, "tiktok")
    before = utcnow()
    connect_account(attempt.id, CODE)

    token, profile = fake.calls
    assert (token.request.method, token.request.url) == (
        "POST",
        f"{TIKTOK}/tt_user/oauth2/token/",
    )
    assert token.request.headers["Content-Type"] == "application/json"
    assert json.loads(token.request.body) == {
        "client_id": "tt-client-key",
        "client_secret": "tt-client-secret",
        "grant_type": "authorization_code",
        "auth_code": CODE,
        "redirect_uri": f"{CALLBACK}/tiktok",
    }
    assert profile.request.method == "GET"
    assert profile.request.headers["Access-Token"] == "tt-access-1"
    assert parse_qs(urlsplit(profile.request.url).query) == {
        "business_id": ["7312345678901"],
        "fields": ['["username", "display_name"]'],
    }
    assert_no_secret_in_urls(fake, "tt-access-1", "tt-refresh-1")

    connection = PlatformConnection.get()
    assert (connection.account_id, connection.name) == ("7312345678901", "Acme Shoes 👟")
    assert (connection.access_token(), connection.refresh_token()) == (
        "tt-access-1",
        "tt-refresh-1",
    )
    day, year = datetime.timedelta(days=1), datetime.timedelta(days=365)
    assert before + day <= connection.token_expires_at <= utcnow() + day
    assert before + year <= connection.refresh_expires_at <= utcnow() + year
    assert ConnectAttempt.get_by_id(attempt.id).status == ConnectStatus.CONNECTED


def test_tiktok_refusing_the_code_in_an_http_200_fails_the_attempt(user, fake):
    fake.post(
        f"{TIKTOK}/tt_user/oauth2/token/",
        json={"code": 40131, "message": "Authorization code is expired.", "request_id": "r1"},
    )
    attempt = attempt_for(user, "tiktok")
    connect_account(attempt.id, CODE)
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.FAILED
    assert attempt.reason == "TikTok error 40131: Authorization code is expired."
    assert PlatformConnection.select().count() == 0
    entry = AuditLog.get()
    assert (entry.action, entry.ok, entry.user_id) == ("token_exchange", False, attempt.user_id)


def test_reconnecting_an_account_that_needs_a_person_makes_it_active_again(user, org, fake):
    stale = make_connection(
        org,
        "tiktok",
        "7312345678901",
        refresh_token="old-refresh",
        status=ConnectionStatus.NEEDS_REAUTH,
        status_reason="The account owner removed SNORQ's access; reconnect it.",
    )
    fake_tiktok(fake)
    connect_account(attempt_for(user, "tiktok").id, CODE)

    connection = PlatformConnection.get_by_id(stale.id)
    assert (connection.status, connection.status_reason) == (ConnectionStatus.ACTIVE, "")
    assert (connection.access_token(), connection.refresh_token()) == (
        "tt-access-1",
        "tt-refresh-1",
    )
    assert PlatformConnection.select().count() == 1
    assert connection_events(org)[-1]["status"] == "ACTIVE"


def test_running_an_exchange_again_changes_nothing(user, fake):
    fake_tiktok(fake)
    attempt = attempt_for(user, "tiktok")
    connect_account(attempt.id, CODE)
    calls = len(fake.calls)
    connect_account(attempt.id, CODE)
    assert len(fake.calls) == calls


def test_an_attempt_whose_retries_ran_out_fails_with_a_reason(user):
    attempt = attempt_for(user, "tiktok")
    connect_gave_up({"args": [attempt.id, CODE]}, {"retries": 3, "max_retries": 3})
    attempt = ConnectAttempt.get_by_id(attempt.id)
    assert attempt.status == ConnectStatus.FAILED
    assert attempt.reason == "Connecting TikTok did not finish; connect again later."


# -- the whole flow, through the worker ------------------------------------------


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_attempt_page_follows_the_worker_to_connected(client, user, fake, worker):
    fake_tiktok(fake)
    sign_in(client, user)
    state = start(client, "tiktok")
    page = client.get(f"/api/v1/platforms/callback/tiktok?code={CODE}&state={state}")
    worker.drain()

    attempt = client.get(f"/api/v1/platforms/connect-attempts/{ConnectAttempt.get().id}")
    data = attempt.get_json()["attempt"]
    assert data["status"] == "CONNECTED"
    assert data["accounts"] == [
        {
            "account_id": "7312345678901",
            "name": "Acme Shoes 👟",
            "connection_id": PlatformConnection.get().id,
        }
    ]
    assert "Connected." in client.get(page.location).get_data(as_text=True)


def test_a_platform_that_is_briefly_down_is_tried_again(user, fake, worker):
    fake.post(f"{TIKTOK}/tt_user/oauth2/token/", status=503, body="upstream unavailable")
    fake.post(f"{TIKTOK}/tt_user/oauth2/token/", json=tiktok_token_answer())
    fake.get(f"{TIKTOK}/business/get/", json={"code": 0, "message": "OK", "data": {}})
    attempt = attempt_for(user, "tiktok")
    connect_account.send(attempt.id, CODE)

    wait_for(lambda: ConnectAttempt.get_by_id(attempt.id).status != ConnectStatus.CONNECTING)
    assert ConnectAttempt.get_by_id(attempt.id).status == ConnectStatus.CONNECTED
    assert [c.response.status_code for c in fake.calls][:2] == [503, 200]
    details = [e.detail for e in AuditLog.select().order_by(AuditLog.id)]
    assert details == ["will retry: PLATFORM_UNAVAILABLE (2007)", "account 7312345678901"]


def test_a_throttled_token_endpoint_is_tried_again_after_its_retry_after(user, fake, worker):
    throttled = graph_error(4, "(#4) Application request limit reached")
    fake.post(
        f"{GRAPH}/oauth/access_token", status=400, headers={"Retry-After": "1"}, json=throttled
    )
    fake_facebook(fake, pages=FACEBOOK_PAGES[:1])
    attempt = attempt_for(user, "facebook")
    connect_account.send(attempt.id, CODE)

    wait_for(lambda: ConnectAttempt.get_by_id(attempt.id).status != ConnectStatus.CONNECTING)
    assert ConnectAttempt.get_by_id(attempt.id).status == ConnectStatus.CONNECTED
    details = [e.detail for e in AuditLog.select().order_by(AuditLog.id)]
    assert details[0] == "will retry: RATE_LIMITED (2002, platform code 4)"
