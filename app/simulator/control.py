"""The simulator's own endpoints, for tests and the curious: ``/_simulator/…``.

- ``POST /_simulator/faults`` ``{platform, kind, count?, endpoint?, account_id?,
  retry_after?, delay?, status?}`` injects a fault; ``GET`` lists what is left,
  ``DELETE`` clears them all.
- ``GET /_simulator/requests?since=SEQ&platform=&endpoint=&account_id=`` lists the
  API requests received (arrival time, body without tokens, answer); ``DELETE``
  forgets them.
- ``GET /_simulator/webhooks`` lists the webhooks delivered to SNORQ (or given up).
- ``POST /_simulator/accounts`` ``{platform, account_id, access_token,
  refresh_token?, expires_in?, name?}`` makes a token valid; ``GET`` lists accounts.
- ``POST /_simulator/customers/messages`` ``{platform, account_id, from?, name?,
  text?, image?, audio?, document?}``: the customer writes to the business, with a
  picture, a voice message or a PDF if one of those is true (TikTok: pictures only).
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, jsonify, request

from app.config import PLATFORMS
from app.simulator import current, messenger
from app.simulator.inbound import message_webhook
from app.simulator.media import SAMPLE_AUDIO_ID, SAMPLE_DOCUMENT_ID, SAMPLE_PICTURE_ID

bp = Blueprint("control", __name__, url_prefix="/_simulator")

#: The file a customer attaches, by the flag that asks for it.
ATTACHABLE = {"image": SAMPLE_PICTURE_ID, "audio": SAMPLE_AUDIO_ID, "document": SAMPLE_DOCUMENT_ID}


def _bad(message: str):
    return jsonify({"error": message}), 400


@bp.get("/")
def summary():
    sim = current()
    return jsonify(
        {
            "snorq_url": sim.deliveries.snorq_url,
            "accounts": [account.json() for account in sim.registry.accounts()],
            "faults": sim.faults.pending(),
            "webhooks_pending": sim.deliveries.pending(),
        }
    )


@bp.post("/faults")
def add_fault():
    try:
        fault = current().faults.add(request.get_json(silent=True) or {})
    except (ValueError, TypeError) as error:
        return _bad(str(error))
    return jsonify({"fault": fault.__dict__}), 201


@bp.get("/faults")
def list_faults():
    return jsonify({"faults": current().faults.pending()})


@bp.delete("/faults")
def clear_faults():
    current().faults.clear()
    return "", 204


@bp.get("/requests")
def list_requests():
    since = request.args.get("since", "0")
    if not since.isdigit():
        return _bad("since must be a sequence number")
    filters = {key: request.args.get(key, "") for key in ("platform", "endpoint", "account_id")}
    entries = current().journal.since(int(since), filters)
    return jsonify({"requests": entries, "last_seq": entries[-1]["seq"] if entries else int(since)})


@bp.delete("/requests")
def clear_requests():
    current().journal.clear()
    return "", 204


@bp.get("/webhooks")
def list_webhooks():
    sim = current()
    return jsonify({"webhooks": sim.deliveries.finished(), "pending": sim.deliveries.pending()})


@bp.get("/accounts")
def list_accounts():
    return jsonify({"accounts": [account.json() for account in current().registry.accounts()]})


@bp.post("/accounts")
def add_account():
    spec = request.get_json(silent=True) or {}
    if spec.get("platform") not in PLATFORMS or not spec.get("account_id"):
        return _bad(f"platform (one of {PLATFORMS}) and account_id are required")
    if not spec.get("access_token"):
        return _bad("access_token is required")
    expires_in = spec.get("expires_in")
    account = current().registry.register(
        spec["platform"],
        str(spec["account_id"]),
        str(spec["access_token"]),
        refresh_token=spec.get("refresh_token"),
        expires_at=None if expires_in is None else time.time() + float(expires_in),
        name=spec.get("name", ""),
    )
    return jsonify({"account": account.json()}), 201


@bp.post("/customers/messages")
def customer_writes():
    """The fake customer sends the business a message, delivered to SNORQ as a webhook."""
    spec = request.get_json(silent=True) or {}
    platform, account_id = spec.get("platform"), spec.get("account_id")
    if platform not in PLATFORMS or not account_id:
        return _bad(f"platform (one of {PLATFORMS}) and account_id are required")
    files = [kind for kind in ATTACHABLE if spec.get(kind)]
    if not spec.get("text") and not files:
        return _bad(f"give text, one of {tuple(ATTACHABLE)}, or both")
    if len(files) > 1 or (files and files[0] != "image" and platform == "tiktok"):
        return _bad("one file per message (TikTok: a picture)")
    if files == ["audio"] and spec.get("text"):
        return _bad("a voice message has no text")
    sim = current()
    account = sim.registry.add_account(platform, str(account_id))
    who = sim.customers.get(platform, spec.get("from"), spec.get("name"))
    media = sim.media.get(platform, ATTACHABLE[files[0]]) if files else None
    media_url = None
    if media is not None and platform == "facebook":
        media_url = messenger.attachment_url(sim, media)
    message_id, payload = message_webhook(
        account, who, text=spec.get("text", ""), media=media, media_url=media_url
    )
    sim.deliveries.schedule(platform, payload, 0.0, f"inbound {message_id}")
    return jsonify({"message_id": message_id, "from": who.external_id}), 202


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
