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

from peewee import SQL, ModelSelect
from playhouse.sqlite_ext import FTS5Model, RowIDField, SearchField

from app.db import database, is_postgres
from app.models import ACTIVITY, Contact, Conversation, Message

#: Words after these are ignored; each word is cut to its first ``LONGEST_WORD`` characters
#: (still a prefix of what it was, so it finds at least what the whole word would).
MAX_WORDS, LONGEST_WORD = 8, 64
WORD = re.compile(r"[^\W_]+")
# What PostgreSQL's parser joins words with (hosts, emails, paths, hyphens, tags)
# are spaces here, as they are to FTS5: "sato.misaki" is two words on both.
JOINERS = "./@-_:+<>&~"
SPACES = " " * len(JOINERS)
# Exactly the expressions migration 0009 indexes (one table each, so unqualified).
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
    messages = (
        Message.select(Message, Conversation, Contact)
        .join(Conversation)
        .join(Contact)
        .where(Message.id.in_(page[:limit]))
        .order_by(Message.id.desc())
        if page
        else []
    )
    conversations = [] if before is not None else _conversations(organization_id, found, limit)
    return Results(list(messages), conversations, next_before)


def _message_ids(organization_id: int, found: list[str], before: int | None, limit: int):
    """The ids of the organization's matching messages, newest first."""
    if is_postgres():
        query = Message.select(Message.id).where(
            Message.organization == organization_id,
            SQL(f"{MESSAGE_TEXT} @@ to_tsquery('simple', %s)", [tsquery(found)]),
        )
        newest_first = Message.id.desc()
    else:
        query = (
            Message.select(Message.id)
            .join(_MessageSearch, on=_MessageSearch.rowid == Message.id)
            .where(_MessageSearch.match(fts5_query(found)), Message.organization == organization_id)
        )
        # FTS5 reads its matches in this order, so the limit stops it early.
        newest_first = _MessageSearch.rowid.desc()
    if before is not None:
        query = query.where(Message.id < before)
    return [row.id for row in query.order_by(newest_first).limit(limit)]


def _conversations(organization_id: int, found: list[str], limit: int) -> list[Conversation]:
    """The organization's conversations whose contact matches, most recently active first."""
    contacts = _matching_contacts(organization_id, found)
    return list(
        Conversation.select(Conversation, Contact)
        .join(Contact)
        .where(Conversation.organization == organization_id, Contact.id.in_(contacts))
        .order_by(ACTIVITY.desc(), Conversation.id.desc())
        .limit(limit)
    )


def _matching_contacts(organization_id: int, found: list[str]) -> ModelSelect:
    if is_postgres():
        matches = SQL(f"{CONTACT_TEXT} @@ to_tsquery('simple', %s)", [tsquery(found)])
        return Contact.select(Contact.id).where(Contact.organization == organization_id, matches)
    return (
        Contact.select(Contact.id)
        .join(_ContactSearch, on=_ContactSearch.rowid == Contact.id)
        .where(_ContactSearch.match(fts5_query(found)), Contact.organization == organization_id)
    )
