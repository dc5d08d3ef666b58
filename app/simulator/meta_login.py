"""Facebook Login on the Graph API, simulated: tokens, ``debug_token``, the user's Pages.

A dialog's code becomes a short-lived user token (Messenger: it opens every
Page the user manages) or a business token (WhatsApp Embedded Signup: it opens
the WhatsApp Business Accounts shared). ``fb_exchange_token`` makes a user token
long-lived; ``/me/accounts`` pages through the Pages with their Page tokens.
../shared/PLATFORMS.md, section 3, "Tokens".
"""

from __future__ import annotations

import base64
import hmac
import time
from urllib.parse import urlencode

from flask import Response, jsonify, request

from app.simulator import Simulator
from app.simulator.accounts import Token
from app.simulator.errors import graph_error, invalid_token, missing_parameter
from app.simulator.faults import answer
from app.simulator.incoming import bearer_token, mark
from app.simulator.meta import authorize, selected

#: A user token from a code lasts about an hour; a long-lived one about 60 days.
SHORT_LIVED = 3600
LONG_LIVED = 5_183_944
#: The simulated person who owns the Pages and the WhatsApp Business Accounts.
USER_ID = "10000000000000042"
USER_NAME = "Sam Simulated"
PAGE_TASKS = ["ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE"]
SCOPES = {
    "facebook": ["pages_show_list", "pages_messaging", "pages_manage_metadata"],
    "whatsapp": ["whatsapp_business_management", "whatsapp_business_messaging"],
}


def _app_platform(sim: Simulator, client_id: str | None) -> str | None:
    for platform in ("facebook", "whatsapp"):
        if client_id and client_id == sim.config.app(platform).app_id:
            return platform
    return None


def exchange(sim: Simulator, params: dict) -> Response:
    """``GET /oauth/access_token``: a code, or a user token to make long-lived."""
    platform = _app_platform(sim, params.get("client_id")) or "facebook"
    mark(platform, "token")
    fault = sim.faults.take(platform, "token", None)
    return answer(fault, lambda: _exchange(sim, params))


def _exchange(sim: Simulator, params: dict) -> Response:
    platform = _app_platform(sim, params.get("client_id"))
    if platform is None:
        raise graph_error(400, 101, "Error validating application. Invalid application ID.")
    if not hmac.compare_digest(
        str(params.get("client_secret", "")), sim.config.app(platform).app_secret
    ):
        raise graph_error(400, 1, "Error validating client secret.")
    if params.get("grant_type") == "fb_exchange_token":
        return _long_lived(sim, params)
    if not params.get("code"):
        raise missing_parameter("code", whatsapp=False)
    code = sim.registry.redeem_code(params["code"], time.time())
    if code is None:
        raise graph_error(400, 100, "This authorization code has been used.", subcode=36009)
    if code.client_id != params["client_id"] or code.redirect_uri != params.get(
        "redirect_uri", code.redirect_uri
    ):
        raise graph_error(
            400,
            100,
            "Error validating verification code. Please make sure your redirect_uri is "
            "identical to the one you used in the OAuth dialog request",
            subcode=36008,
        )
    ids = [account.account_id for account in sim.registry.owned(code.platform)]
    if code.platform == "whatsapp":
        value = sim.registry.issue("whatsapp", "system", ids)
        return jsonify({"access_token": value, "token_type": "bearer"})
    value = sim.registry.issue("facebook", "user", ids, SHORT_LIVED)
    return jsonify({"access_token": value, "token_type": "bearer", "expires_in": SHORT_LIVED})


def _long_lived(sim: Simulator, params: dict) -> Response:
    token = authorize(sim.registry, params.get("fb_exchange_token"), "facebook")
    if token.kind != "user":
        raise invalid_token()
    value = sim.registry.issue("facebook", "user", token.account_ids, LONG_LIVED)
    return jsonify({"access_token": value, "token_type": "bearer", "expires_in": LONG_LIVED})


def debug_token(sim: Simulator, params: dict) -> Response:
    """``GET /debug_token?input_token=…``: what a token is and what it may reach."""
    mark("facebook", "lookup")
    caller = bearer_token(params)
    if not _app_token(sim, caller):
        authorize(sim.registry, caller, None)
    value = params.get("input_token")
    if not value:
        raise missing_parameter("input_token", whatsapp=False)
    token = sim.registry.token(value)
    if token is None:
        error = {"code": 190, "message": "Invalid OAuth access token."}
        return jsonify({"data": {"error": error, "is_valid": False, "scopes": []}})
    mark(token.platform, "lookup")
    return jsonify({"data": _token_data(sim, token)})


def _app_token(sim: Simulator, value: str | None) -> bool:
    """Whether ``value`` is an app access token, ``{app-id}|{app-secret}``."""
    app_id, _, secret = (value or "").partition("|")
    platform = _app_platform(sim, app_id)
    return platform is not None and hmac.compare_digest(secret, sim.config.app(platform).app_secret)


def _token_data(sim: Simulator, token: Token) -> dict:
    now = time.time()
    if token.platform == "whatsapp":
        numbers = sim.registry.accounts("whatsapp")
        targets = sorted({a.waba_id for a in numbers if a.account_id in token.account_ids})
    else:
        targets = sorted(token.account_ids)
    scopes = SCOPES[token.platform]
    data = {
        "app_id": sim.config.app(token.platform).app_id,
        "type": {"user": "USER", "page": "PAGE"}.get(token.kind, "SYSTEM_USER"),
        "application": "SNORQ",
        "data_access_expires_at": int(now) + 90 * 86_400,
        "expires_at": 0 if token.expires_at is None else int(token.expires_at),
        "is_valid": not token.expired(now),
        "scopes": scopes,
        "granular_scopes": [{"scope": scope, "target_ids": targets} for scope in scopes],
        "user_id": USER_ID,
    }
    if token.kind == "page":
        data["profile_id"] = next(iter(token.account_ids))
    return data


def me(sim: Simulator, params: dict) -> Response:
    """``GET /me``: the token's user, or its Page."""
    mark("facebook", "lookup")
    token = authorize(sim.registry, bearer_token(params), None)
    if token.kind == "page":
        page = sim.registry.account("facebook", next(iter(token.account_ids)))
        node = {"name": page.name, "id": page.account_id}
    else:
        node = {"name": USER_NAME, "id": USER_ID}
    return jsonify(selected(node, params.get("fields")))


def pages(sim: Simulator, params: dict) -> Response:
    """``GET /me/accounts``: the user's Pages with Page tokens, a page of results at a time."""
    mark("facebook", "lookup")
    fault = sim.faults.take("facebook", "lookup", None)
    return answer(fault, lambda: _pages(sim, params))


def _pages(sim: Simulator, params: dict) -> Response:
    value = bearer_token(params)
    token = authorize(sim.registry, value, "facebook")
    if token.kind != "user":
        raise graph_error(400, 100, "(#100) Tried accessing nonexisting field (accounts)")
    # A Page token from a long-lived user token never expires; from a short-lived one
    # it ends with it (PLATFORMS.md, "Tokens").
    short = token.expires_at is not None and token.expires_at - time.time() < 86_400
    page_expiry = token.expires_at if short else None
    owned = sorted(token.account_ids)
    start = _cursor_position(params.get("after"))
    limit = max(1, min(int(params.get("limit") or 25), 100))
    window = owned[start : start + limit]
    data = []
    for page_id in window:
        page = sim.registry.account("facebook", page_id)
        node = {
            "access_token": sim.registry.page_token(value, page_id, page_expiry),
            "category": "Shopping & retail",
            "category_list": [{"id": "2200", "name": "Shopping & retail"}],
            "name": page.name,
            "id": page_id,
            "tasks": PAGE_TASKS,
        }
        data.append(selected(node, params.get("fields")))
    paging: dict = {
        "cursors": {"before": _cursor(start), "after": _cursor(start + len(window) - 1)}
    }
    if start + limit < len(owned):
        query = {"access_token": value, **request.args}
        query.update(after=paging["cursors"]["after"], limit=str(limit))
        paging["next"] = request.base_url + "?" + urlencode(query)
    return jsonify({"data": data, "paging": paging})


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(max(position, 0)).encode()).decode()


def _cursor_position(after: str | None) -> int:
    """The first position after the cursor (0 without one)."""
    if not after:
        return 0
    try:
        return int(base64.urlsafe_b64decode(after.encode()).decode()) + 1
    except ValueError:
        raise graph_error(400, 100, "(#100) The after cursor is not valid") from None
