"""Search over messages' text and contacts' names, usernames and phones (issue 15).

PostgreSQL: GIN indexes on ``to_tsvector('simple', …)``, led by ``organization_id``
(``btree_gin``, a contrib extension Heroku has too), so a word is looked up among
the organization's rows only. A word in most messages is not read from the index:
walking the primary key back from the newest finds a page of them sooner, and the
planner picks that from the indexes' statistics (bench/README.md, "Scale").
The expressions must stay exactly those of ``app/search.py``. Search reads an
organization's newest messages first, so ``message (organization_id, id)`` replaces
the index on ``organization_id`` alone (it serves all that one did), on both databases.

SQLite: FTS5 tables with external content (they keep only the index, the text
stays in ``message`` and ``contact``), kept in step by triggers on insert, on a
change of the indexed columns and on delete, and filled from the rows already
there. Diacritics count on both, so both find the same rows.
"""

from peewee import PostgresqlDatabase

# What PostgreSQL's parser joins words with (hosts, emails, paths, hyphens, tags)
# are spaces here, as they are to FTS5: "sato.misaki" is two words on both.
JOINERS = "./@-_:+<>&~"
SPACES = " " * len(JOINERS)
MESSAGE_TEXT = f"to_tsvector('simple', translate(content, '{JOINERS}', '{SPACES}'))"
CONTACT_TEXT = (
    "to_tsvector('simple', translate(COALESCE(display_name, '') || ' ' "
    f"|| COALESCE(username, '') || ' ' || COALESCE(phone, ''), '{JOINERS}', '{SPACES}'))"
)
TOKENIZER = "unicode61 remove_diacritics 0"

INDEX_UP = [
    "DROP INDEX message_organization_id",
    "CREATE INDEX message_organization_id_id ON message (organization_id, id)",
]
INDEX_DOWN = [
    "DROP INDEX message_organization_id_id",
    "CREATE INDEX message_organization_id ON message (organization_id)",
]
SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE message_search USING fts5(
        content, content='message', content_rowid='id', tokenize='{TOKENIZER}')""",
    """CREATE TRIGGER message_search_insert AFTER INSERT ON message BEGIN
        INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER message_search_update AFTER UPDATE OF content ON message BEGIN
        INSERT INTO message_search (message_search, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER message_search_delete AFTER DELETE ON message BEGIN
        INSERT INTO message_search (message_search, rowid, content)
            VALUES ('delete', old.id, old.content);
    END""",
    "INSERT INTO message_search (message_search) VALUES ('rebuild')",
    f"""CREATE VIRTUAL TABLE contact_search USING fts5(
        display_name, username, phone, content='contact', content_rowid='id',
        tokenize='{TOKENIZER}')""",
    """CREATE TRIGGER contact_search_insert AFTER INSERT ON contact BEGIN
        INSERT INTO contact_search (rowid, display_name, username, phone)
            VALUES (new.id, new.display_name, new.username, new.phone);
    END""",
    """CREATE TRIGGER contact_search_update
        AFTER UPDATE OF display_name, username, phone ON contact BEGIN
        INSERT INTO contact_search (contact_search, rowid, display_name, username, phone)
            VALUES ('delete', old.id, old.display_name, old.username, old.phone);
        INSERT INTO contact_search (rowid, display_name, username, phone)
            VALUES (new.id, new.display_name, new.username, new.phone);
    END""",
    """CREATE TRIGGER contact_search_delete AFTER DELETE ON contact BEGIN
        INSERT INTO contact_search (contact_search, rowid, display_name, username, phone)
            VALUES ('delete', old.id, old.display_name, old.username, old.phone);
    END""",
    "INSERT INTO contact_search (contact_search) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER contact_search_delete",
    "DROP TRIGGER contact_search_update",
    "DROP TRIGGER contact_search_insert",
    "DROP TABLE contact_search",
    "DROP TRIGGER message_search_delete",
    "DROP TRIGGER message_search_update",
    "DROP TRIGGER message_search_insert",
    "DROP TABLE message_search",
]
POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    f"CREATE INDEX message_search ON message USING GIN (organization_id, {MESSAGE_TEXT})",
    f"CREATE INDEX contact_search ON contact USING GIN (organization_id, {CONTACT_TEXT})",
]
# The extension stays: something else may use it.
POSTGRES_DOWN = ["DROP INDEX contact_search", "DROP INDEX message_search"]


def up(migrator, db):
    search = POSTGRES_UP if isinstance(db, PostgresqlDatabase) else SQLITE_UP
    for statement in INDEX_UP + search:
        db.execute_sql(statement)


def down(migrator, db):
    search = POSTGRES_DOWN if isinstance(db, PostgresqlDatabase) else SQLITE_DOWN
    for statement in search + INDEX_DOWN:
        db.execute_sql(statement)
