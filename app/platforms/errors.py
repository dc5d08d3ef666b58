"""The one error hierarchy for platform calls, SNORQ's error codes, and what they mean.

Every failure an adapter reports is one of three kinds, and that kind alone
decides what happens next: try again later, get a new token, or give up. The
code (the seed's 2001 to 2007, plus SNORQ's own) is what staff and scripts see.
Each adapter maps the platform's own error codes to an :class:`Outcome` in a
table (``Platform.error_codes``); ``Platform.classify`` is the one place that
reads those tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ErrorCode(IntEnum):
    TOKEN_EXPIRED = 2001
    RATE_LIMITED = 2002
    RECIPIENT_BLOCKED = 2003
    INVALID_RECIPIENT = 2004
    MESSAGE_TOO_LONG = 2005
    MEDIA_UPLOAD_FAILED = 2006
    PLATFORM_UNAVAILABLE = 2007
    #: The messaging window is closed (WhatsApp: send a template instead).
    OUTSIDE_WINDOW = 2008
    #: The platform did not answer a send in time; it may have been delivered.
    SEND_UNCONFIRMED = 2009
    #: The platform refused the message for another reason (its message says why).
    REJECTED = 2010
    #: The app lacks a permission on this account; reconnecting grants it.
    PERMISSION_DENIED = 2011


class PlatformError(Exception):
    """A platform call failed.

    Parameters:
      code: SNORQ's code for the failure.
      message: A sentence staff can read (never a token or a message body).
      platform_code: The platform's own error code, when it gave one.
    """

    def __init__(self, code: ErrorCode, message: str, *, platform_code: int | str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.platform_code = platform_code


class TemporaryError(PlatformError):
    """Worth trying again later: throttled, unavailable, or the network failed.

    Parameters:
      retry_after: Seconds the platform asked us to wait, if it said.
      maybe_delivered: True when the request may have reached the platform
        (the response never came), so repeating a send could duplicate it.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        platform_code: int | str | None = None,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ):
        super().__init__(code, message, platform_code=platform_code)
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class AuthError(PlatformError):
    """The token is expired or revoked: refresh it, or a person must reconnect."""


class PermanentError(PlatformError):
    """Retrying cannot help (blocked recipient, invalid input, policy, window)."""


class ParseError(ValueError):
    """A signed webhook body that is not a payload the platform documents."""


# -- what a platform's error codes mean ------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What SNORQ makes of one of a platform's error codes: which kind of error, which code."""

    kind: type[PlatformError]
    code: ErrorCode

    def error(
        self, message: str, *, platform_code: int | None, retry_after: float | None
    ) -> PlatformError:
        """The error itself; only a TemporaryError keeps the wait the platform asked for."""
        if issubclass(self.kind, TemporaryError):
            return self.kind(
                self.code, message, platform_code=platform_code, retry_after=retry_after
            )
        return self.kind(self.code, message, platform_code=platform_code)


#: Throttled: wait (at least as long as Retry-After asks) and try again.
THROTTLED = Outcome(TemporaryError, ErrorCode.RATE_LIMITED)
#: The platform's side failed: try again.
UNAVAILABLE = Outcome(TemporaryError, ErrorCode.PLATFORM_UNAVAILABLE)
#: The token is expired or invalid: refresh it once, else a person must reconnect.
TOKEN_REFUSED = Outcome(AuthError, ErrorCode.TOKEN_EXPIRED)
#: The app lacks a permission on the account: reconnecting grants it.
NO_PERMISSION = Outcome(AuthError, ErrorCode.PERMISSION_DENIED)
#: Refused for a reason retrying cannot change; the platform's words say which.
REJECTED = Outcome(PermanentError, ErrorCode.REJECTED)


def refused(code: ErrorCode) -> Outcome:
    """Refused for good, for the reason SNORQ's ``code`` names (say, OUTSIDE_WINDOW)."""
    return Outcome(PermanentError, code)
