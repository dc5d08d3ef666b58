"""The audit log's words for a failed platform call: codes only, never the platform's text."""

import pytest

from app import audit
from app.platforms.errors import AuthError, ErrorCode, PermanentError, TemporaryError


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            PermanentError(
                ErrorCode.INVALID_RECIPIENT, "Undeliverable: +1 555", platform_code=131026
            ),
            "INVALID_RECIPIENT (2004, platform code 131026)",
        ),
        (AuthError(ErrorCode.TOKEN_EXPIRED, "Reconnect."), "TOKEN_EXPIRED (2001)"),
        (
            TemporaryError(ErrorCode.RATE_LIMITED, "Slow down", platform_code=40100),
            "RATE_LIMITED (2002, platform code 40100)",
        ),
        (
            TemporaryError(ErrorCode.PLATFORM_UNAVAILABLE, "No answer", maybe_delivered=True),
            "PLATFORM_UNAVAILABLE (2007, may have been delivered)",
        ),
    ],
)
def test_an_outcome_names_the_codes_and_whether_it_may_have_gone_but_no_words(error, detail):
    assert audit.outcome(error) == detail
