"""The error answers of the platforms, in their own shapes.

Graph (WhatsApp, Messenger): ``{"error": {"message", "type", "code", "error_subcode"?,
"fbtrace_id"}}``, WhatsApp adding ``error_data: {messaging_product, details}``.
TikTok for Business: ``{"code", "message", "request_id", "data": {}}``, usually
with HTTP 200: a non-zero ``code`` is the error. ../shared/PLATFORMS.md
"""

from __future__ import annotations

import secrets
import time
from enum import IntEnum

from flask import Response, jsonify


class TikTokCode(IntEnum):
    """TikTok for Business error codes (integrators' lists; the portal itself is JS-only)."""

    NO_PERMISSION = 40001
    INVALID_PARAMETER = 40002
    NOT_FOUND = 40007
    #: "Your message was blocked due to messaging restrictions" (e.g. the 48 h window).
    RESTRICTED = 40064
    RATE_LIMITED = 40100
    INVALID_APP = 40101
    INVALID_REFRESH_TOKEN = 40104
    INVALID_ACCESS_TOKEN = 40105
    INVALID_AUTH_CODE = 40110
    AUTH_CODE_EXPIRED = 40131
    UNSUPPORTED_FILE = 40908
    SYSTEM_ERROR = 50000


class ApiError(Exception):
    """An error answer; raising it anywhere in a handler sends it."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> Response:
        response = jsonify(self.body)
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    whatsapp_details: str | None = None,
    transient: bool | None = None,
    headers: dict | None = None,
) -> ApiError:
    """A Graph API error; ``whatsapp_details`` makes it a WhatsApp Cloud API one."""
    error: dict = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    if whatsapp_details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": whatsapp_details}
    error["fbtrace_id"] = fbtrace_id()
    return ApiError(status, {"error": error}, headers)


def missing_parameter(name: str, *, whatsapp: bool) -> ApiError:
    message = f"(#100) The parameter {name} is required"
    details = f"The parameter {name} is required." if whatsapp else None
    return graph_error(400, 100, message, whatsapp_details=details)


def invalid_parameter(details: str, *, whatsapp: bool) -> ApiError:
    if whatsapp:
        return graph_error(
            400, 131009, "(#131009) Parameter value is not valid", whatsapp_details=details
        )
    return graph_error(400, 100, f"(#100) {details}")


def invalid_token() -> ApiError:
    return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")


def expired_token() -> ApiError:
    now = time.strftime("%A, %d-%b-%y %H:%M:%S UTC", time.gmtime())
    return graph_error(
        401,
        190,
        f"Error validating access token: Session has expired on {now}.",
        subcode=463,
    )


def missing_token() -> ApiError:
    return graph_error(400, 104, "An access token is required to request this resource.")


def unknown_object(node: str, method: str = "get") -> ApiError:
    """Graph's answer for an id that does not exist or that this token may not use."""
    return graph_error(
        400,
        100,
        f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
    )


def whatsapp_throttled(status: int = 400, headers: dict | None = None) -> ApiError:
    """WhatsApp's throughput error (130429): too many messages per second for the number."""
    return graph_error(
        status,
        130429,
        "(#130429) Rate limit hit",
        whatsapp_details="Cloud API message throughput has been reached.",
        headers=headers,
    )


def messenger_throttled(status: int = 400, headers: dict | None = None) -> ApiError:
    """Messenger's rate-limit error (613)."""
    return graph_error(
        status, 613, "Calls to this api have exceeded the rate limit.", headers=headers
    )


def tiktok_throttled(status: int = 200, headers: dict | None = None) -> ApiError:
    """TikTok's rate-limit error (40100)."""
    return tiktok_error(
        TikTokCode.RATE_LIMITED,
        "Too many requests. Please retry in some time.",
        status=status,
        headers=headers,
    )


def tiktok_request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(9).upper()


def tiktok_body(code: int, message: str, data: dict | None = None) -> dict:
    return {"code": code, "message": message, "request_id": tiktok_request_id(), "data": data or {}}


def tiktok_error(
    code: int, message: str, *, status: int = 200, headers: dict | None = None
) -> ApiError:
    return ApiError(status, tiktok_body(code, message), headers)
