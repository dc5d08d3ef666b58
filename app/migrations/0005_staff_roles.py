"""Staff roles: STAFF, ADMIN (the organization's admin page), OPERATOR (the whole instance).

The earliest staff member of each organization becomes its admin, so every
organization that exists already has one.
"""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("staff_user", "role", CharField(max_length=16, default="STAFF"))
    )
    db.execute_sql(
        "UPDATE staff_user SET role = 'ADMIN' WHERE id IN "
        "(SELECT MIN(id) FROM staff_user GROUP BY organization_id)"
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("staff_user", "role"))
