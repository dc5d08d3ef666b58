"""The Dramatiq actors; ``dramatiq workers`` imports this package to find them all."""

from workers import broker, inbound, limits, media, outbound, retention, snoozes, tokens

__all__ = ["broker", "inbound", "limits", "media", "outbound", "retention", "snoozes", "tokens"]
