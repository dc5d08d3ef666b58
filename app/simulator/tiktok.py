"""TikTok for Business Messaging, simulated: sends, tokens, media, participants, webhooks.

Calls carry ``Access-Token`` (not Bearer) and JSON bodies; errors are HTTP 200
with a non-zero ``code`` (HTTP 429 when throttled). An accepted send comes back
as an ``im_send_msg`` echo, then ``im_mark_read_msg`` once the customer read it.
../shared/PLATFORMS.md, section 4B.
"""

from __future__ import annotations

import functools
import hmac
import time

from flask import Blueprint, Flask, Response, abort, jsonify, request, url_for

from app.simulator import Simulator, current
from app.simulator.accounts import Account, Token
from app.simulator.errors import (
    ApiError,
    TikTokCode,
    tiktok_body,
    tiktok_error,
    tiktok_throttled,
)
from app.simulator.faults import answer
from app.simulator.ids import parse_conversation_id, tiktok_message_id
from app.simulator.incoming import json_body, mark
from app.simulator.media import SAMPLE_PICTURE_ID
from app.simulator.webhooks import tiktok as webhooks

MAX_TEXT = 6000
MAX_IMAGE_BYTES = 3 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg")
#: Business access tokens last about a day; refresh tokens a year.
ACCESS_LIFETIME = 86_400
REFRESH_LIFETIME = 365 * 86_400
SCOPES = "user.info.basic,message.list.read,message.list.send,message.list.manage"

bp = Blueprint("tiktok", __name__, url_prefix="/tiktok")


def _invalid(message: str) -> ApiError:
    return tiktok_error(TikTokCode.INVALID_PARAMETER, message)


def _require(body: dict | None, *names: str) -> dict:
    if body is None:
        raise _invalid("The request body must be a JSON object.")
    for name in names:
        if not body.get(name):
            raise _invalid(f"{name}: Missing data for required field.")
    return body


def _authorized(sim: Simulator, business_id: str) -> Token:
    """The ``Access-Token`` of the request, if it opens ``business_id``."""
    token = sim.registry.token(request.headers.get("Access-Token"))
    if token is None or token.platform != "tiktok" or token.expired(time.time()):
        raise tiktok_error(
            TikTokCode.INVALID_ACCESS_TOKEN, "Access token is incorrect or has been revoked."
        )
    if business_id not in token.account_ids:
        raise tiktok_error(
            TikTokCode.NO_PERMISSION, f"No permission to operate business_id {business_id}."
        )
    return token


def _guarded(endpoint: str, business_id: str | None, handle) -> Response:
    sim = current()
    mark("tiktok", endpoint, business_id)
    return answer(sim.faults.take("tiktok", endpoint, business_id), lambda: handle(sim))


# -- messages ---------------------------------------------------------------------


@bp.post("/open_api/<version>/business/message/send/")
def send(version: str):
    body = json_body()
    business_id = str((body or {}).get("business_id", "")) or None
    return _guarded("send", business_id, lambda sim: _send(sim, body))


def _send(sim: Simulator, body: dict | None) -> Response:
    body = _require(body, "business_id", "recipient_type", "recipient", "message_type")
    business_id = str(body["business_id"])
    _authorized(sim, business_id)
    if body["recipient_type"] != "CONVERSATION":
        raise _invalid("recipient_type: Must be one of CONVERSATION.")
    conversation = parse_conversation_id(str(body["recipient"]))
    if conversation is None or conversation[0] != business_id:
        raise tiktok_error(TikTokCode.NOT_FOUND, "recipient: The conversation does not exist.")
    content = _checked_content(sim, business_id, body)
    if not sim.throughput.admit("tiktok", (business_id, "send"), time.time()):
        raise tiktok_throttled()
    account = sim.registry.add_account("tiktok", business_id)
    who = sim.customers.get("tiktok", conversation[1])
    message_id, sent_at = tiktok_message_id(), time.time()
    echo = functools.partial(
        webhooks.sent_payload, account, who, str(body["recipient"]), message_id, content, sent_at
    )
    read = functools.partial(webhooks.read_payload, account, who, str(body["recipient"]))
    sim.acknowledge(
        "tiktok", [(f"im_send_msg {message_id}", echo), (f"im_mark_read_msg {message_id}", read)]
    )
    return jsonify(tiktok_body(0, "OK", {"message": {"message_id": message_id}}))


def _checked_content(sim: Simulator, business_id: str, body: dict) -> dict:
    """The message's content as the echo carries it, once it is what TikTok accepts."""
    kind = body["message_type"]
    if kind == "TEXT":
        text = body.get("text")
        text_body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(text_body, str) or not text_body.strip():
            raise _invalid("text.body: Missing data for required field.")
        if len(text_body) > MAX_TEXT:
            raise _invalid(f"text.body: Longer than maximum length {MAX_TEXT}.")
        content: dict = {"type": "text", "text": {"body": text_body}}
    elif kind == "IMAGE":
        image = body.get("image")
        media_id = str(image.get("media_id", "")) if isinstance(image, dict) else ""
        media = sim.media.get("tiktok", media_id)
        if media is None or media.account_id not in (None, business_id):
            raise tiktok_error(TikTokCode.NOT_FOUND, "image.media_id: The media does not exist.")
        content = {"type": "image", "image": {"media_id": media_id}}
    else:
        raise _invalid("message_type: Must be one of TEXT, IMAGE.")
    reference = body.get("referenced_message_info")
    if isinstance(reference, dict) and reference.get("referenced_message_id"):
        content["referenced_message_info"] = {
            "referenced_message_id": reference["referenced_message_id"]
        }
    return content


# -- tokens -----------------------------------------------------------------------


@bp.post("/open_api/<version>/tt_user/oauth2/token/")
def token(version: str):
    body = json_body()
    return _guarded("token", None, lambda sim: _exchange(sim, body))


def _exchange(sim: Simulator, body: dict | None) -> Response:
    body = _require(body, "client_id", "client_secret", "grant_type", "auth_code")
    _check_app(sim, body)
    if body["grant_type"] != "authorization_code":
        raise _invalid("grant_type: Must be authorization_code.")
    code = sim.registry.redeem_code(str(body["auth_code"]), time.time())
    if code is None or code.platform != "tiktok":
        raise tiktok_error(TikTokCode.AUTH_CODE_EXPIRED, "Authorization code is expired.")
    if code.redirect_uri != body.get("redirect_uri", code.redirect_uri):
        raise tiktok_error(TikTokCode.INVALID_AUTH_CODE, "redirect_uri does not match.")
    return _tokens(sim, sim.registry.owned("tiktok")[0])


@bp.post("/open_api/<version>/tt_user/oauth2/refresh_token/")
def refresh_token(version: str):
    body = json_body()
    return _guarded("token", None, lambda sim: _refresh(sim, body))


def _refresh(sim: Simulator, body: dict | None) -> Response:
    body = _require(body, "client_id", "client_secret", "grant_type", "refresh_token")
    _check_app(sim, body)
    if body["grant_type"] != "refresh_token":
        raise _invalid("grant_type: Must be refresh_token.")
    grant = sim.registry.redeem_refresh(str(body["refresh_token"]), time.time())
    if grant is None:
        raise tiktok_error(
            TikTokCode.INVALID_REFRESH_TOKEN, "Refresh token is invalid or has expired."
        )
    business_id = next(iter(grant.account_ids))
    return _tokens(sim, sim.registry.add_account("tiktok", business_id))


def _check_app(sim: Simulator, body: dict) -> None:
    app = sim.config.app("tiktok")
    same_id = hmac.compare_digest(str(body["client_id"]), app.app_id)
    if not (same_id and hmac.compare_digest(str(body["client_secret"]), app.app_secret)):
        raise tiktok_error(TikTokCode.INVALID_APP, "Invalid app_id or secret.")


def _tokens(sim: Simulator, account: Account) -> Response:
    mark("tiktok", "token", account.account_id)
    data = {
        "open_id": account.account_id,
        "scope": SCOPES,
        "access_token": sim.registry.issue(
            "tiktok", "business", {account.account_id}, ACCESS_LIFETIME
        ),
        "refresh_token": sim.registry.issue_refresh("tiktok", account.account_id, REFRESH_LIFETIME),
        "expires_in": ACCESS_LIFETIME,
        "refresh_token_expires_in": REFRESH_LIFETIME,
    }
    return jsonify(tiktok_body(0, "OK", data))


# -- media and account details ----------------------------------------------------------


@bp.post("/open_api/<version>/business/message/media/upload/")
def upload(version: str):
    business_id = request.form.get("business_id") or None
    return _guarded("media", business_id, _upload)


def _upload(sim: Simulator) -> Response:
    form = _require(request.form.to_dict(), "business_id", "media_type")
    _authorized(sim, form["business_id"])
    if form["media_type"] != "IMAGE":
        raise _invalid("media_type: Must be one of IMAGE.")
    file = request.files.get("file")
    if file is None:
        raise _invalid("file: Missing data for required field.")
    data = file.read()
    if file.mimetype not in IMAGE_TYPES or len(data) > MAX_IMAGE_BYTES:
        raise tiktok_error(TikTokCode.UNSUPPORTED_FILE, "The file format is not supported.")
    media = sim.media.add("tiktok", data, file.mimetype, form["business_id"], file.filename)
    return jsonify(tiktok_body(0, "OK", {"media_id": media.media_id}))


@bp.post("/open_api/<version>/business/message/media/download/")
def download_url(version: str):
    body = json_body()
    business_id = str((body or {}).get("business_id", "")) or None
    return _guarded("media", business_id, lambda sim: _download_url(sim, body))


def _download_url(sim: Simulator, body: dict | None) -> Response:
    body = _require(body, "business_id", "conversation_id", "message_id", "media_id", "media_type")
    _authorized(sim, str(body["business_id"]))
    media = sim.media.get("tiktok", str(body["media_id"]))
    if media is None or media.account_id not in (None, str(body["business_id"])):
        raise tiktok_error(TikTokCode.NOT_FOUND, "media_id: The media does not exist.")
    query = sim.media.sign("tiktok", media.media_id)
    url = url_for("tiktok.media", media_id=media.media_id, _external=True, **query)
    return jsonify(tiktok_body(0, "OK", {"download_url": url}))


@bp.get("/media/<media_id>")
def media(media_id: str):
    """A file behind a download URL: signed and expiring."""
    mark("tiktok", "media")
    found = current().media.check(
        "tiktok", media_id, request.args.get("ext", ""), request.args.get("hash", "")
    )
    if found is None:
        abort(404)
    return Response(found.data, mimetype=found.mime_type)


@bp.get("/open_api/<version>/business/message/content/list/")
def content_list(version: str):
    business_id = request.args.get("business_id") or None
    return _guarded("lookup", business_id, lambda sim: _content_list(sim, business_id))


def _content_list(sim: Simulator, business_id: str | None) -> Response:
    """A conversation's participants (the simulator keeps no history: no messages)."""
    if not business_id:
        raise _invalid("business_id: Missing data for required field.")
    _authorized(sim, business_id)
    conversation = parse_conversation_id(request.args.get("conversation_id", ""))
    if conversation is None or conversation[0] != business_id:
        raise tiktok_error(
            TikTokCode.NOT_FOUND, "conversation_id: The conversation does not exist."
        )
    account = sim.registry.add_account("tiktok", business_id)
    who = sim.customers.get("tiktok", conversation[1])
    picture = sim.media.sign("tiktok", SAMPLE_PICTURE_ID)
    participants = [
        {"role": "BUSINESS_ACCOUNT", "id": business_id, "display_name": account.name},
        {
            "role": "PERSONAL_ACCOUNT",
            "id": who.external_id,
            "display_name": who.name,
            "profile_image": url_for(
                "tiktok.media", media_id=SAMPLE_PICTURE_ID, _external=True, **picture
            ),
            "is_follower": False,
        },
    ]
    return jsonify(tiktok_body(0, "OK", {"participants": participants, "messages": []}))


@bp.get("/open_api/<version>/business/get/")
def business(version: str):
    business_id = request.args.get("business_id") or None
    return _guarded("lookup", business_id, lambda sim: _business(sim, business_id))


def _business(sim: Simulator, business_id: str | None) -> Response:
    if not business_id:
        raise _invalid("business_id: Missing data for required field.")
    _authorized(sim, business_id)
    account = sim.registry.add_account("tiktok", business_id)
    data = {
        "username": webhooks.username(account),
        "display_name": account.name,
        "profile_image": "",
    }
    return jsonify(tiktok_body(0, "OK", data))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
