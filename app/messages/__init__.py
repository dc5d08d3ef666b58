"""The only code that writes conversations and messages.

Each public function makes one change in one transaction and returns the live
notices that describe it; the caller publishes them once the transaction has
committed (:func:`publish`), so staff never see something that was rolled back.

Exactly-once rests on the database, not on checks: an external id is unique per
connection and every insert is insert-or-ignore, so two workers storing the same
platform message at the same moment store it once. Statuses only move forward.

The modules, each built on those before it: ``notices`` (Notice, publish),
``threads`` (contacts and conversations), ``statuses`` (status ordering),
``external_ids`` (a send's platform id, early statuses), ``receipts`` (status
events), ``inbound``, ``outbound``, ``media`` (attachments), ``profiles`` and
``sweeps`` (what the clock calls).
"""

from app.messages.inbound import record_message, transaction
from app.messages.media import attachment_available, attachment_failed, create_media_outbound
from app.messages.notices import Notice, publish
from app.messages.outbound import (
    claim_send,
    create_outbound,
    defer_send,
    mark_conversation_read,
    record_failed,
    record_sent,
    record_unconfirmed,
    retry_failed,
    sendable,
    thread_of,
)
from app.messages.profiles import claim_profile, record_profile, release_profile
from app.messages.receipts import apply_status, apply_watermark
from app.messages.sweeps import (
    fail_abandoned,
    fail_abandoned_attachments,
    fail_unsettled,
    resume_stuck,
    resume_stuck_attachments,
)
from app.messages.threads import forget_cached_ids

__all__ = [
    "Notice",
    "apply_status",
    "apply_watermark",
    "attachment_available",
    "attachment_failed",
    "claim_profile",
    "claim_send",
    "create_media_outbound",
    "create_outbound",
    "defer_send",
    "fail_abandoned",
    "fail_abandoned_attachments",
    "fail_unsettled",
    "forget_cached_ids",
    "mark_conversation_read",
    "publish",
    "record_failed",
    "record_message",
    "record_profile",
    "record_sent",
    "record_unconfirmed",
    "release_profile",
    "resume_stuck",
    "resume_stuck_attachments",
    "retry_failed",
    "sendable",
    "thread_of",
    "transaction",
]
