"""Media the simulated platforms hold: uploads, and the files the fake customer sends.

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

#: The files every simulator holds, under the same ids on every platform.
SAMPLE_PICTURE_ID = "1000000000000001"
SAMPLE_AUDIO_ID = "1000000000000002"
SAMPLE_DOCUMENT_ID = "1000000000000003"


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
    def kind(self) -> str:
        """What a message carries it as: ``image``, ``audio``, ``video`` or ``document``."""
        major = self.mime_type.split("/", 1)[0]
        return major if major in ("image", "audio", "video") else "document"

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
        if media_id in _SAMPLES:
            mime_type, filename, make = _SAMPLES[media_id]
            return Media(media_id, platform, mime_type, make(), None, filename)
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


def sample_audio(frames: int = 56) -> bytes:
    """Two seconds of silence as an MP3: MPEG-1 Layer III frames, mono, 32 kbit/s, 32 kHz.

    A frame whose side information is all zero decodes to silence, so no encoder is needed.
    """
    header = b"\xff\xfb\x18\xc0"
    return (header + bytes(144 - len(header))) * frames


def sample_document() -> bytes:
    """A one-page PDF: a shop's receipt."""
    text = b"BT /F1 16 Tf 36 100 Td (Receipt 1042: linen jacket, size M, 89.00 EUR) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 200] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    count = len(objects) + 1
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % count
    xref += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, len(pdf))
    return pdf + xref + trailer


#: Each sample file: its type, its name, and how to make its bytes.
_SAMPLES = {
    SAMPLE_PICTURE_ID: ("image/png", "hi.png", sample_picture),
    SAMPLE_AUDIO_ID: ("audio/mpeg", "voice-note.mp3", sample_audio),
    SAMPLE_DOCUMENT_ID: ("application/pdf", "receipt-1042.pdf", sample_document),
}
