"""Media the simulated platforms hold: uploads, and the picture the fake customer sends.

Download URLs are signed and expire, like WhatsApp's lookaside URLs (valid five
minutes) and TikTok's download links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
import zlib
from dataclasses import dataclass

from app.simulator.ids import random_numeric

#: Seconds a download URL stays valid (WhatsApp: five minutes).
URL_LIFETIME = 300

#: The picture every simulator holds, under the same id on every platform.
SAMPLE_PICTURE_ID = "1000000000000001"


@dataclass(frozen=True)
class Media:
    media_id: str
    platform: str
    mime_type: str
    data: bytes
    #: Only tokens for this account may look it up (None: any token of the platform).
    account_id: str | None = None
    filename: str | None = None

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sha256_base64(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


class MediaStore:
    """Media by id, and signed, expiring download URLs for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._media: dict[tuple[str, str], Media] = {}
        self._key = secrets.token_bytes(32)

    def add(
        self,
        platform: str,
        data: bytes,
        mime_type: str,
        account_id: str | None,
        filename: str | None = None,
    ) -> Media:
        media = Media(random_numeric(16), platform, mime_type, data, account_id, filename)
        with self._lock:
            self._media[(platform, media.media_id)] = media
        return media

    def get(self, platform: str, media_id: str) -> Media | None:
        if media_id == SAMPLE_PICTURE_ID:
            return Media(SAMPLE_PICTURE_ID, platform, "image/png", sample_picture(), None, "hi.png")
        with self._lock:
            return self._media.get((platform, media_id))

    def signature(self, platform: str, media_id: str, expires: int) -> str:
        message = f"{platform}:{media_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def sign(self, platform: str, media_id: str) -> dict[str, str]:
        """Query parameters that let ``media_id`` be downloaded for a few minutes."""
        expires = int(time.time()) + URL_LIFETIME
        return {"ext": str(expires), "hash": self.signature(platform, media_id, expires)}

    def check(self, platform: str, media_id: str, ext: str, signature: str) -> Media | None:
        """The media a signed URL names, if its signature holds and it has not expired."""
        if not ext.isdigit() or int(ext) < time.time():
            return None
        if not hmac.compare_digest(self.signature(platform, media_id, int(ext)), signature):
            return None
        return self.get(platform, media_id)


def sample_picture(size: int = 32) -> bytes:
    """A small PNG: a square in SNORQ's green, drawn without any imaging library."""
    row = b"\x00" + bytes((46, 160, 110)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
