"""Search an organization's messages and conversations (README, "Search").

A query is cut into words (runs of letters and digits; anything else only
separates them), and a row matches when each word starts one of its words:
"track lin" finds "The tracking link does not work". Messages match on their
text, conversations on their contact's name, username and phone ("1650555" finds
the customer on 16505550123). The words are quoted whole into the engine's own
syntax, so no input can change what the query means: an FTS5 ``MATCH`` on SQLite,
``to_tsquery`` on PostgreSQL, each served by migration 0009's indexes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playhouse.sqlite_ext import FTS5Model, RowIDField, SearchField

from app.db import database, is_postgres
from app.models import ACTIVITY, Contact, Conversation, Message

#: Words after these are ignored; each word is cut to its first ``LONGEST_WORD`` characters
#: (still a prefix of what it was, so it finds at least what the whole word would).
MAX_WORDS, LONGEST_WORD = 8, 64
#: On PostgreSQL, how many of the newest messages (and conversations) are read in full first.
RECENT = 1000
#: Larger than any id: ``before`` when there is none.
NO_BOUND = 2**63 - 1
WORD = re.compile(r"[^\W_]+")
# What PostgreSQL's parser joins words with (hosts, emails, paths, hyphens, tags)
# are spaces here, as they are to FTS5: "sato.misaki" is two words on both.
JOINERS = "./@-_:+<>&~"
SPACES = " " * len(JOINERS)
# Exactly the expressions migration 0009 indexes (unqualified: each query below gives
# them one table or subquery to read).
MESSAGE_TEXT = f"to_tsvector('simple', translate(content, '{JOINERS}', '{SPACES}'))"
CONTACT_TEXT = (
    "to_tsvector('simple', translate(COALESCE(display_name, '') || ' ' "
    f"|| COALESCE(username, '') || ' ' || COALESCE(phone, ''), '{JOINERS}', '{SPACES}'))"
)


class _MessageSearch(FTS5Model):
    """SQLite's index of messages' text, kept by the triggers of migration 0009."""

    rowid = RowIDField()
    content = SearchField()

    class Meta:
        database = database
        table_name = "message_search"


class _ContactSearch(FTS5Model):
    rowid = RowIDField()
    display_name = SearchField()
    username = SearchField()
    phone = SearchField()

    class Meta:
        database = database
        table_name = "contact_search"


@dataclass
class Results:
    """A page of matching messages, newest first, and the matching conversations.

    Each message comes with its conversation and that conversation's contact, each
    conversation with its contact. ``next_before`` is the ``before`` of the next page
    of messages, or None on the last.
    """

    messages: list[Message]
    conversations: list[Conversation]
    next_before: int | None


def words(text: str) -> list[str]:
    """The words of a query, as search matches them.

    Raises:
      ValueError: the text has no letter or digit.
    """
    found = [word[:LONGEST_WORD] for word in WORD.findall(text)[:MAX_WORDS]]
    if not found:
        raise ValueError("Type a word to search for: some letters or digits.")
    return found


def fts5_query(found: list[str]) -> str:
    """An FTS5 query matching rows where each word starts a word: ``"zo"* "16"*``."""
    return " ".join(f'"{word}"*' for word in found)


def tsquery(found: list[str]) -> str:
    """The same for ``to_tsquery``: ``'zo':* & '16':*``."""
    return " & ".join(f"'{word}':*" for word in found)


def search(
    organization_id: int, text: str, *, limit: int = 20, before: int | None = None
) -> Results:
    """Search one organization's messages (those before message ``before``) and conversations.

    Conversations come with the first page only (``before`` None): paging is by message.

    Parameters:
      limit: the most messages, and the most conversations, to return.

    Raises:
      ValueError: the text has no word to search for.
    """
    found = words(text)
    page = _message_ids(organization_id, found, before, limit + 1)
    next_before = page[limit - 1] if len(page) > limit else None
    conversations = [] if before is not None else _conversations(organization_id, found, limit)
    return Results(_messages(organization_id, page[:limit]), conversations, next_before)


def _messages(organization_id: int, ids: list[int]) -> list[Message]:
    """These messages of the organization with their conversation and contact, newest first."""
    if not ids:
        return []
    return list(
        Message.select(Message, Conversation, Contact)
        .join(Conversation)
        .join(Contact)
        .where(Message.id.in_(ids), Message.organization == organization_id)
        .order_by(Message.id.desc())
    )


def _message_ids(
    organization_id: int, found: list[str], before: int | None, limit: int
) -> list[int]:
    """The ids of the organization's matching messages, newest first."""
    if is_postgres():
        params = _params(organization_id, found, limit, before=before or NO_BOUND)
        newest = _ids(_RECENT_MESSAGES, params)
        return newest if len(newest) == limit else _ids(_MATCHING_MESSAGES, params)
    query = (
        Message.select(Message.id)
        .join(_MessageSearch, on=_MessageSearch.rowid == Message.id)
        .where(_MessageSearch.match(fts5_query(found)), Message.organization == organization_id)
    )
    if before is not None:
        query = query.where(Message.id < before)
    # FTS5 reads its matches in this order, so the limit stops it early.
    return [row.id for row in query.order_by(_MessageSearch.rowid.desc()).limit(limit)]


def _conversations(organization_id: int, found: list[str], limit: int) -> list[Conversation]:
    """The organization's conversations whose contact matches, most recently active first."""
    if is_postgres():
        params = _params(organization_id, found, limit)
        newest = _ids(_RECENT_CONVERSATIONS, params)
        # Fewer than a page among the newest: every matching contact, by the index. Their
        # ids, not a subquery, so that the planner knows how few they are.
        matching = (
            Conversation.id.in_(newest)
            if len(newest) == limit
            else Conversation.contact.in_(_ids(_MATCHING_CONTACTS, params))
        )
    else:
        contacts = (
            Contact.select(Contact.id)
            .join(_ContactSearch, on=_ContactSearch.rowid == Contact.id)
            .where(_ContactSearch.match(fts5_query(found)), Contact.organization == organization_id)
        )
        matching = Conversation.contact.in_(contacts)
    return list(
        Conversation.select(Conversation, Contact)
        .join(Contact)
        .where(Conversation.organization == organization_id, matching)
        .order_by(ACTIVITY.desc(), Conversation.id.desc())
        .limit(limit)
    )


def _params(organization_id: int, found: list[str], limit: int, **bounds) -> dict:
    return {
        "organization": organization_id,
        "query": tsquery(found),
        "limit": limit,
        "recent": RECENT,
        **bounds,
    }


def _ids(sql: str, params: dict) -> list[int]:
    return [row[0] for row in database.execute_sql(sql, params).fetchall()]


# PostgreSQL's queries, in pairs: the RECENT newest rows read one by one, then, when
# they hold less than a page, every match by the GIN index. The planner's guess of how
# many rows hold a word is often far off for a prefix ("sn" of 100,000 order numbers),
# and a wrong guess costs seconds either way: reading the newest rows one by one for a
# rare word, or fetching every match by the index for a word in most rows. Asked in this
# order, each is only done when it is cheap: a word in less than a page of the newest
# rows is rare. Only the constants above are formatted into them (S608): the
# organization, the bounds and the words are always parameters.
_RECENT_MESSAGES = f"""
    SELECT id FROM (
        SELECT id, content FROM message
        WHERE organization_id = %(organization)s AND id < %(before)s
        ORDER BY id DESC LIMIT %(recent)s
    ) AS recent
    WHERE {MESSAGE_TEXT} @@ to_tsquery('simple', %(query)s)
    ORDER BY id DESC LIMIT %(limit)s"""  # noqa: S608
# Materialized, so that the planner has to fetch every match: the index is the way.
_MATCHING_MESSAGES = f"""
    WITH matching AS MATERIALIZED (
        SELECT id FROM message
        WHERE organization_id = %(organization)s AND id < %(before)s
          AND {MESSAGE_TEXT} @@ to_tsquery('simple', %(query)s)
    )
    SELECT id FROM matching ORDER BY id DESC LIMIT %(limit)s"""  # noqa: S608
_RECENT_CONVERSATIONS = f"""
    SELECT id FROM (
        SELECT conversation.id, display_name, username, phone,
               COALESCE(last_message_at, conversation.created_at) AS activity
        FROM conversation JOIN contact ON contact.id = conversation.contact_id
        WHERE conversation.organization_id = %(organization)s
        ORDER BY COALESCE(last_message_at, conversation.created_at) DESC, conversation.id DESC
        LIMIT %(recent)s
    ) AS recent
    WHERE {CONTACT_TEXT} @@ to_tsquery('simple', %(query)s)
    ORDER BY activity DESC, id DESC LIMIT %(limit)s"""  # noqa: S608
_MATCHING_CONTACTS = f"""
    SELECT id FROM contact
    WHERE organization_id = %(organization)s
      AND {CONTACT_TEXT} @@ to_tsquery('simple', %(query)s)"""  # noqa: S608
