"""The consent pages: Meta's login dialog and TikTok's authorize page, simulated.

The simulated owner always consents at once: the page redirects straight back
to ``redirect_uri`` with a one-time ``code`` and the caller's ``state``, so
SNORQ's connect flow runs end to end in the sandbox.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, redirect, request

from app.simulator import current
from app.simulator.incoming import mark

bp = Blueprint("dialogs", __name__)


def _refused(reason: str) -> Response:
    return Response(
        f"The simulated platform refused this request: {reason}\n", 400, mimetype="text/plain"
    )


def _back(redirect_uri: str, **values: str) -> Response:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + separator + urlencode(values), code=302)


@bp.get("/facebook/<version>/dialog/oauth")
def facebook_dialog(version: str):
    """Facebook Login (and Embedded Signup for WhatsApp when ``config_id`` is given)."""
    sim, args = current(), request.args
    client_id, redirect_uri = args.get("client_id", ""), args.get("redirect_uri", "")
    ids = {name: sim.config.app(name).app_id for name in ("whatsapp", "facebook")}
    if not client_id or client_id not in ids.values():
        return _refused("Invalid App ID.")
    if not redirect_uri:
        return _refused("redirect_uri is required.")
    whatsapp = (
        "config_id" in args
        or client_id != ids["facebook"]
        or "whatsapp_business" in args.get("scope", "")
    )
    platform = "whatsapp" if whatsapp else "facebook"
    mark(platform, "token")
    code = sim.registry.new_code(platform, client_id, redirect_uri)
    return _back(redirect_uri, code=code, state=args.get("state", ""))


@bp.get("/tiktok/v2/auth/authorize/")
def tiktok_dialog():
    """TikTok's authorize page for a business account."""
    sim, args = current(), request.args
    mark("tiktok", "token")
    if args.get("client_key") != sim.config.app("tiktok").app_id:
        return _refused("client_key is not a known app.")
    if args.get("response_type", "code") != "code" or not args.get("redirect_uri"):
        return _refused("response_type must be code and redirect_uri is required.")
    code = sim.registry.new_code("tiktok", args["client_key"], args["redirect_uri"])
    return _back(
        args["redirect_uri"], code=code, scopes=args.get("scope", ""), state=args.get("state", "")
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
