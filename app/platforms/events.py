"""What a webhook means, in SNORQ's words: the normalized events adapters parse into.

Every event names the ``account_id`` it is for (phone-number id, Page id, TikTok
business id), which routes it to a connection and so to one organization.
Timestamps are naive UTC datetimes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ContactRef:
    """The customer on the other side.

    ``external_id`` is the platform's stable id for them (WhatsApp: the BSUID when
    present, else the ``wa_id``; Messenger: the PSID; TikTok: the user id).
    """

    external_id: str
    phone: str | None = None
    display_name: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class MediaRef:
    """A media file the platform holds; fetched later by the media worker."""

    kind: str
    media_id: str | None = None
    url: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class MessageEvent:
    """A message in a conversation.

    ``direction`` is INBOUND for a customer's message and OUTBOUND for an echo of
    one the business sent (from SNORQ or from the platform's own inbox).
    ``snorq_message_id`` is SNORQ's message id when the platform echoes it back
    (Messenger ``metadata``), so an echo of our own send links to it.
    """

    account_id: str
    contact: ContactRef
    external_id: str
    direction: str
    content_type: str
    content: str
    timestamp: datetime.datetime
    payload: dict = field(default_factory=dict)
    thread_id: str | None = None
    media: tuple[MediaRef, ...] = ()
    snorq_message_id: int | None = None


@dataclass(frozen=True)
class StatusEvent:
    """A delivery status of one outbound message, by its external id.

    ``error_code`` is SNORQ's code (see ``errors.ErrorCode``) for FAILED;
    ``snorq_message_id`` comes from WhatsApp's ``biz_opaque_callback_data``.
    """

    account_id: str
    external_id: str
    status: str
    timestamp: datetime.datetime
    error_code: int | None = None
    error_message: str | None = None
    snorq_message_id: int | None = None


@dataclass(frozen=True)
class WatermarkEvent:
    """Everything sent to this contact at or before ``watermark`` reached ``status``."""

    account_id: str
    contact_external_id: str
    status: str
    watermark: datetime.datetime


@dataclass(frozen=True)
class AuthorizationRevoked:
    """The account owner removed the app's access; a person must reconnect."""

    account_id: str
    reason: str = ""


@dataclass(frozen=True)
class PlatformNotice:
    """Something the platform reported that changes no message (logged and counted).

    For example a WhatsApp ``value.errors[]`` entry.
    """

    account_id: str
    code: str
    message: str


Event = MessageEvent | StatusEvent | WatermarkEvent | AuthorizationRevoked | PlatformNotice
