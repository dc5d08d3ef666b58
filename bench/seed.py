"""Seed a migrated PostgreSQL database with a year of a busy SNORQ, fast (COPY).

    DATABASE_URL=postgresql://… SECRET_KEY=… SNORQ_ENCRYPTION_KEYS=… \\
        python bench/seed.py [--organizations 5] [--conversations 100000] [--messages 2000000]

What it writes, as a year of real use would have left it:

- organizations of skewed sizes (the first holds the most), each with three staff
  and one connection per platform (tokens encrypted with the app's keys);
- one contact and one conversation per customer, on WhatsApp mostly;
- messages spread over the last year, in sessions of quick turns days apart, with
  conversation sizes from a heavy-tailed distribution (most short, a few thousands
  long); inbound RECEIVED, outbound mostly READ or DELIVERED, some SENT or FAILED;
  about 4% are images with their attachment; texts name the conversation's order or a
  product of Zipf-like popularity, so that search meets words of every frequency.
  Ids follow time across all conversations, so a thread's messages are scattered
  through the table as in life;
- stored webhook bodies over the last 45 days (a few FAILED or never processed) and
  audit entries over the last 400 days, so that retention has work to do.

Secondary indexes are dropped during the load and built again after it, then the
tables are vacuumed and analyzed. Rows go after whatever the database holds already.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import random
import sys
import time
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


#: How much of each table; the defaults are the issue's "a year of a busy business".
@dataclass(frozen=True)
class Sizes:
    organizations: int = 5
    conversations: int = 100_000
    messages: int = 2_000_000
    webhooks: int = 100_000
    audit: int = 100_000


PLATFORMS = (("whatsapp", 0.60), ("facebook", 0.25), ("tiktok", 0.15))
NAMES = ("Zoë", "José", "Łukasz", "Ngozi", "美咲", "Amélie", "Søren", "Olúwá", "Anna", "Raj")
#: Each text may name the conversation's order ("SN" and the conversation's number: a
#: word of one thread) or a product (a made-up word; a few are in many messages, most
#: in a handful), so that words have the spread of frequencies search meets in life.
INBOUND_TEXTS = (
    "Hi! Is my order {order} on its way? 📦",
    "Do you have the {product} in a size M?",
    "¿Hacen envíos a Sevilla?",
    "Thanks, that's perfect 🙏",
    "The tracking link does not work",
    "Can I change the delivery address?",
)
OUTBOUND_TEXTS = (
    "Hello! Let me check order {order} for you.",
    "The {product} ships tomorrow morning 🚚",
    "Yes, we do. Anything else?",
    "Here is your new tracking link.",
    "Done, the address is updated.",
)
SYLLABLES = ("ka", "lo", "mi", "ru", "te", "zan", "po", "vel", "qui", "dor", "sa", "ne")
#: Products are ranked by popularity; one of rank r is named about 1/r as often as the first.
PRODUCTS = tuple(
    SYLLABLES[n % 12] + SYLLABLES[n // 12 % 12] + SYLLABLES[n // 144 % 12] for n in range(1728)
)
#: Outbound statuses and their shares; inbound messages are RECEIVED.
OUTBOUND_STATUSES = (("READ", 0.62), ("DELIVERED", 0.28), ("SENT", 0.05), ("FAILED", 0.05))
STATUS_CODES = ("RECEIVED", "READ", "DELIVERED", "SENT", "FAILED")
EXTERNAL_PREFIX = {"whatsapp": "wamid.seed", "facebook": "m_seed", "tiktok": "tt-seed-"}
YEAR_MS = 365 * 24 * 3600 * 1000
#: Rows per COPY statement.
CHUNK = 50_000
#: Bits of a message key below its time: conversation index, direction, status.
CONVERSATION_BITS = 24
FLAG_BITS = 4


def seed(connection, sizes: Sizes, *, random_seed: int = 11) -> dict:
    """Write ``sizes`` worth of rows through ``connection`` (psycopg2) and analyze.

    Returns:
      What was written: the organization ids (largest first), row counts, seconds.
    """
    started = time.monotonic()
    rng = random.Random(random_seed)
    now_ms = int(time.time() * 1000)
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("SET synchronous_commit TO off")
    cursor.execute("SET maintenance_work_mem TO '256MB'")
    first = {table: _next_id(cursor, table) for table in _TABLES}
    world = _World(rng, sizes, first, now_ms)
    indexes = _drop_indexes(cursor)
    try:
        _copy(cursor, "organization", ("id", "name", "created_at"), world.organizations())
        _copy(cursor, "staff_user", _USER_COLUMNS, world.users())
        _copy(cursor, "platform_connection", _CONNECTION_COLUMNS, world.connections())
        _copy(cursor, "contact", _CONTACT_COLUMNS, world.contacts())
        _copy(cursor, "conversation", _CONVERSATION_COLUMNS, world.conversations())
        attachments: list[str] = []
        _copy(cursor, "message", _MESSAGE_COLUMNS, world.messages(attachments))
        _copy(cursor, "attachment", _ATTACHMENT_COLUMNS, attachments, formatted=True)
        _copy(cursor, "webhook_event", _WEBHOOK_COLUMNS, world.webhooks())
        _copy(cursor, "audit_log", _AUDIT_COLUMNS, world.audit_entries())
    finally:
        for statement in indexes:
            cursor.execute(statement)
    for table in _TABLES:
        last = f"(SELECT COALESCE(MAX(id), 1) FROM {table})"  # noqa: S608 (our table names)
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
        cursor.execute(f"VACUUM (ANALYZE) {table}")
    return {
        "organizations": world.organization_ids(),
        "rows": {
            "conversation": sizes.conversations,
            "message": sizes.messages,
            "attachment": len(attachments),
            "webhook_event": sizes.webhooks,
            "audit_log": sizes.audit,
        },
        "seconds": round(time.monotonic() - started, 1),
    }


_TABLES = (
    "organization",
    "staff_user",
    "platform_connection",
    "contact",
    "conversation",
    "message",
    "attachment",
    "webhook_event",
    "audit_log",
)
_USER_COLUMNS = ("id", "organization_id", "email", "password_hash", "role", "created_at")
_CONNECTION_COLUMNS = (
    "id", "organization_id", "platform", "account_id", "name", "access_token_encrypted",
    "refresh_token_encrypted", "token_expires_at", "status", "status_reason", "created_at",
    "updated_at",
)  # fmt: skip
_CONTACT_COLUMNS = (
    "id", "organization_id", "platform", "external_id", "phone", "username", "display_name",
    "created_at",
)  # fmt: skip
_CONVERSATION_COLUMNS = (
    "id", "organization_id", "connection_id", "contact_id", "last_message_preview",
    "last_message_at", "last_inbound_at", "unread_count", "created_at", "status", "assignee_id",
)  # fmt: skip
_MESSAGE_COLUMNS = (
    "id", "organization_id", "connection_id", "conversation_id", "direction", "content_type",
    "content", "status", "external_id", "error_code", "error_message", "sent_by_id",
    "platform_timestamp", "created_at", "sent_at", "delivered_at", "read_at", "failed_at",
    "send_attempts",
)  # fmt: skip
_ATTACHMENT_COLUMNS = (
    "id", "organization_id", "message_id", "kind", "platform_media_id", "mime_type", "size",
    "status", "storage_key", "created_at", "updated_at",
)  # fmt: skip
_WEBHOOK_COLUMNS = (
    "id", "delivery_id", "platform", "body", "received_at", "processed_at", "status", "error",
)  # fmt: skip
_AUDIT_COLUMNS = (
    "id", "organization_id", "connection_id", "user_id", "platform", "action", "ok", "detail",
    "created_at",
)  # fmt: skip


class _World:
    """The rows of every table, made up consistently from one random generator."""

    def __init__(self, rng: random.Random, sizes: Sizes, first: dict, now_ms: int) -> None:
        self.rng, self.sizes, self.first, self.now_ms = rng, sizes, first, now_ms
        weights = [1 / (n + 1) for n in range(sizes.organizations)]
        self.org_of = rng.choices(range(sizes.organizations), weights, k=sizes.conversations)
        names = [name for name, _ in PLATFORMS]
        shares = [share for _, share in PLATFORMS]
        self.platform_of = rng.choices(range(len(names)), shares, k=sizes.conversations)
        self.platforms = names
        self.counts = _message_counts(rng, sizes.conversations, sizes.messages)
        self.keys: list[int] = []
        self.summaries: list[tuple] = []

    def organization_ids(self) -> list[int]:
        return [self.first["organization"] + n for n in range(self.sizes.organizations)]

    def organizations(self) -> Iterator[tuple]:
        for n, org_id in enumerate(self.organization_ids()):
            yield org_id, f"Seeded business {n + 1}", _ts(self.now_ms - YEAR_MS - 86_400_000)

    def users(self) -> Iterator[tuple]:
        from app.auth import hash_password
        from app.models import Role

        password_hash = hash_password("seeded")
        for n, org_id in enumerate(self.organization_ids()):
            for agent in range(3):
                email = f"agent{agent}-{uuid.uuid4().hex[:8]}@org{org_id}.seed.test"
                created = _ts(self.now_ms - YEAR_MS)
                role = Role.ADMIN if agent == 0 else Role.STAFF
                yield self._user_id(n, agent), org_id, email, password_hash, role, created

    def _user_id(self, org_index: int, agent: int) -> int:
        return self.first["staff_user"] + org_index * 3 + agent

    def _connection_id(self, org_index: int, platform: int) -> int:
        return self.first["platform_connection"] + org_index * len(self.platforms) + platform

    def connections(self) -> Iterator[tuple]:
        from app import crypto

        created = _ts(self.now_ms - YEAR_MS)
        for n, org_id in enumerate(self.organization_ids()):
            for p, platform in enumerate(self.platforms):
                expires = None
                refresh = None
                if platform == "tiktok":
                    expires = _ts(self.now_ms + self.rng.randrange(86_400_000))
                    refresh = crypto.encrypt(uuid.uuid4().hex)
                account_id = f"{9_000_000_000 + self._connection_id(n, p)}"
                yield (
                    self._connection_id(n, p), org_id, platform, account_id,
                    f"{platform} of business {n + 1}", crypto.encrypt(uuid.uuid4().hex), refresh,
                    expires, "ACTIVE", "", created, created,
                )  # fmt: skip

    def contacts(self) -> Iterator[tuple]:
        for c in range(self.sizes.conversations):
            platform = self.platforms[self.platform_of[c]]
            contact_id = self.first["contact"] + c
            phone = username = None
            if platform == "whatsapp":
                external_id = phone = f"1555{contact_id:08d}"
            elif platform == "facebook":
                external_id = f"7{contact_id:015d}"
            else:
                external_id = f"tt-{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
                username = f"shopper{contact_id}"
            name = f"{NAMES[c % len(NAMES)]} {chr(65 + c % 26)}."
            yield (
                contact_id, self._org_id(c), platform, external_id, phone, username, name,
                _ts(self.now_ms - YEAR_MS),
            )  # fmt: skip

    def _org_id(self, c: int) -> int:
        return self.first["organization"] + self.org_of[c]

    def conversations(self) -> Iterator[tuple]:
        """Also lays out every message in time (kept as one integer key each)."""
        for c in range(self.sizes.conversations):
            started, last, last_inbound, unread, preview = self._lay_out(c)
            status, assignee = self._handling(c, last)
            yield (
                self.first["conversation"] + c, self._org_id(c),
                self._connection_id(self.org_of[c], self.platform_of[c]),
                self.first["contact"] + c, preview, _ts(last),
                None if last_inbound is None else _ts(last_inbound), unread, _ts(started),
                status, assignee,
            )  # fmt: skip

    def _handling(self, c: int, last: int) -> tuple[str, int | None]:
        """Where the conversation stands and who has it: those of the last three days open
        or waiting for the customer, nearly all older ones resolved; four in five assigned.

        Chosen by the conversation's number, not the random stream, so the rest of the
        data stays what it was.
        """
        if self.now_ms - last < 3 * 86_400_000:
            status = "PENDING" if c % 4 == 0 else "OPEN"
        else:
            status = "OPEN" if c % 16 == 0 else "RESOLVED"
        assignee = None if c % 5 == 0 else self._user_id(self.org_of[c], c % 3)
        return status, assignee

    def _lay_out(self, c: int) -> tuple:
        """A conversation's message times, directions and statuses, in its own keys."""
        rng, count = self.rng, self.counts[c]
        started = self.now_ms - rng.randrange(YEAR_MS)
        gaps = [0] + [
            int(rng.expovariate(1 / 90_000) if rng.random() < 0.85 else rng.expovariate(1 / 2.6e8))
            for _ in range(count - 1)
        ]
        span = sum(gaps)
        room = self.now_ms - 60_000 - started
        squeeze = min(1.0, room / span) if span else 1.0
        at, last_inbound, trailing = started, None, 0
        for k, gap in enumerate(gaps):
            at += int(gap * squeeze) + 1
            inbound = k == 0 or rng.random() < 0.55
            status = 0 if inbound else _pick(rng, OUTBOUND_STATUSES) + 1
            flags = (1 if inbound else 0) << 3 | status
            key = ((at << CONVERSATION_BITS) | c) << FLAG_BITS | flags
            self.keys.append(key)
            if inbound:
                last_inbound, trailing = at, trailing + 1
            else:
                trailing = 0
        recent = self.now_ms - at < 14 * 86_400_000
        unread = trailing if recent or rng.random() < 0.1 else 0
        preview = _text(c, count - 1, inbound)[:100]
        return started, at, last_inbound, unread, preview

    def messages(self, attachments: list[str]) -> Iterator[tuple]:
        """Every message, in time order across conversations (ids follow time)."""
        self.keys.sort()
        position = array("l", [0]) * self.sizes.conversations
        rng, first = self.rng, self.first
        keys, self.keys = self.keys, []
        for n, key in enumerate(keys):
            flags = key & 0b1111
            c = (key >> FLAG_BITS) & ((1 << CONVERSATION_BITS) - 1)
            at = key >> (FLAG_BITS + CONVERSATION_BITS)
            k, position[c] = position[c], position[c] + 1
            message_id = first["message"] + n
            inbound, status = bool(flags >> 3), STATUS_CODES[flags & 0b111]
            platform = self.platforms[self.platform_of[c]]
            content, content_type = _text(c, k, inbound), "TEXT"
            if rng.random() < 0.04:
                content_type, content = "IMAGE", "📷 Photo"
                attachments.append(self._attachment(attachments, message_id, c, at))
            sent = delivered = read = failed = None
            error_code = error_message = sent_by = None
            if not inbound:
                sent = at + 800
                sent_by = None if rng.random() < 0.1 else self._user_id(self.org_of[c], k % 3)
                if status in ("DELIVERED", "READ"):
                    delivered = sent + rng.randrange(500, 5_000)
                if status == "READ":
                    read = delivered + rng.randrange(5_000, 3_600_000)
                if status == "FAILED":
                    failed, error_code = sent + 1_000, 2004
                    error_message = "The recipient cannot be reached on this platform."
            connection_id = self._connection_id(self.org_of[c], self.platform_of[c])
            yield (
                message_id, self._org_id(c), connection_id, first["conversation"] + c,
                "INBOUND" if inbound else "OUTBOUND", content_type, content, status,
                f"{EXTERNAL_PREFIX[platform]}{message_id}", error_code, error_message, sent_by,
                _ts(at - 400), _ts(at), _ts(sent), _ts(delivered), _ts(read), _ts(failed),
                0 if inbound else 1,
            )  # fmt: skip

    def _attachment(self, attachments: list[str], message_id: int, c: int, at: int) -> str:
        failed = self.rng.random() < 0.01
        size = None if failed else self.rng.randrange(20_000, 3_000_000)
        values = (
            self.first["attachment"] + len(attachments), self._org_id(c), message_id, "image",
            f"media-{message_id}", "image/jpeg", size,
            "FAILED" if failed else "AVAILABLE", None if failed else f"seed/{message_id}.jpg",
            _ts(at), _ts(at + 2_000),
        )  # fmt: skip
        return _line(values)

    def webhooks(self) -> Iterator[tuple]:
        from bench.inbound import webhook_body

        span = 45 * 86_400_000
        for n in range(self.sizes.webhooks):
            received = self.now_ms - self.rng.randrange(span)
            status = _pick(self.rng, (("PROCESSED", 0.98), ("FAILED", 0.015), ("RECEIVED", 0.005)))
            status_name = ("PROCESSED", "FAILED", "RECEIVED")[status]
            processed = None if status_name == "RECEIVED" else _ts(received + 40)
            error = "malformed payload: no entry" if status_name == "FAILED" else None
            body = webhook_body(n).encode()
            yield (
                self.first["webhook_event"] + n, uuid.UUID(int=self.rng.getrandbits(128)).hex,
                "whatsapp", _Bytes(body), _ts(received), processed, status_name, error,
            )  # fmt: skip

    def audit_entries(self) -> Iterator[tuple]:
        span = 400 * 86_400_000
        for n in range(self.sizes.audit):
            org = self.rng.choices(range(self.sizes.organizations), k=1)[0]
            platform = self.rng.randrange(len(self.platforms))
            action = "send" if self.rng.random() < 0.9 else "token_refresh"
            ok = self.rng.random() < 0.95
            detail = f"message {n}: SENT" if ok else "RECIPIENT_UNAVAILABLE (2004)"
            yield (
                self.first["audit_log"] + n, self.first["organization"] + org,
                self._connection_id(org, platform), None, self.platforms[platform], action, ok,
                detail, _ts(self.now_ms - self.rng.randrange(span)),
            )  # fmt: skip


def _message_counts(rng: random.Random, conversations: int, messages: int) -> list[int]:
    """Messages per conversation: heavy-tailed, at least one each, ``messages`` in all."""
    raw = [rng.lognormvariate(0, 1.3) for _ in range(conversations)]
    scale = (messages - conversations) / sum(raw)
    counts = [1 + int(r * scale) for r in raw]
    for c in rng.choices(range(conversations), raw, k=messages - sum(counts)):
        counts[c] += 1
    return counts


def _text(c: int, k: int, inbound: bool) -> str:
    texts = INBOUND_TEXTS if inbound else OUTBOUND_TEXTS
    spread = (c * 2_654_435_761 + k * 40_503) % 2**32 / 2**32
    product = PRODUCTS[int(len(PRODUCTS) ** spread) - 1]
    return texts[(c * 31 + k) % len(texts)].format(order=f"SN{c:06d}", product=product)


def _pick(rng: random.Random, shares: tuple) -> int:
    roll, total = rng.random(), 0.0
    for index, (_, share) in enumerate(shares):
        total += share
        if roll < total:
            return index
    return len(shares) - 1


def _ts(ms: int | None) -> datetime.datetime | None:
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).replace(tzinfo=None)


class _Bytes(bytes):
    """A bytea value for COPY."""


def _field(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, _Bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return str(value)


def _line(values: Iterable) -> str:
    return "\t".join(map(_field, values)) + "\n"


def _copy(cursor, table: str, columns: tuple, rows: Iterable, *, formatted: bool = False) -> None:
    """COPY ``rows`` (tuples, or lines already formatted) into ``table``, a chunk at a time."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    chunk: list[str] = []
    for row in rows:
        chunk.append(row if formatted else _line(row))
        if len(chunk) == CHUNK:
            cursor.copy_expert(statement, io.StringIO("".join(chunk)))
            chunk = []
    if chunk:
        cursor.copy_expert(statement, io.StringIO("".join(chunk)))


def _next_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")  # noqa: S608
    return cursor.fetchone()[0]


def _drop_indexes(cursor) -> list[str]:
    """Drop the seeded tables' indexes that back no constraint; the statements rebuilding them."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        (list(_TABLES),),
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Sizes()
    for name in ("organizations", "conversations", "messages", "webhooks", "audit"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    args = parser.parse_args()
    import psycopg2

    sizes = Sizes(**{name: getattr(args, name) for name in Sizes.__dataclass_fields__})
    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        print(seed(connection, sizes))
    finally:
        connection.close()


if __name__ == "__main__":
    main()
