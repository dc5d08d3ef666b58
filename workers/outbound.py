"""Outbound: send each staff reply once, within the platform's rules, and say how it ended.

One job sends one PENDING reply, in this order:

1. read it with its thread, unless an attempt holds it or it may have gone out;
2. check the connection, the messaging window and the reply itself: FAILED at once,
   with a reason staff can act on, when one of them says no;
3. claim it and mark it unconfirmed in one statement (from here on it may reach the
   platform; two copies of the job never both claim it), then take a rate-limit
   token (``workers/limits.py``) right before the call; with none free, give the
   claim back and come again at the slot reserved for it: a wait, never a retry or
   a failure;
4. call the platform adapter;
5. record SENT with the platform's id, or what went wrong:

   - TemporaryError (429, 5xx, throttling codes, unreachable): Dramatiq retries the
     job after 1 s, 2 s, 4 s… (at most 30 s, never sooner than Retry-After), at
     most ``MAX_RETRIES`` times; the last attempt records FAILED with its code;
   - a TemporaryError that may have reached the platform (it never answered) is not
     repeated: the reply stays unconfirmed until a status or echo webhook settles
     it, or the sweep fails it (README, "Sending replies");
   - AuthError(TOKEN_EXPIRED): one refresh (``workers/tokens.py``), one more try;
   - any other PlatformError: FAILED at once;
   - an error that is not the platform's (SNORQ's database or Redis unreachable):
     Dramatiq retries the job, at most ``OUTAGE_RETRIES`` times.

The mark of step 3 is what makes a worker that dies in the middle of a platform
call safe: an unconfirmed send is never claimed again, so the sweep fails it instead
of sending it twice. An attempt that breaks before it (the database went away)
leaves nothing behind, so the job's retry starts over.
Every platform call is audited: who, what, the result (never the token or the text).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import dramatiq
from dramatiq import Retry
from dramatiq.middleware import CurrentMessage
from redis import RedisError

from app import attachments, audit, messages, metrics
from app.config import get_settings
from app.db import utcnow
from app.models import (
    ConnectionStatus,
    Contact,
    Conversation,
    Direction,
    Message,
    PlatformConnection,
)
from app.platforms import get_platform
from app.platforms.base import Account, Outbound, Platform, Recipient
from app.platforms.errors import AuthError, ErrorCode, PermanentError, PlatformError, TemporaryError
from app.windows import HUMAN_AGENT_HOURS, WINDOW_HOURS, window_open
from workers import limits, tokens
from workers.broker import MAINTENANCE, MAX_BACKOFF_MS, MIN_BACKOFF_MS, OUTBOUND

log = logging.getLogger(__name__)

#: Retries after the first attempt when the platform fails (the seed's policy), counted
#: over all of the job's attempts.
MAX_RETRIES = 3
#: Retries of an attempt that SNORQ's own database or Redis broke (Dramatiq's backoff,
#: 1 s doubling to 30 s: about three minutes), so the job outlasts a short outage
#: instead of leaving the reply to the sweep.
OUTAGE_RETRIES = 10
#: A send idle this long (created, deferred or claimed, and no job took it up) lost
#: its job: the sweep queues it again.
SWEEP_GRACE = datetime.timedelta(minutes=2)


@dataclass(frozen=True)
class Thread:
    """A conversation, the customer in it and the account SNORQ answers from."""

    conversation: Conversation
    contact: Contact
    connection: PlatformConnection

    @property
    def platform(self) -> Platform:
        return get_platform(self.connection.platform)

    def recipient(self) -> Recipient:
        return Recipient(
            self.contact.external_id, self.contact.phone, self.conversation.external_thread_id
        )

    def account(self, token: str) -> Account:
        return Account(self.connection.account_id, token)


# -- replies --------------------------------------------------------------------------


@dramatiq.actor(queue_name=OUTBOUND, max_retries=OUTAGE_RETRIES, time_limit=120_000)
def send_message(message_id: int) -> None:
    """Send one staff reply; running it twice sends it once (only the claim holder sends)."""
    found = messages.sendable(message_id)
    if found is None:
        return
    message, *parts = found
    thread = Thread(*parts)
    try:
        outbound = _outbound(message, thread)
        token = thread.connection.access_token()
    except PlatformError as error:
        # Failed only by the attempt that takes it: another may be sending it.
        if messages.claim_send(message.id, error.message, settle_by=utcnow()):
            _fail(message, thread, error)
        return
    reason = f"Sending to {thread.platform.title}; waiting for its answer."
    if not messages.claim_send(message.id, reason, settle_by=_settle_by()):
        return
    try:
        _send(message, thread, outbound, token)
    except TemporaryError as error:
        _temporary_failure(message, thread, error)
    except PlatformError as error:
        _fail(message, thread, error)


def _send(message: Message, thread: Thread, outbound: Outbound, stale: str) -> None:
    try:
        _attempt(message, thread, outbound, stale)
    except AuthError as error:
        if error.code != ErrorCode.TOKEN_EXPIRED:
            raise
        _attempt(message, thread, outbound, _refreshed_token(thread, stale))


def _outbound(message: Message, thread: Thread) -> Outbound:
    """The reply as the adapter sends it, once the connection, reply and window allow it.

    Raises:
      PlatformError: the reply may not go out (FAILED at once).
    """
    platform = thread.platform
    if thread.connection.status == ConnectionStatus.NEEDS_REAUTH:
        raise AuthError(
            ErrorCode.TOKEN_EXPIRED,
            f"This {platform.title} account must be reconnected in SNORQ before replies "
            f"can go out. {thread.connection.status_reason}".strip(),
        )
    attached = attachments.reply_media(message, platform)
    extras = {} if attached else platform.validate_reply(message.content, message.payload or {})
    media, text = attached or (None, message.content)
    human_agent = window_rule(
        platform,
        thread.conversation.last_inbound_at,
        utcnow(),
        template="template" in extras,
        human_agent_enabled=get_settings().messenger_human_agent,
    )
    return Outbound(
        snorq_message_id=message.id,
        text=text,
        template=extras.get("template"),
        quick_replies=tuple(extras.get("quick_replies", ())),
        media=media,
        human_agent=human_agent,
    )


def window_rule(
    platform: Platform,
    last_inbound_at: datetime.datetime | None,
    now: datetime.datetime,
    *,
    template: bool,
    human_agent_enabled: bool,
) -> bool:
    """Whether a reply now needs Messenger's HUMAN_AGENT tag.

    Raises:
      PermanentError: OUTSIDE_WINDOW, saying what the platform still allows.
    """
    if window_open(platform.name, last_inbound_at, now):
        return False
    if platform.name == "whatsapp" and template:
        return False
    human_agent = platform.name == "facebook" and human_agent_enabled
    if human_agent and window_open(platform.name, last_inbound_at, now, human_agent=True):
        return True
    raise PermanentError(ErrorCode.OUTSIDE_WINDOW, _window_reason(platform, human_agent))


def _window_reason(platform: Platform, human_agent: bool) -> str:
    hours = HUMAN_AGENT_HOURS if human_agent else WINDOW_HOURS[platform.name]
    span = f"{hours // 24} days" if hours > 48 else f"{hours} hours"
    closed = f"The customer has not written in the last {span}"
    if platform.name == "whatsapp":
        return f'{closed}: WhatsApp only allows an approved template now (send a "template").'
    if platform.name == "facebook" and not human_agent:
        return (
            f"{closed}: Messenger allows no reply now (replies up to 7 days need the "
            "HUMAN_AGENT tag: FACEBOOK_HUMAN_AGENT=1, once Meta approved it)."
        )
    return f"{closed}: {platform.title} allows no reply until they write again."


def _attempt(message: Message, thread: Thread, outbound: Outbound, token: str) -> None:
    """One platform call with a rate-limit token, or a wait for one.

    The claim marked the send unconfirmed, so the token is taken right before the call
    (a wait for one gives the send back: nothing was sent).
    """
    try:
        wait = limits.for_replies(thread.connection).take(f"reply:{message.id}")
    except RedisError:
        # Nothing went out: without the mark, the retry (or the sweep) sends it.
        messages.defer_send(message.id, utcnow())
        raise
    if wait:
        metrics.RATE_LIMIT_WAIT_SECONDS.labels(thread.connection.platform, "reply").observe(wait)
        _wait_for_token(message.id, wait)
        return
    try:
        external_id = thread.platform.send(thread.account(token), thread.recipient(), outbound)
    except PlatformError as error:
        _audit(thread, "send", message, ok=False, detail=audit.outcome(error))
        raise
    with messages.transaction():
        # One commit for the entry and the outcome it describes.
        _audit(thread, "send", message, ok=True, detail=f"sent as {external_id}")
        notices = messages.record_sent(message, external_id)
    _count_send(thread, "sent")
    messages.publish(notices)


def _wait_for_token(message_id: int, wait: float) -> None:
    """Come back when a token frees up; the same retry budget, not a retry."""
    delay_ms = int(wait * 1000)
    messages.defer_send(message_id, utcnow() + datetime.timedelta(milliseconds=delay_ms))
    send_message.send_with_options(args=(message_id,), delay=delay_ms, retries=retries_so_far())


def _refreshed_token(thread: Thread, stale: str) -> str:
    """A new token after the platform refused ``stale`` as expired (once per attempt)."""
    fresh = tokens.refresh_access_token(thread.connection.id, stale)
    if fresh is None:
        raise AuthError(
            ErrorCode.TOKEN_EXPIRED,
            f"{thread.platform.title} no longer accepts SNORQ's access to this account; "
            "reconnect it in SNORQ, then retry the message.",
        )
    return fresh


def _temporary_failure(message: Message, thread: Thread, error: TemporaryError) -> None:
    if error.maybe_delivered:
        title = thread.platform.title
        reason = (
            f"{error.message} The message may have been delivered: SNORQ will not send it "
            f"again by itself. Check the conversation on {title} before retrying."
        )
        messages.publish(messages.record_unconfirmed(message.id, reason, settle_by=_settle_by()))
        _count_send(thread, "unconfirmed", error.code)
        return
    retries = retries_so_far()
    if retries >= MAX_RETRIES:
        _fail(message, thread, error, suffix=f" (gave up after {retries + 1} attempts)")
        return
    _count_send(thread, "retried", error.code)
    delay = retry_delay_ms(retries, error.retry_after)
    messages.defer_send(message.id, utcnow() + datetime.timedelta(milliseconds=delay))
    raise Retry(error.message, delay=delay) from None


def _settle_by() -> datetime.datetime:
    """Until when an unconfirmed send waits for a webhook before the sweep fails it."""
    return utcnow() + datetime.timedelta(seconds=get_settings().send_unconfirmed_wait)


def _fail(message: Message, thread: Thread, error: PlatformError, suffix: str = "") -> None:
    messages.publish(messages.record_failed(message.id, error.code, error.message + suffix))
    _count_send(thread, "failed", error.code)


def _count_send(thread: Thread, outcome: str, code: ErrorCode | None = None) -> None:
    """Count one send attempt's outcome (sent, retried, unconfirmed, failed)."""
    name = "" if code is None else code.name
    metrics.SENDS.labels(thread.connection.platform, outcome, name).inc()


def retries_so_far() -> int:
    """How often Dramatiq has retried the running job (0 on its first run)."""
    current = CurrentMessage.get_current_message()
    return 0 if current is None else current.options.get("retries", 0)


def retry_delay_ms(retries: int, retry_after: float | None) -> int:
    """1 s, 2 s, 4 s… up to 30 s, and never sooner than the platform's Retry-After."""
    backoff = min(MIN_BACKOFF_MS * 2**retries, MAX_BACKOFF_MS)
    asked = 0 if retry_after is None else int(retry_after * 1000)
    return max(backoff, asked)


# -- read receipts and typing ---------------------------------------------------------


@dramatiq.actor(queue_name=OUTBOUND, max_retries=MAX_RETRIES)
def send_read_receipt(conversation_id: int) -> None:
    """Tell the customer staff read their messages (WhatsApp read receipt, Messenger seen)."""
    thread, latest = _signal_target(conversation_id)
    if thread is None:
        return
    wait = limits.for_calls(thread.connection).take(f"read:{conversation_id}")
    if wait:
        platform = thread.connection.platform
        metrics.RATE_LIMIT_WAIT_SECONDS.labels(platform, "read_receipt").observe(wait)
        delay_ms = int(wait * 1000)
        send_read_receipt.send_with_options(
            args=(conversation_id,), delay=delay_ms, retries=retries_so_far()
        )
        return
    try:
        _signal(thread, "mark_read", latest)
    except TemporaryError as error:
        delay = retry_delay_ms(retries_so_far(), error.retry_after)
        raise Retry(error.message, delay=delay) from None


@dramatiq.actor(queue_name=OUTBOUND, max_retries=0)
def send_typing(conversation_id: int) -> None:
    """Show the customer that staff are typing; dropped rather than late when throttled."""
    thread, latest = _signal_target(conversation_id)
    if thread is None or limits.for_calls(thread.connection).take():
        return
    try:
        _signal(thread, "typing", latest)
    except TemporaryError:
        return


def _signal_target(conversation_id: int) -> tuple[Thread | None, str]:
    """The thread and the customer's latest message id, or None when there is nothing to do."""
    thread = load_thread(conversation_id)
    if thread is None or thread.connection.status != ConnectionStatus.ACTIVE:
        return None, ""
    latest = (
        Message.select(Message.external_id)
        .where(
            Message.conversation == conversation_id,
            Message.direction == Direction.INBOUND,
            Message.external_id.is_null(False),
        )
        .order_by(Message.id.desc())
        .scalar()
    )
    return (thread, latest) if latest else (None, "")


def _signal(thread: Thread, action: str, latest: str) -> None:
    """Call the adapter's ``mark_read`` or ``typing`` and audit it; refusals are only logged."""
    call = getattr(thread.platform, action)
    account = thread.account(thread.connection.access_token())
    try:
        call(account, thread.recipient(), latest)
    except TemporaryError as error:
        _audit(thread, action, None, ok=False, detail=audit.outcome(error))
        raise
    except PlatformError as error:
        _audit(thread, action, None, ok=False, detail=audit.outcome(error))
        log.warning("%s %s refused: %s", thread.platform.title, action, error.message)
        return
    _audit(thread, action, None, ok=True, detail=f"conversation {thread.conversation.id}")


# -- the sweep ------------------------------------------------------------------------

UNSETTLED_REASON = (
    "The platform never confirmed this message; it may have been delivered. "
    "Check the conversation on the platform before sending it again."
)


@dramatiq.actor(queue_name=MAINTENANCE, max_retries=0)
def sweep_sends() -> None:
    """Leave no reply PENDING forever (the clock queues this every minute).

    Fails unconfirmed sends whose wait for a webhook is over, fails replies pending
    longer than ``send_give_up_after``, and queues again those whose job was lost.
    """
    settings = get_settings()
    now = utcnow()
    messages.publish(messages.fail_unsettled(now, UNSETTLED_REASON))
    give_up = datetime.timedelta(seconds=settings.send_give_up_after)
    abandoned = (
        f"SNORQ could not send this message within {_hours(give_up)}; "
        "send it again if it still matters."
    )
    messages.publish(
        messages.fail_abandoned(now, now - give_up, ErrorCode.PLATFORM_UNAVAILABLE, abandoned)
    )
    resumed = messages.resume_stuck(now, SWEEP_GRACE)
    for message_id in resumed:
        send_message.send(message_id)
    if resumed:
        log.warning("Queued %d send(s) again whose job was lost", len(resumed))


def _hours(span: datetime.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


# -- shared ---------------------------------------------------------------------------


def load_thread(conversation_id: int) -> Thread | None:
    parts = messages.thread_of(conversation_id)
    return None if parts is None else Thread(*parts)


def _audit(thread: Thread, action: str, message: Message | None, *, ok: bool, detail: str) -> None:
    audit.record(
        action,
        platform=thread.connection.platform,
        ok=ok,
        detail=detail if message is None else f"message {message.id}: {detail}",
        organization_id=thread.conversation.organization_id,
        connection_id=thread.connection.id,
        user_id=None if message is None else message.sent_by_id,
    )
