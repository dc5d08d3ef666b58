"""Fewer index entries per stored message and per touched conversation (issue 16).

Every message the worker stores writes an entry into each of ``message``'s
indexes, and every message it files moves its conversation's activity, which
(changing indexed columns) writes an entry into each of ``conversation``'s. Four
of those indexes repeat the first column of a wider one, which serves every
query and foreign key they served; two keep entries only for rows that have a
value (a staff author, an idempotency key), which is all any query asks them
for. The SQL is the same on SQLite and PostgreSQL.
"""

#: Served by (connection_id, external_id), (conversation_id, id), the conversation
#: list's (organization_id, …) and (connection_id, contact_id) respectively.
REPEATED = {
    "message_connection_id": "message (connection_id)",
    "message_conversation_id": "message (conversation_id)",
    "conversation_organization_id": "conversation (organization_id)",
    "conversation_connection_id": "conversation (connection_id)",
}


def up(migrator, db):
    for name in REPEATED:
        db.execute_sql(f"DROP INDEX {name}")
    db.execute_sql("DROP INDEX message_sent_by_id")
    db.execute_sql(
        "CREATE INDEX message_sent_by_id ON message (sent_by_id) WHERE sent_by_id IS NOT NULL"
    )
    db.execute_sql("DROP INDEX message_conversation_id_idempotency_key")
    db.execute_sql(
        "CREATE UNIQUE INDEX message_conversation_id_idempotency_key"
        " ON message (conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
    )


def down(migrator, db):
    db.execute_sql("DROP INDEX message_conversation_id_idempotency_key")
    db.execute_sql(
        "CREATE UNIQUE INDEX message_conversation_id_idempotency_key"
        " ON message (conversation_id, idempotency_key)"
    )
    db.execute_sql("DROP INDEX message_sent_by_id")
    db.execute_sql("CREATE INDEX message_sent_by_id ON message (sent_by_id)")
    for name, columns in REPEATED.items():
        db.execute_sql(f"CREATE INDEX {name} ON {columns}")
