"""Who handles each conversation and where it stands (issue 15).

A conversation gets a status (OPEN, PENDING, SNOOZED until a time, RESOLVED),
the moment it last changed, and an assignee. Staff get an "available" flag and
the time they were last handed a conversation, for the optional round-robin
an organization turns on with ``auto_assign``.

The columns are added with SQL defaults (not peewee's add-then-backfill), so rows
written by anything that names only the older columns still get them. The list
filtered by status, or by assignee, reads one index range in the list's order,
as the unfiltered list does (0004); the clock finds expired
snoozes through a partial index on ``snoozed_until``. The SQL is the same on
SQLite and PostgreSQL.

"Mine" and "open" together are served by either index, the planner reading the
smaller range in order and filtering it: no third index on every message's update.
"""

ACTIVITY = "COALESCE(last_message_at, created_at), id"

COLUMNS = (
    ("conversation", "status VARCHAR(16) NOT NULL DEFAULT 'OPEN'"),
    ("conversation", "snoozed_until TIMESTAMP"),
    ("conversation", "status_changed_at TIMESTAMP"),
    ("conversation", "assignee_id INTEGER REFERENCES staff_user (id) ON DELETE SET NULL"),
    ("staff_user", "available BOOLEAN NOT NULL DEFAULT FALSE"),
    ("staff_user", "last_assigned_at TIMESTAMP"),
    ("organization", "auto_assign BOOLEAN NOT NULL DEFAULT FALSE"),
)

INDEXES = (
    f"conversation_organization_status ON conversation (organization_id, status, {ACTIVITY})",
    f"conversation_organization_assignee ON conversation (organization_id, assignee_id, {ACTIVITY})",
    "conversation_snoozed_until ON conversation (snoozed_until) WHERE status = 'SNOOZED'",
)


def up(migrator, db):
    for table, column in COLUMNS:
        db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column}")
    for index in INDEXES:
        db.execute_sql(f"CREATE INDEX {index}")


def down(migrator, db):
    for index in INDEXES:
        db.execute_sql(f"DROP INDEX {index.split()[0]}")
    for table, column in reversed(COLUMNS):
        migrator.migrate(migrator.drop_column(table, column.split()[0]))
