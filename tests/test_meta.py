"""Graph API answers, the same on every Meta call: sends, token endpoints, media, pages."""

import pytest
import responses

from app.platforms import get_platform
from app.platforms.base import Account, MediaSource, Outbound, Recipient
from app.platforms.errors import (
    AuthError,
    ErrorCode,
    PermanentError,
    PlatformError,
    TemporaryError,
)
from tests.platform_fakes import CUSTOMERS, GRAPH, SEND_URLS, graph_error

WHATSAPP = Account("106540352242922", "whatsapp-access-token")
PAGE = Account("1234567890", "facebook-access-token")

#: One Graph call of each kind: its HTTP method, URL, and how an adapter makes it.
CALLS = {
    "whatsapp send": (
        "POST",
        SEND_URLS["whatsapp"],
        lambda: get_platform("whatsapp").send(
            WHATSAPP, Recipient("US.1", "16505551234"), Outbound(7, text="Hi")
        ),
    ),
    "messenger send": (
        "POST",
        SEND_URLS["facebook"],
        lambda: get_platform("facebook").send(
            PAGE, Recipient(CUSTOMERS["facebook"]["external_id"]), Outbound(7, text="Hi")
        ),
    ),
    "token endpoint": (
        "POST",
        f"{GRAPH}/oauth/access_token",
        lambda: get_platform("facebook").exchange_code("AQD-code"),
    ),
    "media lookup": (
        "GET",
        f"{GRAPH}/1234567890123",
        lambda: get_platform("whatsapp").media_url(
            WHATSAPP, MediaSource("image", media_id="1234567890123")
        ),
    ),
}

#: Meta's codes for every Graph call (developers.facebook.com/docs/graph-api/guides/
#: error-handling): what SNORQ makes of each, on every platform and every call.
GRAPH_CODES = [
    (0, AuthError, ErrorCode.TOKEN_EXPIRED),
    (102, AuthError, ErrorCode.TOKEN_EXPIRED),
    (190, AuthError, ErrorCode.TOKEN_EXPIRED),
    (1, TemporaryError, ErrorCode.PLATFORM_UNAVAILABLE),
    (2, TemporaryError, ErrorCode.PLATFORM_UNAVAILABLE),
    (4, TemporaryError, ErrorCode.RATE_LIMITED),
    (17, TemporaryError, ErrorCode.RATE_LIMITED),
    (32, TemporaryError, ErrorCode.RATE_LIMITED),
    (613, TemporaryError, ErrorCode.RATE_LIMITED),
    (3, AuthError, ErrorCode.PERMISSION_DENIED),
    (10, AuthError, ErrorCode.PERMISSION_DENIED),
    (200, AuthError, ErrorCode.PERMISSION_DENIED),
    (299, AuthError, ErrorCode.PERMISSION_DENIED),
    (368, PermanentError, ErrorCode.REJECTED),
    (100, PermanentError, ErrorCode.REJECTED),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("code", "kind", "snorq_code"), GRAPH_CODES)
@responses.activate
def test_a_graph_code_means_the_same_on_every_call(call, code, kind, snorq_code):
    method, url, make_call = CALLS[call]
    responses.add(method, url, status=400, json=graph_error(code, "Graph said no"))

    with pytest.raises(PlatformError) as raised:
        make_call()

    assert type(raised.value) is kind
    assert (raised.value.code, raised.value.platform_code) == (snorq_code, code)
    assert raised.value.message.endswith(f"error {code}: Graph said no")


@pytest.mark.parametrize("call", CALLS)
@responses.activate
def test_a_bare_429_is_throttled_and_keeps_metas_retry_after(call):
    method, url, make_call = CALLS[call]
    responses.add(method, url, status=429, headers={"Retry-After": "30"}, body="")

    with pytest.raises(TemporaryError) as raised:
        make_call()

    assert (raised.value.code, raised.value.retry_after) == (ErrorCode.RATE_LIMITED, 30.0)


@pytest.mark.parametrize("call", CALLS)
@responses.activate
def test_a_5xx_without_a_code_is_unavailable(call):
    method, url, make_call = CALLS[call]
    responses.add(method, url, status=502, body="<html>Bad Gateway</html>")

    with pytest.raises(TemporaryError) as raised:
        make_call()

    assert raised.value.code == ErrorCode.PLATFORM_UNAVAILABLE
    assert not raised.value.maybe_delivered


@pytest.mark.parametrize(
    ("call", "maybe_delivered"),
    [
        ("whatsapp send", True),
        ("messenger send", True),
        ("token endpoint", False),
        ("media lookup", False),
    ],
)
@responses.activate
def test_a_2xx_answer_that_is_not_json_may_mean_a_message_went_only_on_a_send(
    call, maybe_delivered
):
    method, url, make_call = CALLS[call]
    responses.add(method, url, body="<html>OK</html>")

    with pytest.raises(TemporaryError) as raised:
        make_call()

    assert raised.value.maybe_delivered is maybe_delivered


@responses.activate
def test_a_page_list_that_is_not_json_is_tried_again_not_taken_for_no_pages():
    responses.post(f"{GRAPH}/oauth/access_token", json={"access_token": "user-token"})
    responses.get(f"{GRAPH}/me/accounts", body="<html>Sorry, something went wrong.</html>")

    with pytest.raises(TemporaryError) as raised:
        get_platform("facebook").exchange_code("AQD-code")

    assert raised.value.code == ErrorCode.PLATFORM_UNAVAILABLE


@pytest.mark.parametrize(
    ("platform", "code", "subcode", "snorq_code"),
    [
        ("facebook", 10, 2018278, ErrorCode.OUTSIDE_WINDOW),
        ("facebook", 10, None, ErrorCode.PERMISSION_DENIED),
        ("facebook", 80006, None, ErrorCode.RATE_LIMITED),
        ("whatsapp", 80006, None, ErrorCode.REJECTED),
        ("whatsapp", 131047, None, ErrorCode.OUTSIDE_WINDOW),
        ("facebook", 131047, None, ErrorCode.REJECTED),
    ],
)
def test_a_platforms_own_codes_apply_to_it_alone_and_before_graphs(
    platform, code, subcode, snorq_code
):
    error = get_platform(platform).classify(code, "…", subcode=subcode, http_status=400)

    assert error.code == snorq_code
