"""Indexes for the paths that must stay fast as data piles up (issue 11).

The conversation list orders by COALESCE(last_message_at, created_at), id: an
index on that expression serves it in order from the first page to the deepest
cursor, and a partial copy serves the unread filter. It replaces the index on
``last_message_at`` alone, which no query could use. The retention prune scans
the audit log by age, the media sweep looks for PENDING attachments and the
token refresh for active connections whose token expires soon.
The SQL is the same on SQLite and PostgreSQL.
"""

ACTIVITY = "organization_id, COALESCE(last_message_at, created_at), id"


def up(migrator, db):
    db.execute_sql("DROP INDEX conversation_organization_id_last_message_at")
    db.execute_sql(f"CREATE INDEX conversation_organization_activity ON conversation ({ACTIVITY})")
    db.execute_sql(
        f"CREATE INDEX conversation_organization_unread ON conversation ({ACTIVITY}) "
        "WHERE unread_count > 0"
    )
    migrator.migrate(
        migrator.add_index("audit_log", ("created_at",), False),
        migrator.add_index("attachment", ("status", "updated_at"), False),
        migrator.add_index("platform_connection", ("status", "token_expires_at"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("platform_connection", "platform_connection_status_token_expires_at"),
        migrator.drop_index("attachment", "attachment_status_updated_at"),
        migrator.drop_index("audit_log", "audit_log_created_at"),
    )
    db.execute_sql("DROP INDEX conversation_organization_unread")
    db.execute_sql("DROP INDEX conversation_organization_activity")
    db.execute_sql(
        "CREATE INDEX conversation_organization_id_last_message_at "
        "ON conversation (organization_id, last_message_at)"
    )
