"""The Graph API routes: which node an id names, and which platform answers for it.

One URL space serves WhatsApp and Messenger, as on graph.facebook.com: a
phone-number id is a WhatsApp node, a Page id (or ``me`` with a Page token) a
Messenger one. Any ``vNN.N`` version is accepted; the base URL is configurable.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Callable

from flask import Blueprint, Flask, current_app, g, jsonify, request

from app.simulator import current, messenger, meta_login, whatsapp
from app.simulator.accounts import Account
from app.simulator.errors import graph_error, missing_parameter, unknown_object
from app.simulator.faults import answer
from app.simulator.incoming import bearer_token, graph_params, mark
from app.simulator.meta import authorize, selected

bp = Blueprint("graph", __name__, url_prefix="/graph/<version>")

_VERSION = re.compile(r"v\d+\.\d+")
#: The most calls one batch request may hold.
MAX_BATCH = 50


@bp.url_value_preprocessor
def _check_version(endpoint, values):
    g.graph_version = values.pop("version", "")
    if not _VERSION.fullmatch(g.graph_version):
        raise graph_error(400, 2500, "Unknown path components: the API version is not valid")


@bp.post("")
@bp.post("/")
def batch():
    """A batch request: several Graph calls in one POST, each answered as its own request.

    https://developers.facebook.com/docs/graph-api/batch-requests
    """
    params = graph_params()
    token = bearer_token(params)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with_headers = str(params.get("include_headers", "true")).lower() != "false"
    return jsonify([_batched(call, headers, with_headers) for call in _batch_calls(params)])


def _batch_calls(params: dict) -> list[dict]:
    calls = params.get("batch")
    if isinstance(calls, str):
        try:
            calls = json.loads(calls)
        except ValueError:
            calls = None
    if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
        raise missing_parameter("batch", whatsapp=False)
    if len(calls) > MAX_BATCH:
        raise graph_error(400, 100, f"(#100) Too many requests in batch; the most is {MAX_BATCH}")
    return calls


def _batched(call: dict, headers: dict, with_headers: bool) -> dict:
    """One call of a batch, made as a request of its own: ``{code, body, headers?}``."""
    relative_url = str(call.get("relative_url", "")).lstrip("/")
    body = call.get("body")
    # A context of its own, as a separate request has: the batch keeps its own ``g``.
    response = contextvars.Context().run(
        current_app.test_client().open,
        f"/graph/{g.graph_version}/{relative_url}",
        method=str(call.get("method", "GET")).upper(),
        data=body,
        content_type="application/x-www-form-urlencoded" if body else None,
        headers=headers,
        base_url=request.url_root,
    )
    result = {"code": response.status_code, "body": response.get_data(as_text=True)}
    if with_headers:
        result["headers"] = [{"name": "Content-Type", "value": response.content_type}]
    return result


@bp.route("/oauth/access_token", methods=["GET", "POST"])
def access_token():
    """The token endpoint; Graph takes its parameters in the query or a POST body."""
    return meta_login.exchange(current(), graph_params())


@bp.get("/debug_token")
def debug_token():
    return meta_login.debug_token(current(), graph_params())


@bp.get("/<node>")
def read(node: str):
    """A node by id: media, a phone number, a Page, a WhatsApp Business Account, a PSID."""
    sim, params = current(), graph_params()
    if node == "me":
        return meta_login.me(sim, params)
    media = sim.media.get("whatsapp", node)
    if media is not None:
        return whatsapp.media_info(sim, media, params)
    number = sim.registry.account("whatsapp", node)
    if number is not None:
        return _lookup("whatsapp", node, lambda: whatsapp.phone_number(number), params)
    page = sim.registry.account("facebook", node)
    if page is not None:
        return _lookup("facebook", node, lambda: {"name": page.name, "id": node}, params)
    if sim.registry.whatsapp_business_account(node):
        return _lookup("whatsapp", None, lambda: _waba(node), params)
    if not node.isdigit():
        raise unknown_object(node)
    return messenger.profile(sim, node, params)


def _lookup(platform: str, account_id: str | None, build: Callable[[], dict], params: dict):
    sim = current()
    mark(platform, "lookup", account_id)

    def handle():
        authorize(sim.registry, bearer_token(params), platform, account_id)
        return jsonify(selected(build(), params.get("fields")))

    return answer(sim.faults.take(platform, "lookup", account_id), handle)


def _waba(waba_id: str) -> dict:
    return {"id": waba_id, "name": "Simulated business", "currency": "USD", "timezone_id": "1"}


@bp.get("/<node>/<edge>")
def read_edge(node: str, edge: str):
    sim, params = current(), graph_params()
    if edge == "accounts":
        return meta_login.pages(sim, params)
    numbers = sim.registry.whatsapp_business_account(node)
    if edge == "phone_numbers" and numbers:
        mark("whatsapp", "lookup")
        token = authorize(sim.registry, bearer_token(params), "whatsapp")
        data = [
            selected(whatsapp.phone_number(n), params.get("fields"))
            for n in numbers
            if n.account_id in token.account_ids
        ]
        return jsonify({"data": data, "paging": {"cursors": {"before": "MA==", "after": "MA=="}}})
    raise unknown_object(node)


@bp.post("/<node>/<edge>")
def write_edge(node: str, edge: str):
    """Sends, uploads, webhook subscriptions and number registration."""
    sim, params = current(), graph_params()
    if node == "me":
        token = authorize(sim.registry, bearer_token(params), "facebook")
        node = next(iter(token.account_ids)) if token.kind == "page" else node
    number = sim.registry.account("whatsapp", node)
    page = sim.registry.account("facebook", node)
    if edge == "messages" and number is not None:
        return whatsapp.post_message(sim, number, params)
    if edge == "messages" and page is not None:
        return messenger.post_message(sim, page, params)
    if edge == "media" and number is not None:
        return whatsapp.upload(sim, number)
    if edge == "message_attachments" and page is not None:
        return messenger.upload_attachment(sim, page, params)
    if edge == "register" and number is not None:
        return _register(number, params)
    if edge == "subscribed_apps":
        return _subscribe(node, params)
    raise unknown_object(node, "post")


def _register(number: Account, params: dict):
    """``POST /{phone-number-id}/register``: the number starts using the Cloud API."""
    sim = current()
    mark("whatsapp", "lookup", number.account_id)
    authorize(sim.registry, bearer_token(params), "whatsapp", number.account_id, method="post")
    if params.get("messaging_product") != "whatsapp":
        raise missing_parameter("messaging_product", whatsapp=True)
    if not str(params.get("pin", "")).isdigit() or len(str(params["pin"])) != 6:
        raise missing_parameter("pin", whatsapp=True)
    return jsonify({"success": True})


def _subscribe(node: str, params: dict):
    """``POST /{page-id|waba-id}/subscribed_apps``: webhooks start flowing for the account."""
    sim = current()
    page = sim.registry.account("facebook", node)
    if page is not None:
        mark("facebook", "lookup", node)
        authorize(sim.registry, bearer_token(params), "facebook", node, method="post")
        if not params.get("subscribed_fields"):
            raise missing_parameter("subscribed_fields", whatsapp=False)
        accounts = [page]
    else:
        mark("whatsapp", "lookup")
        token = authorize(sim.registry, bearer_token(params), "whatsapp", method="post")
        numbers = sim.registry.whatsapp_business_account(node)
        accounts = [n for n in numbers if n.account_id in token.account_ids]
        if not accounts:
            raise unknown_object(node, "post")
    for account in accounts:
        sim.registry.add_account(account.platform, account.account_id, subscribed=True)
    return jsonify({"success": True})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    whatsapp.init_app(app)
    messenger.init_app(app)
