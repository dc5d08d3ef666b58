"""The checks every adapter makes of a staff reply before it is stored and before it is sent.

The rules are constants on each adapter (``max_text_length``, the extras it takes);
these helpers phrase a refusal the same way on every platform, as a PermanentError
whose message staff can act on (the API answers it as a 400).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from app.platforms.base import Platform
from app.platforms.errors import ErrorCode, PermanentError


def check_text(platform: Platform, text: str) -> None:
    """Refuse an empty reply, or one longer than the platform takes."""
    if not text.strip():
        raise PermanentError(ErrorCode.REJECTED, "A reply needs some text.")
    if len(text) > platform.max_text_length:
        raise PermanentError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"{platform.title} takes at most {platform.max_text_length} characters in a "
            f"message; this one has {len(text)}.",
        )


def refuse_extras(platform: Platform, extras: Mapping, known: Collection[str]) -> None:
    """Refuse extras the platform does not have (say, quick replies on WhatsApp)."""
    unknown = sorted(set(extras) - set(known))
    if unknown:
        raise PermanentError(
            ErrorCode.REJECTED, f"{platform.title} replies cannot carry {', '.join(unknown)}."
        )


def refusal(message: str) -> PermanentError:
    """A reply whose extras are malformed; ``message`` says which field and how."""
    return PermanentError(ErrorCode.REJECTED, message)
