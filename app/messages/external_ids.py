"""A platform's id for SNORQ's own send, and the statuses that arrived before it.

A send learns its external id from the platform's answer or from its echo,
whichever comes first (an echo names the send, or, on TikTok, matches it:
:func:`settle_by_echo`). Statuses for an id no message has yet are kept as early
statuses (:func:`app.messages.receipts.apply_status`) and applied here, in
order, once a message takes that id.
"""

from __future__ import annotations

import datetime
import zlib

from peewee import SQL, Case, Select, Value, fn

from app.db import database, is_postgres, utcnow
from app.messages.notices import Notice, status_notices
from app.messages.statuses import STATUS_COLUMNS, advance
from app.models import ContentType, Direction, EarlyStatus, Message, MessageStatus
from app.platforms.errors import ErrorCode
from app.platforms.events import MessageEvent
from app.routing import Route
from app.statements import Param, Statement, columns, instances


def link_external_id(route: Route, snorq_message_id: int, external_id: str):
    """Link a platform id to SNORQ's own message; None if that message is not ours."""
    message = Message.get_or_none(
        Message.id == snorq_message_id,
        Message.connection == route.connection_id,
        Message.direction == Direction.OUTBOUND,
    )
    if message is None:
        return None
    if message.external_id is not None:
        return []
    return attach_external_id(message, external_id, utcnow())


def attach_external_id(message: Message, external_id: str, at: datetime.datetime):
    """Record SENT with the platform's id, then apply statuses that arrived first."""
    lock_external_id(message.connection_id, external_id)
    if is_postgres():
        row = _TAKE_UNLESS_TWIN.execute(
            connection_id=message.connection_id, id=message.id, **_take_values(external_id, at)
        ).fetchone()
        if row is not None:
            # No echo of this send was stored first: SENT, and whether early statuses
            # wait, in one statement.
            notices = _sent_notices(message, instances(row, Message))
            return notices + (apply_early_statuses(message, external_id) if row[-1] else [])
    notices = []
    row = _TWIN.execute(
        connection_id=message.connection_id, external_id=external_id, id=message.id
    ).fetchone()
    twin = None if row is None else instances(row, Message)[0]
    if twin is not None:
        # The platform's echo of this very send was stored before the send returned.
        twin.delete_instance()
        notices.append(
            Notice(
                message.organization_id,
                "message:deleted",
                {"id": twin.id, "conversation_id": twin.conversation_id},
            )
        )
    rows = _TAKE.execute(id=message.id, **_take_values(external_id, at)).fetchall()
    updated = [instances(row, Message)[0] for row in rows]
    if not updated:
        return notices
    notices += _sent_notices(message, updated)
    also = []
    if twin is not None and twin.status in STATUS_COLUMNS and twin.status != MessageStatus.SENT:
        at_twin = getattr(twin, STATUS_COLUMNS[twin.status]) or at
        also.append(EarlyStatus(status=twin.status, occurred_at=at_twin))
    return notices + apply_early_statuses(message, external_id, also)


def _sent_notices(message: Message, updated: list[Message]) -> list[Notice]:
    # SNORQ's own text reply carries no file: no need to look for one.
    files = {} if message.content_type == ContentType.TEXT else None
    return status_notices(message.organization_id, updated, kind="message:sent", files=files)


def _twin_query(param: Param, *selected):
    """Another message of the connection already holding the external id."""
    return Message.select(*selected).where(
        Message.connection == param("connection_id"),
        Message.external_id == param("external_id"),
        Message.id != param("id"),
    )


_TWIN = Statement(lambda param: _twin_query(param, *columns(Message)))


def settle_by_echo(route: Route, conversation_id: int, event: MessageEvent) -> list[Notice] | None:
    """Settle the unconfirmed reply an echo naming no SNORQ message is the echo of.

    TikTok's send takes no reference SNORQ could get back, so its ``im_send_msg`` echo
    names no SNORQ message. When the send's answer was lost, or has not come yet, the
    reply waits unconfirmed (PENDING, SEND_UNCONFIRMED: marked before the call, kept
    when no answer came) and the echo is the only word that it went out. The echo is
    that reply's when it is in the same conversation, with the same text, and was made
    after the reply was written and before the reply's wait for a webhook ends
    (``send_lease_until``); of several such replies (the same text sent twice), the
    oldest takes it, and the next echo the next one. A send from the platform's own
    app with the same text at the same moment would be taken for it: the reply is then
    shown SENT though SNORQ's copy may not have gone out, which beats failing, as "may
    have been delivered", a reply that was.

    Returns:
      The notices of the settled reply; None when the echo is no unconfirmed reply's.
    """
    unconfirmed = (
        (Message.connection == route.connection_id)
        & (Message.conversation == conversation_id)
        & (Message.direction == Direction.OUTBOUND)
        & (Message.status == MessageStatus.PENDING)
        & (Message.error_code == ErrorCode.SEND_UNCONFIRMED)
        & Message.external_id.is_null()
        & (Message.content == event.content)
        & (Message.created_at <= event.timestamp)
        & (Message.send_lease_until >= event.timestamp)
    )
    candidates = Message.select().where(unconfirmed).order_by(Message.created_at, Message.id)
    for reply in list(candidates):
        # Checked again as it is taken: another worker may have settled it meanwhile.
        updated = _take_external_id(
            (Message.id == reply.id) & unconfirmed, event.external_id, event.timestamp
        )
        if updated:
            notices = status_notices(reply.organization_id, updated, kind="message:sent")
            return notices + apply_early_statuses(reply, event.external_id)
    return None


def _take_external_id(which, external_id: str, at: datetime.datetime) -> list[Message]:
    """Record SENT with the platform's id on the message ``which`` names, if it has none."""
    values = _take_values(external_id, at)
    return list(_take_query(lambda name: Value(values[name]), which).execute())


def _take_values(external_id: str, at: datetime.datetime) -> dict:
    return {
        "external_id": external_id,
        "at": at,
        "pending": MessageStatus.PENDING,
        "sent": MessageStatus.SENT,
    }


def _take_query(param: Param, which):
    """The update that records SENT with an external id, returning the messages' columns."""
    return (
        Message.update(
            status=Case(
                None, [(Message.status == param("pending"), param("sent"))], Message.status
            ),
            external_id=param("external_id"),
            sent_at=fn.COALESCE(Message.sent_at, param("at")),
            error_code=SQL("NULL"),
            error_message=SQL("NULL"),
            send_lease_until=SQL("NULL"),
        )
        .where(which, Message.external_id.is_null())
        .returning(*columns(Message))
    )


#: A linked echo's, and a send's when a twin is in the way: the message named by its id.
_TAKE = Statement(lambda param: _take_query(param, Message.id == param("id")))


def _take_unless_twin_query(param: Param):
    """The send's take, unless a twin holds the id, and whether early statuses wait for it.

    PostgreSQL only (an update inside WITH). Its row, when it took the id: the
    message's columns, then a flag for early statuses; no row when a twin holds the
    id or the message has one already.
    """
    taken = _take_query(
        param, (Message.id == param("id")) & ~fn.EXISTS(_twin_query(param, SQL("1")))
    ).cte("taken")
    early = EarlyStatus.select(SQL("1")).where(
        EarlyStatus.connection == param("connection_id"),
        EarlyStatus.external_id == param("external_id"),
    )
    return Select([taken], [SQL('"taken".*'), fn.EXISTS(early)]).with_cte(taken)


_TAKE_UNLESS_TWIN = Statement(_take_unless_twin_query)


def apply_early_statuses(message: Message, external_id: str, also=()) -> list[Notice]:
    """Apply, in order, the statuses that arrived before ``message`` had ``external_id``.

    ``also`` adds statuses known another way (an echo's, when the send recorded late).
    """
    lock_external_id(message.connection_id, external_id)
    rows = _EARLY.execute(connection_id=message.connection_id, external_id=external_id)
    early = [instances(row, EarlyStatus)[0] for row in rows.fetchall()]
    receipts = [*early, *also]
    if receipts:
        # The platform saw the message before SNORQ recorded sending it.
        first = min(status.occurred_at for status in receipts)
        Message.update(sent_at=first).where(
            Message.id == message.id, Message.sent_at > first
        ).execute()
    notices = []
    for status in sorted(receipts, key=lambda s: MessageStatus.ORDER.get(s.status, 9)):
        changed = advance(
            Message.id == message.id,
            status=status.status,
            at=status.occurred_at,
            error_code=status.error_code,
            error_message=status.error_message,
        )
        notices += status_notices(message.organization_id, changed)
    if early:
        EarlyStatus.delete().where(EarlyStatus.id.in_([s.id for s in early])).execute()
    return notices


_EARLY = Statement(
    lambda param: EarlyStatus.select(*columns(EarlyStatus)).where(
        EarlyStatus.connection == param("connection_id"),
        EarlyStatus.external_id == param("external_id"),
    )
)


def lock_external_id(connection_id: int, external_id: str) -> None:
    """Take turns, until commit, with whoever keeps or applies early statuses of this id.

    Without it, on PostgreSQL, a status kept while a send records the same id could
    be missed by both: neither sees what the other has not committed yet. (SQLite
    runs one write transaction at a time already.)
    """
    if is_postgres():
        # Sent with the next statement (app/db.py), which then reads as of holding it.
        database.execute_later(
            "SELECT pg_advisory_xact_lock(%s, %s)", (connection_id, lock_key(external_id))
        )


def lock_key(external_id: str) -> int:
    """The advisory lock's second key for an external id (a signed 32-bit integer)."""
    return zlib.crc32(external_id.encode()) - 2**31
