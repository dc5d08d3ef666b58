"""The Messenger Platform, simulated: the Send API, sender actions, user profiles, webhooks.

``POST /{page-id|me}/messages`` with a Page token takes a message (text or an
attachment, quick replies, metadata) or a sender action alone. An accepted
message comes back as an echo (``is_echo``, with the send's ``metadata``), then
``delivery`` and ``read`` watermarks. ../shared/PLATFORMS.md, section 3.
"""

from __future__ import annotations

import functools
import time

from flask import Blueprint, Flask, Response, abort, jsonify, request, url_for

from app.simulator import Simulator, current
from app.simulator.accounts import Account
from app.simulator.errors import (
    invalid_parameter,
    messenger_throttled,
    missing_parameter,
    unknown_object,
)
from app.simulator.faults import answer
from app.simulator.ids import messenger_mid
from app.simulator.incoming import bearer_token, mark
from app.simulator.media import SAMPLE_PICTURE_ID, Media
from app.simulator.meta import authorize, selected
from app.simulator.webhooks import messenger as webhooks

MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAGS = (
    "HUMAN_AGENT",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "ACCOUNT_UPDATE",
    "CUSTOMER_FEEDBACK",
)
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen")
QUICK_REPLY_TYPES = ("text", "user_phone_number", "user_email")
ATTACHMENT_TYPES = ("image", "video", "audio", "file", "template")

_invalid = functools.partial(invalid_parameter, whatsapp=False)
_missing = functools.partial(missing_parameter, whatsapp=False)

bp = Blueprint("messenger_media", __name__)


def post_message(sim: Simulator, page: Account, params: dict) -> Response:
    endpoint = "action" if "sender_action" in params else "send"
    mark("facebook", endpoint, page.account_id)
    fault = sim.faults.take("facebook", endpoint, page.account_id)
    return answer(fault, lambda: _message(sim, page, params))


def _message(sim: Simulator, page: Account, params: dict) -> Response:
    authorize(sim.registry, bearer_token(params), "facebook", page.account_id, method="post")
    recipient = params.get("recipient")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not psid:
        raise _missing("recipient")
    action = params.get("sender_action")
    if action is not None:
        if "message" in params:
            raise _invalid("sender_action cannot be sent with a message")
        if action not in SENDER_ACTIONS:
            raise _invalid(f"param sender_action must be one of {SENDER_ACTIONS}")
        _admit(sim, page)
        return jsonify({"recipient_id": psid})
    message = params.get("message")
    if not isinstance(message, dict) or not message:
        raise _missing("message")
    _check_messaging_type(params)
    attachments = _checked_content(sim, page, message)
    _admit(sim, page)
    mid, sent_at = messenger_mid(), time.time()
    echo = {k: v for k, v in message.items() if k in ("text", "metadata")}
    if attachments:
        echo["attachments"] = attachments
    app_id = sim.config.app("facebook").app_id
    sim.acknowledge(
        "facebook",
        [
            (
                f"echo {mid}",
                functools.partial(webhooks.echo_payload, app_id, page, psid, mid, echo, sent_at),
            ),
            (f"delivery {mid}", functools.partial(webhooks.delivery_payload, page, psid, mid)),
            (f"read {mid}", functools.partial(webhooks.read_payload, page, psid)),
        ],
    )
    return jsonify({"recipient_id": psid, "message_id": mid})


def _admit(sim: Simulator, page: Account) -> None:
    if not sim.throughput.admit("facebook", (page.account_id,), time.time()):
        raise messenger_throttled()


def _check_messaging_type(params: dict) -> None:
    messaging_type = params.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise _invalid(f"param messaging_type must be one of {MESSAGING_TYPES}")
    if messaging_type == "MESSAGE_TAG" and params.get("tag") not in TAGS:
        raise _invalid(f"param tag must be one of {TAGS}")


def _checked_content(sim: Simulator, page: Account, message: dict) -> list[dict]:
    """Check the message as the Send API does; the attachments its echo will carry."""
    text, attachment = message.get("text"), message.get("attachment")
    if (text is None) == (attachment is None) and "filedata" not in request.files:
        raise _invalid("message must have exactly one of text or attachment")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise _invalid(f"Length of param message[text] must be less than or equal to {MAX_TEXT}")
    if len(str(message.get("metadata", ""))) > MAX_PAYLOAD:
        raise _invalid(f"param message[metadata] must be at most {MAX_PAYLOAD} characters")
    _check_quick_replies(message.get("quick_replies", []))
    if attachment is None and "filedata" not in request.files:
        return []
    return [_attachment(sim, page, attachment or {})]


def _check_quick_replies(quick_replies) -> None:
    if not isinstance(quick_replies, list) or len(quick_replies) > MAX_QUICK_REPLIES:
        raise _invalid(
            f"param message[quick_replies] must have at most {MAX_QUICK_REPLIES} elements"
        )
    for reply in quick_replies:
        kind = reply.get("content_type") if isinstance(reply, dict) else None
        if kind not in QUICK_REPLY_TYPES:
            raise _invalid(f"param quick_replies[content_type] must be one of {QUICK_REPLY_TYPES}")
        if kind == "text" and not 0 < len(str(reply.get("title", ""))) <= MAX_QUICK_REPLY_TITLE:
            raise _invalid(
                f"param quick_replies[title] must be 1 to {MAX_QUICK_REPLY_TITLE} characters"
            )
        if len(str(reply.get("payload", ""))) > MAX_PAYLOAD:
            raise _invalid(f"param quick_replies[payload] must be at most {MAX_PAYLOAD} characters")


def _attachment(sim: Simulator, page: Account, attachment: dict) -> dict:
    """The echo's view of an attachment sent by URL, by attachment id, or as ``filedata``."""
    kind = attachment.get("type", "file")
    if kind not in ATTACHMENT_TYPES:
        raise _invalid(f"param attachment[type] must be one of {ATTACHMENT_TYPES}")
    payload = attachment.get("payload") or {}
    if "filedata" in request.files:
        media = store_upload(sim, page, kind)
        return {"type": kind, "payload": {"url": attachment_url(sim, media)}}
    if payload.get("attachment_id"):
        media = sim.media.get("facebook", str(payload["attachment_id"]))
        if media is None or media.account_id not in (None, page.account_id):
            raise _invalid("No matching attachment for attachment_id")
        return {"type": kind, "payload": {"url": attachment_url(sim, media)}}
    if kind != "template" and not payload.get("url"):
        raise _missing("attachment[payload][url]")
    return {"type": kind, "payload": payload}


def store_upload(sim: Simulator, page: Account, kind: str) -> Media:
    file = request.files["filedata"]
    mime_type = file.mimetype or ("image/png" if kind == "image" else "application/octet-stream")
    return sim.media.add("facebook", file.read(), mime_type, page.account_id, file.filename)


def upload_attachment(sim: Simulator, page: Account, params: dict) -> Response:
    """``POST /{page}/message_attachments``: keep a reusable attachment, answer its id."""
    mark("facebook", "media", page.account_id)
    fault = sim.faults.take("facebook", "media", page.account_id)
    return answer(fault, lambda: _upload_attachment(sim, page, params))


def _upload_attachment(sim: Simulator, page: Account, params: dict) -> Response:
    authorize(sim.registry, bearer_token(params), "facebook", page.account_id, method="post")
    message = params.get("message")
    attachment = message.get("attachment") if isinstance(message, dict) else None
    if not isinstance(attachment, dict):
        raise _missing("message[attachment]")
    if "filedata" not in request.files:
        raise _missing("filedata")
    media = store_upload(sim, page, attachment.get("type", "file"))
    return jsonify({"attachment_id": media.media_id})


def profile(sim: Simulator, psid: str, params: dict) -> Response:
    """``GET /{psid}?fields=…``: the User Profile API, for a Page token."""
    mark("facebook", "lookup")
    fault = sim.faults.take("facebook", "lookup", None)
    return answer(fault, lambda: _profile(sim, psid, params))


def _profile(sim: Simulator, psid: str, params: dict) -> Response:
    token = authorize(sim.registry, bearer_token(params), None)
    if token.kind != "page":
        raise unknown_object(psid)
    who = sim.customers.get("facebook", psid)
    picture = sim.media.get("facebook", SAMPLE_PICTURE_ID)
    node = {
        "first_name": who.first_name,
        "last_name": who.last_name,
        "name": who.name,
        "profile_pic": attachment_url(sim, picture),
        "id": psid,
    }
    return jsonify(selected(node, params.get("fields") or "name"))


def attachment_url(sim: Simulator, media: Media) -> str:
    """A signed, expiring link to ``media``.

    A document's link ends in its file name, as on Meta's CDN
    (``https://cdn.fbsbx.com/v/t59.2708-21/…_n.pdf/receipt.pdf?…``): Messenger
    names a file nowhere else.
    """
    query = sim.media.sign("facebook", media.media_id)
    if media.kind == "document" and media.filename:
        query["filename"] = media.filename
    return url_for("messenger_media.download", media_id=media.media_id, _external=True, **query)


@bp.get("/facebook/attachments/<media_id>")
@bp.get("/facebook/attachments/<media_id>/<path:filename>")
def download(media_id: str, filename: str | None = None):
    """A Messenger attachment or profile picture: signed, expiring, no token needed."""
    mark("facebook", "media")
    media = current().media.check(
        "facebook", media_id, request.args.get("ext", ""), request.args.get("hash", "")
    )
    if media is None:
        abort(404)
    return Response(media.data, mimetype=media.mime_type)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
