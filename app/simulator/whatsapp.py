"""The WhatsApp Cloud API, simulated: sends, read receipts, media, and status webhooks.

``POST /{phone-number-id}/messages`` takes a message (``to`` a number or
``recipient`` a BSUID) or ``status: read``; an accepted message comes back as
``sent``, ``delivered`` and ``read`` status webhooks, each carrying the send's
``biz_opaque_callback_data``. ../shared/PLATFORMS.md, section 2.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, abort, jsonify, request, url_for

from app.simulator import Simulator, current
from app.simulator.accounts import Account
from app.simulator.errors import (
    graph_error,
    invalid_parameter,
    missing_parameter,
    whatsapp_throttled,
)
from app.simulator.faults import answer
from app.simulator.ids import bsuid, is_bsuid, wamid
from app.simulator.incoming import bearer_token, mark
from app.simulator.media import Media
from app.simulator.meta import authorize
from app.simulator.webhooks import whatsapp as webhooks

MAX_TEXT = 4096
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
MESSAGE_TYPES = (
    "text",
    "template",
    "interactive",
    "location",
    "contacts",
    "reaction",
    *MEDIA_TYPES,
)
RECEIPTS = ("sent", "delivered", "read")

_invalid = functools.partial(invalid_parameter, whatsapp=True)
_missing = functools.partial(missing_parameter, whatsapp=True)

bp = Blueprint("whatsapp_media", __name__)


@dataclass(frozen=True)
class Addressee:
    """Who a send went to: the number (when given) and the customer's BSUID."""

    given: str
    user_id: str
    wa_id: str | None = None

    def contact(self) -> dict:
        """The ``contacts[]`` entry of the send's answer: ``wa_id`` when sent by number."""
        if self.wa_id is not None:
            return {"input": self.given, "wa_id": self.wa_id}
        return {"input": self.given, "user_id": self.user_id}


def post_message(sim: Simulator, account: Account, params: dict) -> Response:
    endpoint = "action" if params.get("status") == "read" else "send"
    mark("whatsapp", endpoint, account.account_id)
    fault = sim.faults.take("whatsapp", endpoint, account.account_id)
    return answer(fault, lambda: _message(sim, account, params))


def _message(sim: Simulator, account: Account, params: dict) -> Response:
    authorize(sim.registry, bearer_token(params), "whatsapp", account.account_id, method="post")
    if params.get("messaging_product") != "whatsapp":
        raise _missing("messaging_product")
    if params.get("status") == "read":
        return _mark_read(params)
    addressee = _addressee(account, params)
    kind = _checked_type(sim, params)
    if not sim.throughput.admit("whatsapp", (account.account_id,), time.time()):
        raise whatsapp_throttled()
    message_id = wamid()
    recipient = (addressee.wa_id, addressee.user_id)
    callback = params.get("biz_opaque_callback_data")

    def receipt(status: str):
        return functools.partial(
            webhooks.status_payload, account, recipient, message_id, status, kind, callback
        )

    sim.acknowledge("whatsapp", [(f"{s} {message_id}", receipt(s)) for s in RECEIPTS])
    sent = {"id": message_id}
    if kind == "template":
        sent["message_status"] = "accepted"
    return jsonify(
        {"messaging_product": "whatsapp", "contacts": [addressee.contact()], "messages": [sent]}
    )


def _mark_read(params: dict) -> Response:
    if not params.get("message_id"):
        raise _missing("message_id")
    typing = params.get("typing_indicator")
    if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
        raise _invalid("typing_indicator: type must be text.")
    return jsonify({"success": True})


def _addressee(account: Account, params: dict) -> Addressee:
    """The send's recipient; a phone number takes precedence over a BSUID."""
    if params.get("recipient_type", "individual") != "individual":
        raise _invalid("recipient_type: must be individual.")
    to, recipient = params.get("to"), params.get("recipient")
    if to:
        digits = "".join(c for c in str(to) if c not in "+ -()")
        if not digits.isdigit() or not 7 <= len(digits) <= 15:
            raise _invalid(f"to: {to} is not a valid phone number.")
        return Addressee(str(to), bsuid(account.account_id, digits), digits)
    if recipient:
        if not is_bsuid(str(recipient)):
            raise _invalid(f"recipient: {recipient} is not a user id.")
        return Addressee(str(recipient), str(recipient))
    raise _missing("to")


def _checked_type(sim: Simulator, params: dict) -> str:
    """The message's type, once its content is what the Cloud API requires."""
    kind = params.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise _invalid(f"type: {kind} is not a message type.")
    content = params.get(kind)
    if not isinstance(content, dict):
        raise _missing(kind)
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise _missing("text['body']")
        if len(body) > MAX_TEXT:
            raise graph_error(
                400,
                100,
                f"(#100) Param text['body'] must be at most {MAX_TEXT} characters long.",
                whatsapp_details=f"The text body is longer than {MAX_TEXT} characters.",
            )
    elif kind == "template":
        if not content.get("name"):
            raise _missing("template['name']")
        if not isinstance(content.get("language"), dict) or not content["language"].get("code"):
            raise _missing("template['language']['code']")
    elif kind in MEDIA_TYPES:
        media_id = content.get("id")
        if not media_id and not content.get("link"):
            raise _missing(f"{kind}['id']")
        if media_id and sim.media.get("whatsapp", str(media_id)) is None:
            raise _invalid(f"{kind}['id']: no media with id {media_id}.")
    return kind


def upload(sim: Simulator, account: Account) -> Response:
    """``POST /{phone-number-id}/media``: keep an uploaded file, answer its id."""
    mark("whatsapp", "media", account.account_id)
    fault = sim.faults.take("whatsapp", "media", account.account_id)
    return answer(fault, lambda: _upload(sim, account))


def _upload(sim: Simulator, account: Account) -> Response:
    form = request.form.to_dict()
    authorize(sim.registry, bearer_token(form), "whatsapp", account.account_id, method="post")
    if form.get("messaging_product") != "whatsapp":
        raise _missing("messaging_product")
    file = request.files.get("file")
    if file is None:
        raise _missing("file")
    mime_type = form.get("type") or file.mimetype
    media = sim.media.add("whatsapp", file.read(), mime_type, account.account_id, file.filename)
    return jsonify({"id": media.media_id})


def media_info(sim: Simulator, media: Media, params: dict) -> Response:
    """``GET /{media-id}``: where to download the file, for the next five minutes."""
    mark("whatsapp", "media", media.account_id)
    fault = sim.faults.take("whatsapp", "media", media.account_id)
    return answer(fault, lambda: _media_info(sim, media, params))


def _media_info(sim: Simulator, media: Media, params: dict) -> Response:
    authorize(sim.registry, bearer_token(params), "whatsapp", media.account_id)
    query = sim.media.sign("whatsapp", media.media_id)
    url = url_for("whatsapp_media.download", mid=media.media_id, _external=True, **query)
    return jsonify(
        {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": media.mime_type,
            "sha256": media.sha256_hex,
            "file_size": len(media.data),
            "id": media.media_id,
        }
    )


@bp.get("/whatsapp_business/attachments/")
def download():
    """The file behind a media URL: needs the URL's signature and a bearer token."""
    sim = current()
    mark("whatsapp", "media")
    media = sim.media.check(
        "whatsapp",
        request.args.get("mid", ""),
        request.args.get("ext", ""),
        request.args.get("hash", ""),
    )
    if media is None:
        abort(404)
    authorize(sim.registry, bearer_token({}), "whatsapp", media.account_id)
    return Response(media.data, mimetype=media.mime_type)


def phone_number(account: Account) -> dict:
    """The Graph node of a business phone number."""
    return {
        "verified_name": account.name,
        "display_phone_number": account.display_phone_number,
        "code_verification_status": "VERIFIED",
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "id": account.account_id,
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
