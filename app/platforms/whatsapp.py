"""WhatsApp Business Cloud API: webhooks, sends, templates, read receipts, media.

Protocol facts: ../shared/PLATFORMS.md, section 2.
"""

from __future__ import annotations

from typing import ClassVar

from app.platforms.errors import (
    AuthError,
    ErrorCode,
    PermanentError,
    PlatformError,
    TemporaryError,
)
from app.platforms.meta import MetaPlatform


class WhatsApp(MetaPlatform):
    name: ClassVar[str] = "whatsapp"
    max_text_length: ClassVar[int] = 4096
    burst_limit: ClassVar[tuple[int, int]] = (80, 1)


# -- errors (PLATFORMS.md, "Error codes and HTTP status" and "Error classification") --

#: Throttling: wait and try again.
_THROTTLED = {4, 80007, 130429, 131056}
#: Meta's side failed: try again.
_UNAVAILABLE = {1, 2, 131000, 131016, 131057}
#: The token is expired or invalid.
_EXPIRED = {0, 102, 190}
#: Refused for a reason retrying cannot change, by SNORQ code.
_PERMANENT = {
    131047: ErrorCode.OUTSIDE_WINDOW,
    131026: ErrorCode.INVALID_RECIPIENT,
    131030: ErrorCode.INVALID_RECIPIENT,
    131021: ErrorCode.INVALID_RECIPIENT,
    131052: ErrorCode.MEDIA_UPLOAD_FAILED,
    131053: ErrorCode.MEDIA_UPLOAD_FAILED,
}


def classify_error(
    code: int | None, title: str, *, http_status: int | None = None
) -> PlatformError:
    """The error for a WhatsApp error ``code`` (a send's response or a failed status).

    Classified by code, never by text; ``title`` only becomes the message staff read.
    """
    message = f"WhatsApp error {code}: {title}" if code is not None else title
    if code in _THROTTLED:
        return TemporaryError(ErrorCode.RATE_LIMITED, message, platform_code=code)
    if code in _UNAVAILABLE or (code is None and (http_status or 0) >= 500):
        return TemporaryError(ErrorCode.PLATFORM_UNAVAILABLE, message, platform_code=code)
    if code in _EXPIRED:
        return AuthError(ErrorCode.TOKEN_EXPIRED, message, platform_code=code)
    if code is not None and (code in {3, 10} or 200 <= code <= 299):
        return AuthError(ErrorCode.PERMISSION_DENIED, message, platform_code=code)
    if code in _PERMANENT:
        return PermanentError(_PERMANENT[code], message, platform_code=code)
    return PermanentError(ErrorCode.REJECTED, message, platform_code=code)
