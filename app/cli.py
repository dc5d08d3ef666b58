"""The ``snorq`` command (contract: ../shared/DESIGN.md, "The public contract").

Commands that create something print its id or token as the last line of
standard output, so scripts can read it; everything else goes to standard error.
"""

from __future__ import annotations

import datetime
import logging
import sys

import click

from app.config import PLATFORMS, ConfigError, get_settings

log = logging.getLogger("snorq")


class SnorqGroup(click.Group):
    """Turns a configuration error into one clear line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            click.echo(f"snorq: configuration error: {error}", err=True)
            sys.exit(2)


@click.group(cls=SnorqGroup)
def main() -> None:
    """SNORQ: one inbox for WhatsApp Business, Facebook Messenger and TikTok."""
    from app.logs import configure_logging

    configure_logging()


def _database():
    """Bind the database for a command (the settings are read here, once)."""
    from app.db import database, init_database

    init_database(get_settings())
    database.connect(reuse_if_open=True)
    return database


@main.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run again)."""
    from app.db import migrate as apply_migrations

    _database()
    applied = apply_migrations()
    click.echo(f"Applied {len(applied)} migration(s)." if applied else "Database is up to date.")


@main.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create an organization; prints its id."""
    from app.models import Organization

    _database()
    click.echo(Organization.create(name=name).id)


@main.command("create-user")
@click.option("--org", "organization_id", type=int, required=True)
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option(
    "--role",
    type=click.Choice(["staff", "admin", "operator"], case_sensitive=False),
    help="admin: the organization's admin page; operator: the whole instance's "
    "[admin for an organization's first user, else staff].",
)
def create_user(organization_id: int, email: str, password: str, role: str | None) -> None:
    """Create a staff member of an organization; prints the user id."""
    from app.auth import hash_password
    from app.models import Organization, Role, User

    _database()
    if Organization.get_or_none(Organization.id == organization_id) is None:
        raise click.ClickException(f"no organization with id {organization_id}")
    if User.get_or_none(User.email == email.strip().lower()) is not None:
        raise click.ClickException(f"a user with email {email} already exists")
    if role is None:
        first = not User.select().where(User.organization == organization_id).exists()
        role = Role.ADMIN if first else Role.STAFF
    user = User.create(
        organization=organization_id,
        email=email.strip().lower(),
        password_hash=hash_password(password),
        role=role.upper(),
    )
    click.echo(user.id)


@main.command("set-role")
@click.option("--email", required=True)
@click.argument("role", type=click.Choice(["staff", "admin", "operator"], case_sensitive=False))
def set_role(email: str, role: str) -> None:
    """Make a staff member staff, an admin of their organization, or an instance operator."""
    from app.models import User

    _database()
    if not User.update(role=role.upper()).where(User.email == email.strip().lower()).execute():
        raise click.ClickException(f"no user with email {email}")
    click.echo(f"{email} is now {role.lower()}.", err=True)


@main.command("create-token")
@click.option("--email", required=True)
def create_token(email: str) -> None:
    """Create an API token for a staff member; prints the token (shown only once)."""
    from app.auth import create_api_token
    from app.models import User

    _database()
    user = User.get_or_none(User.email == email.strip().lower())
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    click.echo(create_api_token(user))


@main.command("add-connection")
@click.option("--org", "organization_id", type=int, required=True)
@click.option("--platform", type=click.Choice(PLATFORMS), required=True)
@click.option("--account-id", required=True, help="Phone-number id, Page id or business id.")
@click.option("--access-token", required=True)
@click.option("--refresh-token")
@click.option("--expires-in", type=int, help="Seconds until the access token expires.")
@click.option("--name", default="")
def add_connection(
    organization_id: int,
    platform: str,
    account_id: str,
    access_token: str,
    refresh_token: str | None,
    expires_in: int | None,
    name: str,
) -> None:
    """Connect an account by hand (system-user tokens); prints the connection id."""
    from app.db import utcnow
    from app.models import Organization, PlatformConnection

    _database()
    if Organization.get_or_none(Organization.id == organization_id) is None:
        raise click.ClickException(f"no organization with id {organization_id}")
    if PlatformConnection.get_or_none(
        PlatformConnection.platform == platform, PlatformConnection.account_id == account_id
    ):
        raise click.ClickException(f"{platform} account {account_id} is already connected")
    connection = PlatformConnection(
        organization=organization_id,
        platform=platform,
        account_id=account_id,
        name=name or f"{platform} {account_id}",
        token_expires_at=None
        if expires_in is None
        else utcnow() + datetime.timedelta(seconds=expires_in),
    )
    connection.set_tokens(access_token, refresh_token)
    connection.save()
    click.echo(connection.id)


@main.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def dead_letters(as_json: bool) -> None:
    """List dead-lettered jobs and webhook events not processed or routed, with why."""
    from app import failure_report
    from app.webhook_failures import failed_webhooks
    from workers import dead_letters as jobs
    from workers.broker import broker

    _database()
    letters, webhooks = jobs.dead_letters(broker), failed_webhooks()
    if as_json:
        click.echo(failure_report.as_json(letters, webhooks))
    else:
        click.echo(failure_report.as_text(letters, webhooks))


@main.command()
@click.option(
    "--failed", is_flag=True, help="Only events not processed (failed, or stuck past the sweep)."
)
@click.option("--since", type=click.DateTime(), help="Only events received since (UTC).")
@click.option("--event", "event_ids", type=int, multiple=True, help="This stored event (repeat).")
@click.option("--dead-letters", "all_jobs", is_flag=True, help="Every dead-lettered job instead.")
@click.option("--job", "job_ids", multiple=True, help="This dead-lettered job (repeat).")
def replay(
    failed: bool,
    since: datetime.datetime | None,
    event_ids: tuple[int, ...],
    all_jobs: bool,
    job_ids: tuple[str, ...],
) -> None:
    """Process stored webhook events again, or queue dead-lettered jobs again.

    Safe to repeat: nothing already applied is applied twice.
    """
    from app.models import WebhookEvent
    from app.webhook_failures import unprocessed_query
    from workers.inbound import process

    _database()
    if all_jobs or job_ids:
        from workers import dead_letters as jobs
        from workers.broker import broker

        replayed = jobs.replay(broker, set(job_ids) if job_ids else None)
        missing = set(job_ids) - set(replayed)
        if missing:
            click.echo(f"Not dead-lettered (any more): {', '.join(sorted(missing))}", err=True)
        click.echo(f"Queued {len(replayed)} dead-lettered job(s) again.")
        if not event_ids:
            return
    query = unprocessed_query() if failed else WebhookEvent.select()
    query = query.order_by(WebhookEvent.id)
    if event_ids:
        query = query.where(WebhookEvent.id.in_(event_ids))
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    count = 0
    for event in query.iterator():
        process(event)
        count += 1
    click.echo(f"Replayed {count} webhook event(s).")


@main.command("discard-webhooks")
@click.argument("ids", nargs=-1, type=int, required=True)
def discard_webhooks(ids: tuple[int, ...]) -> None:
    """Delete stored webhook events by id, for good: they will never be replayed.

    Retention keeps an event that failed, or was never processed, until it is
    replayed or discarded here.
    """
    from app import retention

    _database()
    click.echo(f"Discarded {retention.discard_webhooks(ids)} webhook event(s).")


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored token under the first key of SNORQ_ENCRYPTION_KEYS."""
    from app import crypto
    from app.models import PlatformConnection

    database = _database()
    count = 0
    with database.atomic():
        for connection in PlatformConnection.select().iterator():
            connection.access_token_encrypted = crypto.reencrypt(connection.access_token_encrypted)
            if connection.refresh_token_encrypted is not None:
                connection.refresh_token_encrypted = crypto.reencrypt(
                    connection.refresh_token_encrypted
                )
            connection.save()
            count += 1
    click.echo(f"Re-encrypted the tokens of {count} connection(s).")


@main.command()
@click.argument("platform", type=click.Choice(PLATFORMS))
@click.option("--account-id", help="Phone-number id, Page id or business id [sandbox's].")
@click.option(
    "--from", "contact", help="The customer: phone number or BSUID, PSID, or TikTok user id."
)
@click.option("--name", help="The customer's display name.")
@click.option("--text", required=True, help="What the customer writes.")
@click.option("--url", help="The running SNORQ [SNORQ_PUBLIC_URL, or the sandbox's].")
@click.option("--secret", help="The platform's webhook secret [from the environment or sandbox].")
def simulate(
    platform: str,
    account_id: str | None,
    contact: str | None,
    name: str | None,
    text: str,
    url: str | None,
    secret: str | None,
) -> None:
    """Post a correctly signed inbound message webhook to a running SNORQ; prints its id."""
    import os

    import requests

    from app.sandbox import simulate_target
    from app.simulator.customer import customer
    from app.simulator.delivery import webhook_url
    from app.simulator.inbound import message_webhook, post

    target = simulate_target(platform, account_id, url, secret, os.environ)
    if target.account is None:
        raise click.UsageError("--account-id is required (this folder has no sandbox)")
    if not target.secret:
        raise click.UsageError(f"no {platform} webhook secret: give --secret")
    who = customer(platform, contact, name)
    message_id, payload = message_webhook(target.account, who, text=text)
    endpoint = webhook_url(target.url, platform)
    try:
        response = post(target.url, platform, payload, target.secret)
    except requests.RequestException as error:
        raise click.ClickException(f"could not reach {endpoint} ({type(error).__name__})") from None
    click.echo(
        f"{who.name} ({who.external_id}) wrote to {platform} account "
        f"{target.account.account_id}: POST {endpoint} answered "
        f"{response.status_code} {response.reason}",
        err=True,
    )
    if not response.ok:
        raise click.ClickException(response.text.strip() or "SNORQ refused the webhook")
    click.echo(message_id)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--sandbox", is_flag=True, help="Point the platforms at the built-in simulator.")
def run(host: str, port: int, sandbox: bool) -> None:
    """Run web, worker and clock in one process (Ctrl-C stops everything)."""
    from app.embedded import run_embedded

    run_embedded(host, port, sandbox=sandbox)
