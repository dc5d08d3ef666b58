"""Media: bring each file a customer sends into SNORQ's storage, and learn who they are.

The inbound worker stores a message at once, its attachments PENDING (staff see a
placeholder), then queues :func:`fetch_attachment` for each on the media queue, so
a slow or failing download never holds up ingest. One fetch:

1. asks the platform for the file the way it requires (the adapter's ``open_media``:
   WhatsApp media id → five-minute link → download with the token; Messenger the
   attachment's link; TikTok the Business Messaging download call), asking again,
   in the same attempt, for a link that expired;
2. reads it into a temporary file, stopping at the size limit (``SNORQ_MEDIA_MAX_BYTES``
   and the platform's own);
3. checks its type, from its bytes, against the kind of file the message says it is;
4. keeps it (``app/storage.py``) and marks it AVAILABLE, or FAILED with a reason,
   and tells staff pages (``attachment:status``), which show it without a reload.

A TemporaryError is retried with backoff, ``MAX_RETRIES`` times; the last attempt
marks FAILED. The clock's sweep queues again attachments whose job was lost and
fails those still pending after ``GIVE_UP_AFTER``: none stays PENDING forever.

:func:`fetch_profile` (maintenance queue) asks Messenger's User Profile API or
TikTok's conversation participants for a customer's name and picture, keeps the
picture like any file (the platforms' links expire) and asks again once the profile
is ``PROFILE_MAX_AGE`` old. WhatsApp names customers in every webhook already.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import dramatiq
import requests
from dramatiq import Retry
from dramatiq.errors import BrokerError
from redis import RedisError

from app import audit, media_types, messages
from app.config import get_settings
from app.db import utcnow
from app.messages import Notice
from app.models import (
    Attachment,
    AttachmentStatus,
    ConnectionStatus,
    Contact,
    Direction,
    Message,
)
from app.platforms import get_platform
from app.platforms.base import MediaSource
from app.platforms.errors import AuthError, ErrorCode, PermanentError, PlatformError, TemporaryError
from app.storage import get_storage
from workers import tokens
from workers.broker import MAINTENANCE, MEDIA
from workers.outbound import Thread, load_thread, retries_so_far, retry_delay_ms

log = logging.getLogger(__name__)

#: Retries after the first attempt: about two minutes of trying (1 s, 2 s… 30 s apart).
MAX_RETRIES = 8
#: An attachment PENDING and untouched this long lost its job: the sweep queues it again.
SWEEP_GRACE = datetime.timedelta(minutes=5)
#: An attachment still PENDING this long after it arrived is given up.
GIVE_UP_AFTER = datetime.timedelta(hours=24)
#: How long a customer's profile is kept before it is asked for again.
PROFILE_MAX_AGE = datetime.timedelta(days=7)
#: The largest profile picture kept.
AVATAR_MAX_BYTES = 5 * 1000 * 1000

#: Bytes read from the platform at a time, and kept in memory before spilling to disk.
CHUNK = 64 * 1024
SPOOL_BYTES = 1024 * 1024


# -- attachments ----------------------------------------------------------------------


@dramatiq.actor(queue_name=MEDIA, max_retries=MAX_RETRIES, time_limit=600_000)
def fetch_attachment(attachment_id: int) -> None:
    """Fetch one attachment's file into storage; running it twice keeps it once."""
    pending = _pending(attachment_id)
    if pending is None:
        return
    attachment, message, thread = pending
    try:
        notices = _fetch(attachment, message, thread)
    except TemporaryError as error:
        retries = retries_so_far()
        if retries < MAX_RETRIES:
            raise Retry(error.message, delay=retry_delay_ms(retries, error.retry_after)) from None
        reason = f"{error.message} (gave up after {retries + 1} attempts)"
        notices = messages.attachment_failed(attachment.id, reason)
    except PlatformError as error:
        notices = messages.attachment_failed(attachment.id, error.message)
    messages.publish(notices)


def _pending(attachment_id: int) -> tuple[Attachment, Message, Thread] | None:
    """A PENDING attachment with its message and thread; None once settled or deleted."""
    row = (
        Attachment.select(Attachment, Message)
        .join(Message)
        .where(Attachment.id == attachment_id, Attachment.status == AttachmentStatus.PENDING)
        .first()
    )
    thread = None if row is None else load_thread(row.message.conversation_id)
    return None if thread is None else (row, row.message, thread)


def _fetch(attachment: Attachment, message: Message, thread: Thread) -> list[Notice]:
    """Download, check and keep the file; the notices of its new status.

    Raises:
      PlatformError: TemporaryError to try again later; any other fails it.
    """
    if not attachment.platform_media_id and not attachment.source_url:
        raise PermanentError(ErrorCode.REJECTED, "The platform named no file to fetch.")
    platform = thread.platform
    source = MediaSource(
        kind=attachment.kind,
        media_id=attachment.platform_media_id,
        url=attachment.source_url,
        message_id=message.external_id,
        thread_id=thread.conversation.external_thread_id,
    )
    limit = min(get_settings().media_max_bytes, platform.max_media_bytes)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as file:
        try:
            with _open(thread, source) as response:
                declared = attachment.mime_type or response.headers.get("Content-Type")
                download = read_capped(response, limit, file)
        except PlatformError as error:
            detail = f"attachment {attachment.id}: {audit.outcome(error)}"
            _audit(thread, "media_fetch", detail, ok=False)
            raise
        mime_type = media_types.detect(download.head, declared, attachment.kind)
        reason = media_types.refusal(attachment.kind, mime_type)
        if reason is not None:
            detail = f"attachment {attachment.id}: refused, {mime_type}"
            _audit(thread, "media_fetch", detail, ok=False)
            raise PermanentError(ErrorCode.REJECTED, reason)
        key = f"attachments/{attachment.organization_id}/{attachment.id}"
        get_storage().put(key, file, mime_type)
    _audit(thread, "media_fetch", f"attachment {attachment.id}: {download.size} bytes", ok=True)
    return messages.attachment_available(
        attachment.id,
        storage_key=key,
        mime_type=mime_type,
        size=download.size,
        sha256=download.sha256,
        filename=media_types.file_name(
            attachment.filename or _link_name(attachment.source_url), attachment.kind, mime_type
        ),
    )


def _link_name(url: str | None) -> str | None:
    """The file name at the end of a link's path (Messenger names files only there)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else ""
    return name if "." in name.strip(".") else None


def _open(thread: Thread, source: MediaSource) -> requests.Response:
    """The platform's answer carrying the file; an expired token is refreshed once."""
    stale = thread.connection.access_token()
    try:
        return thread.platform.open_media(thread.account(stale), source)
    except AuthError as error:
        if error.code != ErrorCode.TOKEN_EXPIRED:
            raise
        fresh = tokens.refresh_access_token(thread.connection.id, stale)
        if fresh is None:
            raise
        return thread.platform.open_media(thread.account(fresh), source)


@dataclass(frozen=True)
class Download:
    """What :func:`read_capped` wrote: its size, SHA-256 (hex) and first bytes."""

    size: int
    sha256: str
    head: bytes


def read_capped(response: requests.Response, limit: int, file: BinaryIO) -> Download:
    """Write a streaming answer's body to ``file``, never more than ``limit`` bytes.

    Raises:
      PermanentError: the file is larger than ``limit``.
      TemporaryError: the download broke off.
    """
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(None, limit)
            head += chunk[: max(0, media_types.HEAD_BYTES - len(head))]
            digest.update(chunk)
            file.write(chunk)
    except requests.RequestException:
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE, "The download broke off before the end."
        ) from None
    return Download(size, digest.hexdigest(), head)


def _too_large(size: int | None, limit: int) -> PermanentError:
    """The refusal of a file of ``size`` bytes (None: more than were read)."""
    has = f"has {size} bytes" if size is not None else f"is larger than {limit} bytes"
    return PermanentError(ErrorCode.REJECTED, f"The file {has}; SNORQ keeps at most {limit}.")


# -- after ingest -----------------------------------------------------------------------


def after_ingest(notices: list[Notice]) -> None:
    """Queue what newly stored messages call for: each attachment's fetch, and the
    profile of each customer SNORQ knows too little about (the inbound worker calls
    this once its transaction committed).

    A broker that is down only delays the fetches: the sweep queues them again.
    """
    attachment_ids: list[int] = []
    conversations: dict[int, int] = {}
    for notice in notices:
        if notice.type != "new:message":
            continue
        message, conversation = notice.data["message"], notice.data["conversation"]
        pending = AttachmentStatus.PENDING
        attachment_ids += [a["id"] for a in message["attachments"] if a["status"] == pending]
        inbound = message["direction"] == Direction.INBOUND
        if inbound and get_platform(conversation["platform"]).profiles:
            conversations[conversation["contact"]["id"]] = conversation["id"]
    try:
        for attachment_id in attachment_ids:
            fetch_attachment.send(attachment_id)
        for contact_id in _without_fresh_profile(list(conversations)):
            fetch_profile.send(conversations[contact_id])
    except (RedisError, BrokerError) as error:
        log.warning("Could not queue media work (%s); the media sweep will", type(error).__name__)


def _without_fresh_profile(contact_ids: list[int]) -> list[int]:
    if not contact_ids:
        return []
    stale = Contact.profile_fetched_at.is_null() | (
        Contact.profile_fetched_at < utcnow() - PROFILE_MAX_AGE
    )
    query = Contact.select(Contact.id).where(Contact.id.in_(contact_ids), stale)
    return [row[0] for row in query.tuples()]


# -- profiles ---------------------------------------------------------------------------


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=3)
def fetch_profile(conversation_id: int) -> None:
    """Learn a customer's name and picture; a refusal (no permission) changes nothing."""
    thread = load_thread(conversation_id)
    if thread is None or not thread.platform.profiles:
        return
    if thread.connection.status != ConnectionStatus.ACTIVE:
        # Asked again with the customer's next message, once the account is reconnected.
        return
    contact = thread.contact
    if not messages.claim_profile(contact.id, utcnow() - PROFILE_MAX_AGE):
        return
    account = thread.account(thread.connection.access_token())
    try:
        profile = thread.platform.fetch_profile(account, thread.recipient())
    except TemporaryError as error:
        messages.release_profile(contact.id)
        _audit(thread, "profile_fetch", f"contact {contact.id}: {audit.outcome(error)}", ok=False)
        raise Retry(
            error.message, delay=retry_delay_ms(retries_so_far(), error.retry_after)
        ) from None
    except PlatformError as error:
        _audit(thread, "profile_fetch", f"contact {contact.id}: {audit.outcome(error)}", ok=False)
        return
    _audit(thread, "profile_fetch", f"contact {contact.id}", ok=True)
    avatar_key = _keep_avatar(thread, profile.avatar_url) if profile.avatar_url else None
    notices = messages.record_profile(
        contact.id, display_name=profile.display_name, avatar_key=avatar_key
    )
    messages.publish(notices)
    if avatar_key and contact.avatar_key and contact.avatar_key != avatar_key:
        get_storage().delete(contact.avatar_key)


def _keep_avatar(thread: Thread, url: str) -> str | None:
    """The key of the customer's picture, now in storage; None if it could not be had."""
    contact = thread.contact
    account = thread.account(thread.connection.access_token())
    source = MediaSource(kind="image", url=url)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as file:
        try:
            with thread.platform.open_media(account, source) as response:
                declared = response.headers.get("Content-Type")
                download = read_capped(response, AVATAR_MAX_BYTES, file)
        except PlatformError as error:
            detail = f"picture of contact {contact.id}: {audit.outcome(error)}"
            _audit(thread, "profile_fetch", detail, ok=False)
            return None
        mime_type = media_types.detect(download.head, declared, "image")
        if media_types.refusal("image", mime_type) is not None:
            return None
        extension = media_types.EXTENSIONS[mime_type]
        key = f"avatars/{contact.organization_id}/{contact.id}/{download.sha256[:16]}{extension}"
        get_storage().put(key, file, mime_type)
    return key


# -- the sweep --------------------------------------------------------------------------


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=0)
def sweep_media() -> None:
    """Leave no attachment PENDING forever (the clock queues this every few minutes).

    Fails those pending longer than ``GIVE_UP_AFTER`` and queues again those whose
    fetch job was lost (the broker was down, a worker died).
    """
    now = utcnow()
    hours = int(GIVE_UP_AFTER.total_seconds() // 3600)
    reason = f"SNORQ could not fetch this file within {hours} hours."
    messages.publish(messages.fail_abandoned_attachments(now - GIVE_UP_AFTER, reason))
    resumed = messages.resume_stuck_attachments(now, SWEEP_GRACE)
    for attachment_id in resumed:
        fetch_attachment.send(attachment_id)
    if resumed:
        log.warning("Queued %d media fetch(es) again whose job was lost", len(resumed))


# -- shared -----------------------------------------------------------------------------


def _audit(thread: Thread, action: str, detail: str, *, ok: bool) -> None:
    audit.record(
        action,
        platform=thread.connection.platform,
        ok=ok,
        detail=detail,
        organization_id=thread.conversation.organization_id,
        connection_id=thread.connection.id,
    )
