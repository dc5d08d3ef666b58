"""A send's claim no longer records the attempt holding it (issue 16).

The claim and the in-flight mark are one statement now, and a send marked in flight
is never claimed again, so no attempt ever needs to know whether it holds a claim.
The SQL is the same on SQLite (3.35 and later) and PostgreSQL.
"""


def up(migrator, db):
    db.execute_sql("ALTER TABLE message DROP COLUMN send_claim")


def down(migrator, db):
    db.execute_sql("ALTER TABLE message ADD COLUMN send_claim VARCHAR(64)")
