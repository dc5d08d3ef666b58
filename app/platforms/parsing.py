"""Reading signed webhook bodies: typed field access, timestamps and readable previews.

Everything a parser reads goes through :class:`Fields`, so a body that is not the
documented shape fails with a :class:`ParseError` that names where (``entry[0].id``)
and never what: customer text must not reach an error message or a log.
"""

from __future__ import annotations

import datetime
import json
import re

from app.platforms.errors import ParseError

#: The longest id any platform documents fits in every id column (wamid: 128).
MAX_ID_LENGTH = 128

#: An escape that decodes to what no database column holds: a NUL, or half of a
#: surrogate pair (Meta escapes every emoji as a pair: those are fine).
_UNSTORABLE = re.compile(
    r"\\u0000|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


#: Deeper than any platform's payload (about ten levels) by far, and far enough from
#: the interpreter's recursion limit that storing a part of it (a JSON column) cannot hit it.
MAX_DEPTH = 64


def load_object(body: bytes | str, where: str = "body") -> Fields:
    """The JSON object in ``body``, cleaned of what no database column can hold.

    Raises:
      ParseError: the body is not UTF-8 JSON, not an object, or nested too deeply.
    """
    try:
        text = body.decode() if isinstance(body, bytes) else body
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ParseError(f"{where} is not UTF-8 JSON") from None
    # Nesting cannot go deeper than the body has brackets: the walk is for the few that might.
    brackets = text.count("{") + text.count("[")
    if brackets > MAX_DEPTH and _nested_deeper_than(value, MAX_DEPTH):
        raise ParseError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    # Only an escape can put one in a string: the walk is for the rare body that has one.
    if _UNSTORABLE.search(text):
        value = _scrub(value)
    return Fields(value, where)


def _nested_deeper_than(value, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (walked without recursion)."""
    waiting = [(value, 1)]
    while waiting:
        item, depth = waiting.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        waiting.extend((child, depth + 1) for child in item)
    return False


def _scrub(value):
    """``value`` without NUL characters and with lone surrogates replaced."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode()
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value


class Fields:
    """Typed reads from one JSON object of a payload.

    Parameters:
      value: The decoded JSON value, which must be an object.
      where: Its path in the payload, for error messages.
    """

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise ParseError(f"{where} must be an object")
        self.data: dict = value
        self.where = where

    def _get(self, key: str, kinds: tuple[type, ...], what: str, required: bool):
        value = self.data.get(key)
        if value is None:
            if required:
                raise ParseError(f"{self.where}.{key} is missing")
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ParseError(f"{self.where}.{key} must be {what}")
        return value

    def text(self, key: str, *, required: bool = True) -> str | None:
        return self._get(key, (str,), "a string", required)

    def ident(
        self, key: str, *, required: bool = True, max_length: int = MAX_ID_LENGTH
    ) -> str | None:
        """A platform id: a non-empty string (or a number, as some ids arrive) that fits."""
        value = self._get(key, (str, int), "an id", required)
        if value is None:
            return None
        return _checked_id(str(value), max_length, f"{self.where}.{key}")

    def idents(self, key: str, *, max_length: int = MAX_ID_LENGTH) -> list[str]:
        """The ids of a list field (an absent list is empty)."""
        items = self._get(key, (list,), "a list", False) or []
        where = f"{self.where}.{key}"
        if not all(isinstance(item, str) for item in items):
            raise ParseError(f"{where} must be a list of ids")
        return [_checked_id(item, max_length, where) for item in items]

    def integer(self, key: str, *, required: bool = True) -> int | None:
        return self._get(key, (int,), "an integer", required)

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float), "a number", True))

    def flag(self, key: str) -> bool:
        return bool(self._get(key, (bool,), "true or false", False))

    def obj(self, key: str, *, required: bool = True) -> Fields | None:
        value = self._get(key, (dict,), "an object", required)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def objects(self, key: str, *, required: bool = False) -> list[Fields]:
        """The objects of a list field (an absent list is empty unless ``required``)."""
        items = self._get(key, (list,), "a list", required) or []
        return [Fields(item, f"{self.where}.{key}[{n}]") for n, item in enumerate(items)]

    def seconds(self, key: str) -> datetime.datetime:
        """A Unix time in seconds; WhatsApp sends it as a string of digits."""
        digits = str(self._get(key, (str, int), "a Unix time", True))
        if not (digits.isascii() and digits.isdigit()):
            raise ParseError(f"{self.where}.{key} must be a Unix time")
        return _utc(int(digits), f"{self.where}.{key}")

    def millis(self, key: str) -> datetime.datetime:
        """A Unix time in milliseconds (Messenger, TikTok)."""
        return _utc(self._get(key, (int,), "a Unix time in ms", True) / 1000, f"{self.where}.{key}")


def _checked_id(value: str, max_length: int, where: str) -> str:
    if not value or len(value) > max_length:
        raise ParseError(f"{where} is not a valid id")
    return value


def _utc(seconds: float, where: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where} is out of range") from None


def clip(text: str | None, length: int) -> str | None:
    """``text`` cut to a column's length (names are free text of any size)."""
    return None if text is None else text[:length]


#: How a message with no text of its own reads in a conversation list.
LABELS = {
    "image": "[Image]",
    "video": "[Video]",
    "audio": "[Audio]",
    "voice": "[Voice message]",
    "document": "[Document]",
    "sticker": "[Sticker]",
    "location": "[Location]",
    "contacts": "[Contact]",
    "attachments": "[Attachments]",
    "share": "[Shared post]",
    "link": "[Link]",
    "button": "[Button]",
    "form": "[Form reply]",
    "order": "[Order]",
    "system": "[System message]",
    "unsupported": "[Unsupported message]",
}


def labelled(label: str, detail: object = None) -> str:
    """``[Document]`` or, with a detail, ``[Document: report.pdf]``."""
    base = LABELS[label]
    return base if detail in (None, "") else f"{base[:-1]}: {detail}]"


def location_preview(latitude: float, longitude: float) -> str:
    return labelled("location", f"{latitude}, {longitude}")


def reaction_preview(emoji: str | None) -> str:
    """``[Reaction: 👍]``; taking a reaction back reads ``[Reaction removed]``."""
    return f"[Reaction: {emoji}]" if emoji else "[Reaction removed]"
