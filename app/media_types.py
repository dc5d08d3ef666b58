"""What a media file is, judged by its first bytes, and how a browser may be given it.

A platform's word for a file's type, or a customer's file name, is only a hint: the
type SNORQ stores and serves is the one the file's leading bytes show (a "photo"
that is really a web page is refused, not served). Staff download every file with
``X-Content-Type-Options: nosniff`` and a sandboxing CSP; only types that cannot
run anything are shown inline, everything else is a download.
"""

from __future__ import annotations

from urllib.parse import quote

#: How many leading bytes :func:`detect` looks at.
HEAD_BYTES = 64

OCTET_STREAM = "application/octet-stream"

#: Types a browser may show inline (``<img>``, ``<audio>``, ``<video>``): none runs script.
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "video/mp4",
    }
)

#: What each kind of message file may be.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
KIND_TYPES = {
    "image": IMAGE_TYPES,
    "sticker": IMAGE_TYPES,
    "audio": frozenset(
        {
            "audio/ogg",
            "audio/mpeg",
            "audio/mp4",
            "audio/aac",
            "audio/amr",
            "audio/wav",
            "audio/webm",
        }
    ),
    "video": frozenset({"video/mp4", "video/3gpp", "video/quicktime", "video/webm"}),
}

#: Never kept, whatever the message says it is: markup a browser would run, and programs.
REFUSED_TYPES = frozenset(
    {
        "text/html",
        "image/svg+xml",
        "application/xml",
        "application/x-msdownload",
        "application/x-executable",
        "application/x-mach-binary",
    }
)

#: Office documents share a container format; the declared type names which one it is.
_CONTAINERS = {
    "application/zip": (
        "application/vnd.openxmlformats-officedocument.",
        "application/vnd.oasis.opendocument.",
        "application/epub+zip",
    ),
    "application/x-ole-storage": (
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
    ),
}
#: Text formats no magic number shows: kept as declared when the bytes are text.
_TEXT_TYPES = frozenset({"text/plain", "text/csv", "text/calendar", "text/vcard"})

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/wav": ".wav",
    "audio/webm": ".weba",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/csv": ".csv",
}

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"#!AMR", "audio/amr"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),
)
_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<svg")


def sniff(head: bytes) -> str | None:
    """The type a file's leading bytes show, or None when they show none SNORQ knows."""
    for magic, mime_type in _MAGIC:
        if head.startswith(magic):
            return mime_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head[4:8] == b"ftyp":
        return _iso_media(head[8:12])
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "audio/aac"
    return _markup(head)


def _iso_media(brand: bytes) -> str:
    """An MP4-family file by its ``ftyp`` brand."""
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4"
    if brand.startswith((b"3gp", b"3g2")):
        return "video/3gpp"
    return "video/quicktime" if brand == b"qt  " else "video/mp4"


def _markup(head: bytes) -> str | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if text.startswith(_MARKUP):
        return "text/html"
    return "application/xml" if text.startswith(b"<?xml") else None


def detect(head: bytes, declared: str | None, kind: str | None = None) -> str:
    """The type to store for a file: what its bytes show, refined by what it was declared.

    Parameters:
      head: The file's first :data:`HEAD_BYTES` bytes (or all of a shorter file).
      declared: The type the platform or the browser gave, if any.
      kind: The message file's kind (``audio`` makes an MP4 container ``audio/mp4``).
    """
    declared = (declared or "").split(";", 1)[0].strip().lower()
    found = sniff(head)
    if found in _CONTAINERS:
        return declared if declared.startswith(_CONTAINERS[found]) else found
    if found == "video/mp4" and kind == "audio":
        return "audio/mp4"
    if found is not None:
        return found
    if declared in _TEXT_TYPES and _is_text(head):
        return declared
    return OCTET_STREAM


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # The cut at HEAD_BYTES may split a character: only an error before it counts.
        return error.start >= len(head) - 3
    return b"\x00" not in head


def refusal(kind: str, mime_type: str) -> str | None:
    """Why a file of ``mime_type`` cannot be a message's ``kind`` file, or None if it can."""
    if mime_type in REFUSED_TYPES:
        return f"SNORQ does not keep files of type {mime_type}: a browser could run them."
    allowed = KIND_TYPES.get(kind)
    if allowed is not None and mime_type not in allowed:
        return f"The file is {mime_type}, not the {kind} it was sent as."
    return None


def kind_of(mime_type: str) -> str:
    """The kind of message file a type makes: image, audio, video or document."""
    for kind in ("image", "audio", "video"):
        if mime_type in KIND_TYPES[kind]:
            return kind
    return "document"


def file_name(name: str | None, kind: str, mime_type: str) -> str:
    """A file name to show and download under: the given one's last part, or one made up."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(c for c in base if c.isprintable())[:255]
    return base or f"{kind}{EXTENSIONS.get(mime_type, '')}"


def _ascii(character: str) -> str:
    plain = character.isascii() and character.isprintable() and character not in '"\\'
    return character if plain else "_"


def content_disposition(mime_type: str, filename: str) -> str:
    """``inline`` for the types a browser only displays, ``attachment`` for the rest.

    The name goes both as ASCII and, for any other character, as RFC 6266 ``filename*``.
    """
    disposition = "inline" if mime_type in INLINE_TYPES else "attachment"
    fallback = "".join(_ascii(c) for c in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
