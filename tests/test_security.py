"""Security checks that sweep across SNORQ instead of following one feature.

Each feature's own tests prove its part (test_api: credentials, scope and CSRF of
the JSON API; test_inbox_pages: sign-in, page scripts and headers; test_live_socket:
the websocket's scope; test_oauth: the state's signature, expiry, owner and single
use; test_tokens and test_crypto: tokens encrypted at rest; test_webhooks_web and
test_hostile_input: signatures and hostile requests; tests/log_scan.py: no secret
in the test process's logs). These add what holds for all of them at once:

- every comparison of a secret in the source is constant-time;
- every route in the app's URL map refuses another organization's objects (404),
  shows nothing of it, and refuses a session change without the CSRF token — a
  route added later is swept too, or fails the sweep until it is classified;
- a webhook signature cannot be replayed onto another body or another time, and
  no request to a webhook endpoint makes the web fail;
- an OAuth state, however tampered with, is refused;
- text from platforms and customers reaches staff escaped, or as JSON data only;
- a database read without the key yields no token, and the fault tests' process
  logs are searched for every secret of their deployment.
"""

from __future__ import annotations

import ast
import datetime
import io
import json
import re
import string
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import live, oauth_state
from app.auth import create_api_token, hash_password
from app.config import get_settings
from app.models import (
    Attachment,
    AttachmentStatus,
    CannedResponse,
    ConnectAttempt,
    Contact,
    Conversation,
    Direction,
    Label,
    Message,
    MessageStatus,
    Note,
    PlatformConnection,
    Role,
    User,
    WebhookEvent,
)
from app.storage import get_storage
from tests.fixtures import make_connection
from tests.payloads import payload
from tests.support import meta_body, meta_headers, tiktok_body, tiktok_headers

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CSRF = "the-csrf-token"
PLATFORMS = ("whatsapp", "facebook", "tiktok")


# -- constant-time comparisons --------------------------------------------------------

#: Names that hold a secret, or something derived from one.
SECRET_NAME = re.compile(r"secret|signature|digest|token|csrf|nonce|hmac|password", re.I)
#: SNORQ's own source; the simulator and the migrations stand outside it.
SOURCES = sorted(
    path
    for pattern in ("app/**/*.py", "workers/*.py", "scheduler/*.py")
    for path in ROOT.glob(pattern)
    if not {"simulator", "migrations"} & set(path.relative_to(ROOT).parts)
)


def _names(node: ast.AST):
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id
        elif isinstance(child, ast.Attribute):
            yield child.attr


def _class_attribute(node: ast.AST) -> bool:
    """``Model.field`` or ``Enum.MEMBER``: a SQL expression or a constant, not a value."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id[:1].isupper()
    )


def _secret_comparisons(path: Path) -> list[str]:
    """``==`` and ``!=`` in ``path`` between two values, one of them named like a secret."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) or _class_attribute(o) for o in operands):
            continue
        if any(SECRET_NAME.search(name) for o in operands for name in _names(o)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def _calls(function: ast.FunctionDef) -> set[str]:
    return {
        name
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        for name in _names(call.func)
    }


def test_no_secret_is_compared_with_equality_anywhere_in_snorq():
    assert SOURCES
    found = [line for path in SOURCES for line in _secret_comparisons(path)]
    assert not found, "compare these with app.platforms.base.same_secret:\n" + "\n".join(found)


def test_the_shared_comparison_is_hmac_compare_digest():
    tree = ast.parse((ROOT / "app" / "platforms" / "base.py").read_text())
    [same_secret] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "same_secret"
    ]
    assert "compare_digest" in _calls(same_secret)


def test_every_webhook_check_of_every_platform_compares_in_constant_time():
    checks = {}
    for path in (ROOT / "app" / "platforms").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in (
                "verify_signature",
                "verify_subscription",
            ):
                checks[f"{path.stem}.{node.name}"] = _calls(node)
    concrete = {name: calls for name, calls in checks.items() if not name.startswith("base.")}
    assert {"meta.verify_signature", "meta.verify_subscription", "tiktok.verify_signature"} <= set(
        concrete
    )
    for name, calls in concrete.items():
        assert calls & {"same_secret", "compare_digest"}, f"{name} compares without same_secret"


# -- every route, another organization's objects -----------------------------------------

#: Routes no organization owns, and where their scope is proven instead.
PUBLIC = {
    "webhooks.subscribe": "platforms; the verify token (test_webhooks_web)",
    "webhooks.receive": "platforms; the signature (test_webhooks_web, this module)",
    "oauth.connect": "starts the caller's own connection (test_oauth)",
    "oauth.callback": "the state names organization and staff member (test_oauth)",
    "live_socket.live_events": "the websocket (test_live_socket: its organization only)",
    "health.healthz": "no data",
    "health.readyz": "no data",
    "metrics.scrape": "counts without ids or text; SNORQ_METRICS_TOKEN (test_metrics)",
    "inbox.login": "signing in",
    "inbox.logout": "signing out",
    "admin.replay_job": "dead-lettered jobs belong to no organization: operators only "
    "(test_admin_page)",
    "static": "files of the app itself",
}
#: Values for URL variables that are not ids.
NAMES = {"name": "whatsapp"}


def _world(org, user: User, tag: str) -> dict:
    """One of everything an organization owns, each marked with ``tag``; ids by URL variable."""
    connection = make_connection(org, "whatsapp", f"9{org.id:05d}")
    PlatformConnection.update(name=f"{tag} page").where(
        PlatformConnection.id == connection.id
    ).execute()
    avatar_key = f"avatars/{org.id}/{tag}.png"
    contact = Contact.create(
        organization=org,
        platform="whatsapp",
        external_id=f"{tag}-customer",
        display_name=f"{tag} customer",
        avatar_key=avatar_key,
    )
    conversation = Conversation.create(
        organization=org,
        connection=connection,
        contact=contact,
        last_message_preview=f"{tag} says hello",
        last_message_at=datetime.datetime(2026, 1, 1),
        last_inbound_at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
    )
    inbound = Message.create(
        organization=org,
        connection=connection,
        conversation=conversation,
        direction=Direction.INBOUND,
        content=f"{tag} says hello",
        status=MessageStatus.RECEIVED,
        external_id=f"wamid.{tag}",
    )
    failed = Message.create(
        organization=org,
        connection=connection,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        content=f"{tag} reply",
        status=MessageStatus.FAILED,
    )
    attachment_key = f"attachments/{org.id}/{tag}"
    attachment = Attachment.create(
        organization=org,
        message=inbound,
        kind="image",
        mime_type="image/png",
        status=AttachmentStatus.AVAILABLE,
        storage_key=attachment_key,
        sha256=tag,
        size=len(tag),
    )
    for key in (avatar_key, attachment_key):
        get_storage().put(key, io.BytesIO(tag.encode()), "image/png")
    attempt = ConnectAttempt.create(
        organization=org, user=user, platform="tiktok", nonce=f"{tag}-nonce", reason=f"{tag} why"
    )
    live.publish(org.id, "conversation:read", {"conversation_id": conversation.id, "tag": tag})
    stuck = _stuck_webhook(connection.account_id, tag)
    label = Label.create(organization=org, name=f"{tag} label", color="#336699")
    canned = CannedResponse.create(organization=org, shortcut=tag.lower(), content=f"{tag} canned")
    Note.create(organization=org, conversation=conversation, author=user, content=f"{tag} note")
    return {
        "event_id": stuck.id,
        "conversation_id": conversation.id,
        "message_id": failed.id,
        "attachment_id": attachment.id,
        "contact_id": contact.id,
        "attempt_id": attempt.id,
        "label_id": label.id,
        "canned_id": canned.id,
    }


def _stuck_webhook(account_id: str, tag: str) -> WebhookEvent:
    """A webhook for the account that every attempt failed to process (the admin page's)."""
    body = payload("whatsapp", "text")
    value = body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = account_id
    value["messages"][0]["id"] = f"wamid.{tag}-stuck"
    return WebhookEvent.create(
        delivery_id=f"{tag}-delivery",
        platform="whatsapp",
        body=meta_body(body),
        received_at=datetime.datetime(2026, 1, 1),
    )


@pytest.fixture
def worlds(org, other_org, user):
    # An admin, so the sweep covers the admin page too.
    User.update(role=Role.ADMIN).where(User.id == user.id).execute()
    outsider = User.create(
        organization=other_org, email="eve@globex.test", password_hash=hash_password("pw")
    )
    return {"ours": _world(org, user, "Acmeworld"), "theirs": _world(other_org, outsider, "Globex")}


def _routes(app):
    """``(rule, method)`` of every route the sweep covers; the others must be PUBLIC."""
    swept = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            swept.append((rule, method))
    return swept


def _path(rule, ids: dict) -> str:
    unknown = set(rule.arguments) - set(ids) - set(NAMES)
    assert not unknown, f"the sweep does not know {unknown} of {rule.rule}: add it to _world"
    return rule.build({**NAMES, **ids}, append_unknown=False)[1]


def _as(client, user: User, method: str, path: str, *, bearer: str | None = None):
    """A request as ``user``: by session (with the CSRF token) or by API token."""
    if bearer:
        headers = {"Authorization": f"Bearer {bearer}"}
    else:
        with client.session_transaction() as session:
            session["user_id"], session["csrf"] = user.id, CSRF
        headers = {"X-CSRF-Token": CSRF}
    body = {"json": {"content": "Hello"}} if method == "POST" else {}
    return client.open(path, method=method, headers=headers, **body)


def _credentials(path: str, user: User) -> list[str | None]:
    """The session always; the API token too on the JSON API."""
    return [None, create_api_token(user)] if path.startswith("/api/") else [None]


def test_every_route_with_an_id_answers_404_for_another_organizations_object(
    app, client, user, worlds
):
    routes = [(rule, method) for rule, method in _routes(app) if rule.arguments]
    assert routes
    for rule, method in routes:
        credentials = _credentials(rule.rule, user)
        for bearer in credentials:
            theirs = _as(client, user, method, _path(rule, worlds["theirs"]), bearer=bearer)
            assert theirs.status_code == 404, f"{method} {rule.rule}: {theirs.status_code}"
            assert b"Globex" not in theirs.data, f"{method} {rule.rule} shows their data"
        # A DELETE of our own object removes it, so it is found once.
        for bearer in credentials[:1] if method == "DELETE" else credentials:
            ours = _as(client, user, method, _path(rule, worlds["ours"]), bearer=bearer)
            assert ours.status_code != 404, f"{method} {rule.rule}: own object not found"


#: What a listing must be asked; search looks for the other organization by name.
LISTING_QUERIES = {"api.list_events": "?since=0", "search.search_organization": "?q=Globex"}


def test_every_listing_and_page_shows_nothing_of_another_organization(app, client, user, worlds):
    routes = [(rule, m) for rule, m in _routes(app) if not rule.arguments and m == "GET"]
    assert routes
    for rule, method in routes:
        path = rule.rule + LISTING_QUERIES.get(rule.endpoint, "")
        for bearer in _credentials(path, user):
            response = _as(client, user, method, path, bearer=bearer)
            assert response.status_code < 400, f"{method} {path}: {response.status_code}"
            assert b"Globex" not in response.data, f"{method} {path} shows their data"
    shown = _as(client, user, "GET", "/api/v1/conversations").data
    assert b"Acmeworld customer" in shown


def test_every_session_change_without_the_csrf_token_is_refused(app, client, user, worlds):
    changes = [(rule, method) for rule, method in _routes(app) if method != "GET"]
    assert changes
    with client.session_transaction() as session:
        session["user_id"], session["csrf"] = user.id, CSRF
    for rule, method in changes:
        path = _path(rule, worlds["ours"])
        for token in ({}, {"X-CSRF-Token": "not-the-token"}):
            response = client.open(path, method=method, headers=token, json={"content": "Hi"})
            assert response.status_code == 403, f"{method} {rule.rule}: {response.status_code}"
    assert Message.select().where(Message.content == "Hi").count() == 0


# -- webhook signatures ----------------------------------------------------------------


@FUZZ
@given(
    platform=st.sampled_from(["whatsapp", "facebook"]),
    position=st.integers(min_value=0),
    replacement=st.integers(min_value=1, max_value=255),
)
def test_a_meta_signature_replayed_onto_a_changed_body_is_refused(
    client, platform, position, replacement
):
    event = {"whatsapp": "text", "facebook": "message"}[platform]
    body = meta_body(payload(platform, event))
    headers = meta_headers(platform, body)
    changed = bytearray(body)
    position %= len(changed)
    changed[position] = (changed[position] + replacement) % 256
    response = client.post(f"/api/v1/webhooks/{platform}", data=bytes(changed), headers=headers)
    assert response.status_code == 401


@FUZZ
@given(shift=st.integers(min_value=-250, max_value=250).filter(bool))
def test_a_tiktok_signature_replayed_with_another_time_is_refused(client, shift):
    body = tiktok_body(payload("tiktok", "im_receive_msg"))
    signed_at = int(time.time())
    _, digest = tiktok_headers(body, at=signed_at)["TikTok-Signature"].split(",s=")
    header = f"t={signed_at + shift},s={digest}"
    response = client.post(
        "/api/v1/webhooks/tiktok", data=body, headers={"TikTok-Signature": header}
    )
    assert response.status_code == 401


@FUZZ
@given(age=st.integers(min_value=-(10**6), max_value=10**6))
def test_a_tiktok_signature_is_accepted_only_within_its_tolerance(client, age):
    body = tiktok_body(payload("tiktok", "im_receive_msg"))
    headers = tiktok_headers(body, at=int(time.time()) - age)
    response = client.post("/api/v1/webhooks/tiktok", data=body, headers=headers)
    # One second either side of the limit: the clock moves while the request is made.
    if abs(age) <= 299:
        assert response.status_code == 200
    elif abs(age) >= 301:
        assert response.status_code == 401


@pytest.fixture
def small_client(monkeypatch):
    """The web with a 2 KiB webhook limit."""
    from app import create_app
    from app.config import get_settings

    monkeypatch.setenv("SNORQ_WEBHOOK_MAX_BYTES", "2048")
    get_settings.cache_clear()
    yield create_app().test_client()
    get_settings.cache_clear()


webhook_requests = st.fixed_dictionaries(
    {
        "platform": st.sampled_from(["whatsapp", "facebook", "tiktok", "telegram", "", "..%2f"]),
        "body": st.one_of(st.binary(max_size=4_096), st.just(b"[" * 3_000)),
        "signed": st.booleans(),
        "content_type": st.sampled_from(
            ["application/json", "text/plain", "multipart/form-data; boundary=x", "", "\x00"]
        ),
        "method": st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
        "stream": st.booleans(),
    }
)


def test_a_chunked_body_over_the_limit_is_refused_with_413(small_client):
    body = b'{"object":"page","entry":[' + b" " * 4_096 + b"]}"
    headers = {**meta_headers("facebook", body), "Transfer-Encoding": "chunked"}
    response = small_client.post(
        "/api/v1/webhooks/facebook",
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


@FUZZ
@given(request=webhook_requests)
def test_no_request_to_a_webhook_endpoint_makes_the_web_fail(small_client, request):
    platform, body = request["platform"], request["body"]
    headers = {"Content-Type": request["content_type"]}
    if request["signed"] and platform == "tiktok":
        headers |= tiktok_headers(body)
    elif request["signed"] and platform in ("whatsapp", "facebook"):
        headers |= meta_headers(platform, body)
    sent = {"data": body}
    if request["stream"]:
        # No length: the body is read until it ends, as a chunked upload is.
        headers["Transfer-Encoding"] = "chunked"
        sent = {
            "input_stream": io.BytesIO(body),
            "environ_overrides": {"wsgi.input_terminated": True},
        }
    response = small_client.open(
        f"/api/v1/webhooks/{platform}", method=request["method"], headers=headers, **sent
    )
    assert response.status_code < 500
    if request["method"] == "POST" and platform in PLATFORMS and len(body) > 2048:
        assert response.status_code == 413


# -- OAuth state -----------------------------------------------------------------------


@FUZZ
@given(
    edit=st.sampled_from(["replace", "insert", "delete", "truncate", "append"]),
    position=st.integers(min_value=0),
    character=st.sampled_from(string.ascii_letters + string.digits + "-_.="),
)
def test_an_oauth_state_tampered_with_in_any_way_is_refused(
    client, user, edit, position, character
):
    key = get_settings().secret_key
    state = oauth_state.sign(
        key, organization_id=user.organization_id, user_id=user.id, platform="tiktok"
    )
    at = position % len(state)
    tampered = {
        "replace": state[:at] + character + state[at + 1 :],
        "insert": state[:at] + character + state[at:],
        "delete": state[:at] + state[at + 1 :],
        "truncate": state[:at],
        "append": state + character,
    }[edit]
    if _same_state(key, tampered, state):
        # Only the signature's base64 changed in bits it does not use (or gained padding):
        # the same signed organization, staff member and single-use nonce.
        return
    with client.session_transaction() as session:
        session["user_id"] = user.id
    attempts = ConnectAttempt.select().count()
    response = client.get(
        "/api/v1/platforms/callback/tiktok", query_string={"code": "a-code", "state": tampered}
    )
    assert response.status_code == 400
    assert ConnectAttempt.select().count() == attempts


def _same_state(key: str, tampered: str, state: str) -> bool:
    try:
        return oauth_state.verify(key, tampered, "tiktok") == oauth_state.verify(
            key, state, "tiktok"
        )
    except oauth_state.StateError:
        return False


# -- text from platforms and customers ----------------------------------------------------

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def test_platform_text_on_the_connect_attempt_page_is_escaped(client, user):
    attempt = ConnectAttempt.create(
        organization=user.organization_id,
        user=user,
        platform="facebook",
        nonce="hostile",
        status="FAILED",
        reason=HOSTILE,
        accounts=[{"account_id": "1", "name": HOSTILE, "error": HOSTILE}],
    )
    with client.session_transaction() as session:
        session["user_id"] = user.id
    html = client.get(f"/connections/attempts/{attempt.id}").get_data(as_text=True)
    assert "<script>alert(2)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_customer_text_reaches_staff_only_as_json_data(client, user, worlds):
    Message.update(content=HOSTILE).where(Message.direction == Direction.INBOUND).execute()
    Contact.update(display_name=HOSTILE).execute()
    headers = {"Authorization": f"Bearer {create_api_token(user)}"}
    conversation_id = worlds["ours"]["conversation_id"]
    for path in ("/api/v1/conversations", f"/api/v1/conversations/{conversation_id}/messages"):
        response = client.get(path, headers=headers)
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert HOSTILE in json.dumps(response.get_json(), ensure_ascii=False)


def test_no_template_turns_off_escaping():
    for template in (ROOT / "app" / "web" / "templates").glob("*.html"):
        source = template.read_text()
        assert "|safe" not in source.replace(" ", ""), template.name
        assert "autoescape false" not in source, template.name
    python = "\n".join(path.read_text() for path in SOURCES)
    assert "Markup(" not in python and "autoescape=False" not in python


# -- secrets at rest and in the fault tests' logs -----------------------------------------


def test_a_database_read_without_the_key_yields_no_token(org, monkeypatch):
    connection = make_connection(org, "tiktok", refresh_token="tt-refresh-secret")
    stored = PlatformConnection.get_by_id(connection.id)
    monkeypatch.setenv("SNORQ_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    get_settings.cache_clear()
    for read in (stored.access_token, stored.refresh_token):
        with pytest.raises(InvalidToken):
            read()


def test_the_fault_tests_search_their_process_logs_for_every_secret_of_their_deployment():
    from tests import processes
    from tests.e2e.deployment import SECRET_SETTINGS
    from tests.reliability.platform_load import MARKER
    from tests.reliability.site import REPLY_MARKER, Site

    env = processes.stack_env("postgresql://unused", "redis://unused", ROOT / "instance")
    site = Site(processes.Stack(env, ROOT), "postgresql://unused", "http://unused")
    site.api_token, site.tokens = "snorq_api-token", {"whatsapp": "wa-token"}
    secrets = {name: value for name, value in env.items() if re.search("SECRET|KEY|TOKEN", name)}
    assert set(secrets) - {"TIKTOK_CLIENT_KEY"} <= set(SECRET_SETTINGS)
    forbidden = site.forbidden()
    assert {
        *(secrets[name] for name in SECRET_SETTINGS),
        "snorq_api-token",
        "wa-token",
    } <= forbidden
    assert {site.password, MARKER, REPLY_MARKER} <= forbidden
