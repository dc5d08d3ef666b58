"""Files staff attach to replies: checked and kept when the API receives one, read back
when the outbound worker sends it.

The type is what the file's first bytes show (``app/media_types.py``), never the
browser's word; the platform's own limits are checked before anything is kept, so
a file it would refuse is a clear 400 instead of a failed send.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import BinaryIO

from app import media_types
from app.config import get_settings
from app.models import Attachment, ContentType, Message
from app.platforms.base import OutboundMedia, Platform
from app.platforms.errors import ErrorCode, PermanentError
from app.storage import MissingFile, get_storage

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Upload:
    """A file received for a reply and kept in storage; the Attachment row's fields."""

    kind: str
    mime_type: str
    filename: str
    size: int
    sha256: str
    storage_key: str

    def fields(self) -> dict:
        return self.__dict__.copy()


def receive(
    organization_id: int,
    file: BinaryIO,
    *,
    declared_type: str | None,
    filename: str | None,
    platform: Platform,
    caption: str,
) -> Upload:
    """Check a file staff attached to a reply for ``platform`` and keep it.

    Raises:
      PermanentError: REJECTED, saying why (empty, a type SNORQ does not keep, or
        over a limit of SNORQ or of the platform).
    """
    head = file.read(media_types.HEAD_BYTES)
    size = file.seek(0, 2)
    if size == 0:
        raise PermanentError(ErrorCode.REJECTED, "The attached file is empty.")
    mime_type = media_types.detect(head, declared_type)
    kind = media_types.kind_of(mime_type)
    reason = media_types.refusal(kind, mime_type)
    if reason is not None:
        raise PermanentError(ErrorCode.REJECTED, reason)
    limit = get_settings().media_max_bytes
    if size > limit:
        raise PermanentError(
            ErrorCode.REJECTED, f"SNORQ keeps files of at most {limit} bytes; this one has {size}."
        )
    platform.validate_media(kind, mime_type, size, caption)
    sha256 = _sha256(file)
    key = f"outbound/{organization_id}/{secrets.token_hex(16)}"
    get_storage().put(key, file, mime_type)
    return Upload(
        kind=kind,
        mime_type=mime_type,
        filename=media_types.file_name(filename, kind, mime_type),
        size=size,
        sha256=sha256,
        storage_key=key,
    )


def _sha256(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def reply_media(message: Message, platform: Platform) -> tuple[OutboundMedia, str] | None:
    """The file a staff reply carries and its caption, checked again; None for text.

    Raises:
      PermanentError: the platform would not take it, or the file is gone.
    """
    if message.content_type == ContentType.TEXT:
        # A reply with a file takes the file's kind (``create_media_outbound``).
        return None
    attachment = Attachment.get_or_none(
        Attachment.message == message.id, Attachment.storage_key.is_null(False)
    )
    if attachment is None:
        return None
    caption = (message.payload or {}).get("caption", "")
    platform.validate_media(attachment.kind, attachment.mime_type, attachment.size, caption)
    try:
        data = get_storage().read(attachment.storage_key)
    except MissingFile:
        raise PermanentError(
            ErrorCode.REJECTED, "The attached file is no longer in SNORQ's storage."
        ) from None
    media = OutboundMedia(attachment.kind, attachment.mime_type, attachment.filename, data)
    return media, caption
