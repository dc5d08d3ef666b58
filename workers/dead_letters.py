"""Dead-lettered jobs: why each died, listing them, and queueing them again after a fix.

Dramatiq's Redis broker keeps a job that failed for good (out of retries, or
failing with ``max_retries=0``) for a week: its id in the sorted set
``<namespace>:<queue>.XQ`` (scored by when it died) and the encoded job in the
hash ``<namespace>:<queue>.XQ.msgs``, under the id the broker gave that enqueue
(``redis_message_id``). It does not keep why. :class:`DeadLetters` keeps that
next to it, under ``snorq:dead-letter:<redis_message_id>``, for as long.

Replaying a job queues it again as a new job (a new id, its retries anew) and
takes it off the dead-letter set: every SNORQ job is safe to run twice.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dramatiq.broker import Broker
from dramatiq.common import q_name
from dramatiq.message import Message
from dramatiq.middleware import Middleware

from app.logs import request_context, scrub
from workers.request_ids import OPTION as REQUEST_ID

log = logging.getLogger(__name__)

REASON_KEY = "snorq:dead-letter:"
#: The most dead letters listed per queue (the latest).
LIST_LIMIT = 500
#: A string argument this long is text (a webhook body), never shown.
TEXT_ARGUMENT = 64
#: The options a replay does not carry over: the broker's and the retries' own.
_ATTEMPT_OPTIONS = {"redis_message_id", "retries", "traceback", "eta", "requeue_timestamp"}


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered job as listed: never its arguments' texts."""

    message_id: str
    queue: str
    actor: str
    died_at: datetime.datetime
    reason: str
    arguments: str
    request_id: str | None
    retries: int


class DeadLetters(Middleware):
    """Records why a job is dead-lettered, when its last attempt fails.

    Added before the retries middleware, so it hears of the job after that one
    decided to give up on it (Dramatiq runs ``after_*`` hooks in reverse order).
    """

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if message.failed:
            _record(broker, message, _reason(message, exception))

    def after_skip_message(self, broker, message):
        if message.failed:
            _record(broker, message, "skipped (too old, or refused by a middleware)")


def _reason(message, exception: BaseException | None) -> str:
    """The exception's type, and its first line when it cannot quote the job's text."""
    if exception is None:
        return "failed"
    kind = type(exception).__name__
    text = scrub(str(exception).strip().splitlines()[0][:200]) if str(exception).strip() else ""
    texts = [value for value in _strings(message.args) if len(value) >= 4]
    if not text or any(len(value) > TEXT_ARGUMENT or value in text for value in texts):
        return kind
    return f"{kind}: {text}"


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return _strings(list(value.values()))
    return []


def _record(broker, message, reason: str) -> None:
    details = {"reason": reason, "retries": message.options.get("retries", 0)}
    broker.client.set(
        REASON_KEY + message.options["redis_message_id"],
        json.dumps(details),
        px=broker.dead_message_ttl,
    )
    with request_context(message.options.get(REQUEST_ID)):
        log.error(
            "Job %s#%s on %s gave up and was dead-lettered: %s",
            message.actor_name,
            message.message_id,
            message.queue_name,
            reason,
        )


def dead_letters(broker: Broker) -> list[DeadLetter]:
    """Every dead-lettered job of the broker's queues, the latest first."""
    found = [
        _load(broker, queue, entry) for queue in _queues(broker) for entry in _ids(broker, queue)
    ]
    return sorted((letter for letter in found if letter), key=lambda d: d.died_at, reverse=True)


def replay(broker: Broker, message_ids: set[str] | None = None) -> list[str]:
    """Queue dead-lettered jobs again (all, or those with these ids); returns the ids replayed.

    A job another replay took meanwhile is skipped.

    Raises:
      redis.RedisError, dramatiq.errors.BrokerError: when the broker cannot take it;
        the job stays dead-lettered.
    """
    replayed = []
    for queue in _queues(broker):
        for redis_id, score in _ids(broker, queue):
            data = broker.client.hget(_key(broker, queue) + ".msgs", redis_id)
            if data is None:
                continue
            message = Message.decode(data)
            if message_ids is not None and message.message_id not in message_ids:
                continue
            if _requeue(broker, queue, redis_id, score, message):
                replayed.append(message.message_id)
    return replayed


def _requeue(broker, queue: str, redis_id: bytes, score: float, message: Message) -> bool:
    key = _key(broker, queue)
    if not broker.client.zrem(key, redis_id):
        return False
    options = {k: v for k, v in message.options.items() if k not in _ATTEMPT_OPTIONS}
    again = Message(
        queue_name=q_name(message.queue_name),
        actor_name=message.actor_name,
        args=message.args,
        kwargs=message.kwargs,
        options={**options, "replay_of": message.message_id},
    )
    try:
        broker.enqueue(again)
    except Exception:
        broker.client.zadd(key, {redis_id: score})
        raise
    broker.client.hdel(key + ".msgs", redis_id)
    broker.client.delete(REASON_KEY + redis_id.decode())
    log.info(
        "Replayed dead-lettered job %s#%s as %s",
        message.actor_name,
        message.message_id,
        again.message_id,
    )
    return True


def _queues(broker: Broker) -> list[str]:
    return sorted(broker.get_declared_queues())


def _key(broker: Broker, queue: str) -> str:
    return f"{broker.namespace}:{queue}.XQ"


def _ids(broker: Broker, queue: str) -> list[tuple[bytes, float]]:
    return broker.client.zrevrange(_key(broker, queue), 0, LIST_LIMIT - 1, withscores=True)


def _load(broker: Broker, queue: str, entry: tuple[bytes, float]) -> DeadLetter | None:
    redis_id, score = entry
    data = broker.client.hget(_key(broker, queue) + ".msgs", redis_id)
    if data is None:
        return None
    message = Message.decode(data)
    details = json.loads(broker.client.get(REASON_KEY + redis_id.decode()) or "{}")
    return DeadLetter(
        message_id=message.message_id,
        queue=queue,
        actor=message.actor_name,
        died_at=datetime.datetime.fromtimestamp(score / 1000, datetime.UTC).replace(tzinfo=None),
        reason=details.get("reason", "unknown (dead-lettered before SNORQ recorded reasons)"),
        arguments=describe_arguments(message.actor_name, message.args),
        request_id=message.options.get(REQUEST_ID),
        retries=details.get("retries", message.options.get("retries", 0)),
    )


def describe_arguments(actor: str, args: tuple | list) -> str:
    """A job's arguments as an operator may see them: ids, never texts or codes."""
    describe = ARGUMENTS.get(actor, _ids_only)
    return describe(args)


def _ids_only(args) -> str:
    return ", ".join(str(arg) if isinstance(arg, int) else type(arg).__name__ for arg in args)


def _deliveries(args) -> str:
    """``ingest_webhooks``: its deliveries' ids and platforms (their bodies stay stored)."""
    (deliveries,) = args
    return ", ".join(f"{delivery[1]} delivery {delivery[0]}" for delivery in deliveries)


#: How to show an actor's arguments, where ids alone say too little.
ARGUMENTS: dict[str, Callable[[tuple | list], str]] = {"ingest_webhooks": _deliveries}
