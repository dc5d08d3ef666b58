"""The staff pages: sign-in and its throttle, sessions, CSRF, headers, and escaping."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app import live
from app.auth import hash_password
from app.models import User
from app.web import throttle

EMAIL, PASSWORD = "agent@acme.test", "pw"  # the `user` fixture
PAGES = ["/", "/connections"]
STATIC = Path(__file__).parents[1] / "app" / "web" / "static"
SCRIPTS = [
    "snorq.js",
    "live.js",
    "inbox.js",
    "conversation_list.js",
    "thread.js",
    "message_view.js",
    "composer.js",
    "presence.js",
    "connections.js",
    "notes.js",
    "labels.js",
    "search.js",
    "canned.js",
    "manage.js",
]


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, email=EMAIL, password=PASSWORD, **fields):
    """Post the sign-in form the way a browser does: with the token its page carried."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    form = {"email": email, "password": password, "csrf_token": token, **fields}
    return client.post("/login", data=form)


def sign_out(client):
    token = csrf_from(client.get("/").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


class PageScan(HTMLParser):
    """Every script tag and every inline event-handler attribute of a page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers = [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        self.handlers += [name for name in attributes if name.startswith("on")]


# -- signing in and out ------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_pages_send_a_stranger_to_the_sign_in_page(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={page}"


def test_signing_in_leads_on_to_the_page_asked_for(client, user):
    response = sign_in(client, next="/connections")
    assert response.status_code == 302
    assert response.headers["Location"] == "/connections"
    assert signed_in(client)


def test_email_is_matched_whatever_its_case_and_spacing(client, user):
    assert sign_in(client, email="  Agent@ACME.test ").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, user):
    cookie = sign_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_when_served_over_https(monkeypatch, user):
    from app import create_app
    from app.config import get_settings

    monkeypatch.setenv("SNORQ_PUBLIC_URL", "https://inbox.example.test")
    get_settings.cache_clear()
    client = create_app().test_client()
    token = csrf_from(client.get("/login", base_url="https://localhost").get_data(as_text=True))
    response = client.post(
        "/login",
        base_url="https://localhost",
        data={"email": "agent@acme.test", "password": "pw", "csrf_token": token},
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_signing_in_starts_a_fresh_session(client, user):
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        before = session["csrf"]
    sign_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf") != before
        assert session["user_id"] == user.id


@pytest.mark.parametrize(
    ("email", "password"),
    [("agent@acme.test", "wrong"), ("nobody@acme.test", "pw"), ("", "")],
)
def test_a_failed_sign_in_says_the_same_whether_or_not_the_email_exists(
    client, user, email, password
):
    response = sign_in(client, email=email, password=password)
    assert response.status_code == 401
    assert "That email and password do not match an account." in response.get_data(as_text=True)
    assert not signed_in(client)


def test_an_unknown_email_costs_the_same_password_check(client, monkeypatch):
    from app.web import inbox

    checked = []
    monkeypatch.setattr(inbox, "check_password", lambda user, _: checked.append(user) or False)
    sign_in(client, email="nobody@acme.test", password="guess")
    method = checked[0].password_hash.split("$")[0]
    assert len(checked) == 1
    assert method == hash_password("any").split("$")[0]


def test_signing_in_needs_the_forms_csrf_token(client, user):
    client.get("/login")
    response = client.post("/login", data={"email": "agent@acme.test", "password": "pw"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert not signed_in(client)


@pytest.mark.parametrize(
    "target", ["//evil.test/", "https://evil.test/", "/\\evil.test", "javascript:alert(1)"]
)
def test_signing_in_never_leads_to_another_site(client, user, target):
    response = sign_in(client, next=target)
    assert response.headers["Location"] == "/"


def test_signing_out_needs_a_post_with_the_csrf_token(client, user):
    sign_in(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 403
    assert signed_in(client)
    assert sign_out(client).headers["Location"] == "/login"
    assert not signed_in(client)


def test_a_signed_in_visit_to_the_sign_in_page_goes_to_the_inbox(client, user):
    sign_in(client)
    assert client.get("/login").headers["Location"] == "/"


# -- the throttle ------------------------------------------------------------------------


def test_five_failures_lock_the_email_even_for_the_right_password(client, user):
    for _ in range(throttle.EMAIL_LIMIT):
        assert sign_in(client, password="wrong").status_code == 401
    response = sign_in(client)
    assert response.status_code == 429
    assert "Too many sign-in attempts. Try again in 15 minute(s)." in response.get_data(
        as_text=True
    )
    assert not signed_in(client)


def test_an_unknown_email_locks_exactly_like_a_known_one(client, user):
    for email in ("agent@acme.test", "nobody@acme.test"):
        statuses = [sign_in(client, email=email, password="x").status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]


def test_a_locked_email_does_not_lock_the_others(client, user):
    for _ in range(throttle.EMAIL_LIMIT + 1):
        sign_in(client, email="victim@acme.test", password="wrong")
    assert sign_in(client).status_code == 302


def test_many_failures_from_one_address_lock_it_for_every_email(client, user):
    for n in range(throttle.ADDRESS_LIMIT):
        assert sign_in(client, email=f"guess{n}@acme.test", password="x").status_code == 401
    assert sign_in(client).status_code == 429


def test_successful_sign_ins_from_one_office_never_add_up(client, org):
    password_hash = hash_password(PASSWORD)
    for n in range(throttle.ADDRESS_LIMIT + 5):
        User.create(organization=org, email=f"staff{n}@acme.test", password_hash=password_hash)
        assert sign_in(client, email=f"staff{n}@acme.test").status_code == 302
        sign_out(client)


def test_signing_in_clears_the_emails_earlier_failures(client, user):
    for _ in range(throttle.EMAIL_LIMIT - 1):
        sign_in(client, password="wrong")
    assert sign_in(client).status_code == 302
    sign_out(client)
    for _ in range(throttle.EMAIL_LIMIT):
        assert sign_in(client, password="wrong").status_code == 401


def test_the_lock_lasts_one_window():
    assert throttle.attempt("a@acme.test", "10.0.0.1") == 0
    for _ in range(throttle.EMAIL_LIMIT):
        throttle.attempt("a@acme.test", "10.0.0.1")
    wait = throttle.attempt("a@acme.test", "10.0.0.1")
    assert throttle.WINDOW_SECONDS - 5 <= wait <= throttle.WINDOW_SECONDS


# -- what the pages are made of ----------------------------------------------------------


@pytest.mark.parametrize("page", ["/login", *PAGES])
def test_pages_run_only_scripts_from_files_and_no_inline_handlers(client, user, page):
    if page != "/login":
        sign_in(client)
    response = client.get(page)
    scan = PageScan()
    scan.feed(response.get_data(as_text=True))
    assert all(script.get("src", "").startswith("/static/") for script in scan.scripts)
    assert scan.handlers == []


@pytest.mark.parametrize("page", ["/login", *PAGES])
def test_pages_carry_a_strict_content_security_policy(client, user, page):
    if page != "/login":
        sign_in(client)
    headers = client.get(page).headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_page_scripts_never_turn_data_into_markup():
    scripts = {path.name: path.read_text() for path in STATIC.glob("*.js")}
    assert set(SCRIPTS) <= scripts.keys()
    for name, source in scripts.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"
        assert not re.search(r"new Function|setAttribute\(\s*[\"']on", source), name


@pytest.mark.parametrize("name", [*SCRIPTS, "snorq.css", "favicon.svg"])
def test_static_files_are_served(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    response.close()


def test_a_hostile_next_is_escaped_in_the_sign_in_form(client):
    html = client.get('/login?next=/"><script>alert(1)</script>').get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html


def test_a_hostile_staff_email_is_escaped_in_the_page(client, org):
    email = '"<img src=x onerror=alert(1)>"@acme.test'
    User.create(organization=org, email=email, password_hash=hash_password("pw"))
    sign_in(client, email=email)
    html = client.get("/").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_inbox_starts_from_its_own_organizations_latest_event(client, user, other_org):
    for _ in range(3):
        live.publish(other_org.id, "conversation:read", {"conversation_id": 1, "unread_count": 0})
    live.publish(
        user.organization_id, "conversation:read", {"conversation_id": 2, "unread_count": 0}
    )
    sign_in(client)
    for page in PAGES:
        assert 'data-since="1"' in client.get(page).get_data(as_text=True)


def test_the_connections_page_offers_every_platforms_connect_button(client, user):
    sign_in(client)
    html = client.get("/connections").get_data(as_text=True)
    for platform in ("whatsapp", "facebook", "tiktok"):
        assert f'href="/api/v1/platforms/connect/{platform}"' in html
