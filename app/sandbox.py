"""The sandbox: SNORQ with every platform pointed at the built-in simulator, and a demo.

``snorq run --sandbox`` (and ``snorq run`` on an empty embedded database) sets
the platform API URLs to the simulator, served under ``/simulator`` by the same
server, fills the platform secrets with sandbox values, and makes sure a demo
organization exists with a staff member and one connection per platform.

The sandbox values (secrets, demo tokens, the staff password, SNORQ's URL) are
generated once into ``instance/sandbox.json``; a restart and ``snorq simulate``
in the same folder read them from there. Every variable is only a default: one
set in the environment wins.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import sqlite3
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from app.config import (
    DEFAULT_GRAPH_API_URL,
    DEFAULT_TIKTOK_API_URL,
    ConfigError,
    Settings,
    get_settings,
)

if TYPE_CHECKING:
    from app.simulator.accounts import Account

SANDBOX_FILE = "sandbox.json"
#: Where the simulator is mounted on SNORQ's own server.
SIMULATOR_PREFIX = "/simulator"
DEMO_ORGANIZATION = "Demo shop"
DEMO_EMAIL = "demo@snorq.test"
#: TikTok business tokens last about a day, refresh tokens a year.
TIKTOK_TOKEN_LIFETIME = datetime.timedelta(days=1)
TIKTOK_REFRESH_LIFETIME = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Sandbox:
    """The values one instance folder's sandbox keeps.

    ``apps`` holds each platform's app id, secret and verify token; ``accounts``
    each demo connection's account id, name and tokens; ``url`` is where SNORQ
    last ran in sandbox mode.
    """

    password: str
    apps: dict
    accounts: dict
    url: str = "http://127.0.0.1:5000"

    @property
    def simulator_url(self) -> str:
        return self.url + SIMULATOR_PREFIX


def _generate() -> Sandbox:
    # The simulator's modules are imported where they are used: `snorq run` without a
    # sandbox never loads them.
    from app.simulator.ids import random_numeric

    def token() -> str:
        return secrets.token_urlsafe(32)

    return Sandbox(
        password=secrets.token_urlsafe(9),
        apps={
            "whatsapp": {
                "app_id": random_numeric(15),
                "app_secret": secrets.token_hex(16),
                "verify_token": token(),
                "config_id": random_numeric(15),
            },
            "facebook": {
                "app_id": random_numeric(15),
                "app_secret": secrets.token_hex(16),
                "verify_token": token(),
            },
            "tiktok": {"app_id": "sbx" + secrets.token_hex(8), "app_secret": secrets.token_hex(20)},
        },
        accounts={
            "whatsapp": {
                "account_id": random_numeric(15),
                "name": "Demo shop (WhatsApp)",
                "access_token": "EAAS" + token(),
                "waba_id": random_numeric(15),
                "display_phone_number": "1555" + random_numeric(7),
            },
            "facebook": {
                "account_id": random_numeric(15),
                "name": "Demo shop",
                "access_token": "EAAS" + token(),
            },
            "tiktok": {
                "account_id": random_numeric(19),
                "name": "demoshop",
                "access_token": "act." + secrets.token_hex(24),
                "refresh_token": "rft." + secrets.token_hex(24),
            },
        },
    )


def sandbox_path(env: Mapping[str, str]) -> Path:
    return Settings.from_env(env).instance_path / SANDBOX_FILE


def load(path: Path) -> Sandbox | None:
    """The sandbox kept at ``path``, or None if there is none.

    Raises:
      ConfigError: the file is not a sandbox file.
    """
    if not path.exists():
        return None
    try:
        return Sandbox(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise ConfigError(f"{path} is not a sandbox file; remove it to start afresh.") from None


def save(path: Path, sandbox: Sandbox) -> None:
    """Write the sandbox file, readable by its owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(sandbox), handle, indent=2)


def local_url(host: str, port: int) -> str:
    """The URL this machine reaches a server on ``host:port`` at."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (naming the wildcard, not binding it)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


#: Any of these set in the environment means the real platforms are meant.
REAL_CREDENTIALS = ("WHATSAPP_APP_SECRET", "FACEBOOK_APP_SECRET", "TIKTOK_CLIENT_SECRET")


def wanted(flag: bool, env: Mapping[str, str]) -> bool:
    """Whether ``snorq run`` starts in the sandbox.

    Yes with ``--sandbox``; in the embedded mode also when this instance folder
    ran in the sandbox before (its demo connections only work against the
    simulator), or when the database is still empty and no real platform
    credentials are set (those mean the platforms themselves are wanted).
    """
    if flag:
        return True
    if env.get("DATABASE_URL"):
        return False
    settings = Settings.from_env(env)
    if (settings.instance_path / SANDBOX_FILE).exists():
        return True
    real = any(env.get(name) for name in REAL_CREDENTIALS)
    return not real and _empty(settings.sqlite_path)


def _empty(path: Path) -> bool:
    from app.models import Organization

    if not path.exists():
        return True
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            table = Organization._meta.table_name
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0  # noqa: S608
        except sqlite3.OperationalError:
            return True


def prepare(host: str, port: int, flag: bool, env: MutableMapping[str, str]) -> Sandbox | None:
    """Set the sandbox's environment for ``snorq run`` if it runs in the sandbox.

    Must run before the settings are first read.
    """
    if not wanted(flag, env):
        return None
    path = sandbox_path(env)
    sandbox = replace(load(path) or _generate(), url=local_url(host, port))
    save(path, sandbox)
    apply(sandbox, env)
    return sandbox


def environment(sandbox: Sandbox) -> dict[str, str]:
    """Every variable the sandbox implies: platform URLs to the simulator, sandbox secrets."""
    graph_version = DEFAULT_GRAPH_API_URL.rsplit("/", 1)[-1]
    tiktok_version = DEFAULT_TIKTOK_API_URL.rsplit("/", 1)[-1]
    simulator, apps = sandbox.simulator_url, sandbox.apps
    return {
        "SNORQ_PUBLIC_URL": sandbox.url,
        "GRAPH_API_URL": f"{simulator}/graph/{graph_version}",
        "FACEBOOK_AUTH_URL": f"{simulator}/facebook/{graph_version}/dialog/oauth",
        "TIKTOK_API_URL": f"{simulator}/tiktok/open_api/{tiktok_version}",
        "TIKTOK_AUTH_URL": f"{simulator}/tiktok/v2/auth/authorize/",
        "WHATSAPP_APP_ID": apps["whatsapp"]["app_id"],
        "WHATSAPP_APP_SECRET": apps["whatsapp"]["app_secret"],
        "WHATSAPP_VERIFY_TOKEN": apps["whatsapp"]["verify_token"],
        "WHATSAPP_CONFIG_ID": apps["whatsapp"]["config_id"],
        "FACEBOOK_APP_ID": apps["facebook"]["app_id"],
        "FACEBOOK_APP_SECRET": apps["facebook"]["app_secret"],
        "FACEBOOK_VERIFY_TOKEN": apps["facebook"]["verify_token"],
        "TIKTOK_CLIENT_KEY": apps["tiktok"]["app_id"],
        "TIKTOK_CLIENT_SECRET": apps["tiktok"]["app_secret"],
    }


def apply(sandbox: Sandbox, env: MutableMapping[str, str]) -> None:
    for name, value in environment(sandbox).items():
        env.setdefault(name, value)


@dataclass(frozen=True)
class Target:
    """Where ``snorq simulate`` posts, for which account (None: unknown), signed how."""

    url: str
    secret: str
    account: Account | None


def simulate_target(
    platform: str,
    account_id: str | None,
    url: str | None,
    secret: str | None,
    env: MutableMapping[str, str],
) -> Target:
    """The options given, completed from this folder's sandbox and then the settings.

    The sandbox's variables are applied first, as ``snorq run`` applied them.
    """
    sandbox = load(sandbox_path(env))
    if sandbox is not None:
        apply(sandbox, env)
    known = sandbox.accounts[platform] if sandbox else {}
    account_id = account_id or known.get("account_id")
    if url is None or secret is None:
        settings = get_settings()
        url = url or settings.public_url
        secret = secret or settings.secrets_for(platform).webhook_secret
    if not account_id:
        return Target(url, secret, None)
    from app.simulator.accounts import Account

    details = known if known.get("account_id") == account_id else {}
    account = Account.described(
        platform,
        account_id,
        details.get("name", ""),
        waba_id=details.get("waba_id"),
        display_phone_number=details.get("display_phone_number"),
    )
    return Target(url, secret, account)


# -- the demo (needs the database) ------------------------------------------------


def set_up_demo(sandbox: Sandbox) -> None:
    """Make sure the demo organization, staff member and connections exist (idempotent)."""
    from app.auth import check_password, hash_password
    from app.db import database, utcnow
    from app.models import Organization, PlatformConnection, Role, User

    with database.atomic():
        user = User.get_or_none(User.email == DEMO_EMAIL)
        if user is None:
            organization = Organization.create(name=DEMO_ORGANIZATION)
            # The demo's one staff member runs the instance too: the admin page shows all.
            user = User.create(
                organization=organization,
                email=DEMO_EMAIL,
                password_hash=hash_password(sandbox.password),
                role=Role.OPERATOR,
            )
        elif not check_password(user, sandbox.password):
            # The printed credentials must work, even if the sandbox file was made anew.
            user.password_hash = hash_password(sandbox.password)
            user.save()
        for platform, spec in sandbox.accounts.items():
            if PlatformConnection.get_or_none(
                PlatformConnection.platform == platform,
                PlatformConnection.account_id == spec["account_id"],
            ):
                continue
            connection = PlatformConnection(
                organization=user.organization_id,
                platform=platform,
                account_id=spec["account_id"],
                name=spec["name"],
            )
            if platform == "tiktok":
                connection.token_expires_at = utcnow() + TIKTOK_TOKEN_LIFETIME
                connection.refresh_expires_at = utcnow() + TIKTOK_REFRESH_LIFETIME
            connection.set_tokens(spec["access_token"], spec.get("refresh_token"))
            connection.save()


def simulator_app(settings: Settings, sandbox: Sandbox) -> Flask:
    """The simulator for this SNORQ: it knows the demo accounts and every stored token."""
    from app.models import PlatformConnection
    from app.simulator import create_simulator_app
    from app.simulator.config import SimulatorConfig

    app = create_simulator_app(SimulatorConfig.from_settings(settings, snorq_url=sandbox.url))
    registry = app.extensions["simulator"].registry
    for platform, spec in sandbox.accounts.items():
        details = {k: spec[k] for k in ("waba_id", "display_phone_number") if k in spec}
        registry.add_account(platform, spec["account_id"], spec["name"], **details)
    # Tokens SNORQ holds now (a refresh may have replaced the demo's) stay valid.
    for connection in PlatformConnection.select().iterator():
        registry.register(
            connection.platform,
            connection.account_id,
            connection.access_token(),
            refresh_token=connection.refresh_token(),
            expires_at=_epoch(connection.token_expires_at),
            refresh_expires_at=_epoch(connection.refresh_expires_at),
            name=connection.name,
        )
    return app


def _epoch(moment: datetime.datetime | None) -> float | None:
    return None if moment is None else moment.replace(tzinfo=datetime.UTC).timestamp()


def mount(web: Flask, simulator: Flask) -> None:
    """Serve ``simulator`` under ``/simulator`` of SNORQ's own server."""
    web.wsgi_app = DispatcherMiddleware(web.wsgi_app, {SIMULATOR_PREFIX: simulator})


def welcome(sandbox: Sandbox) -> str:
    """What ``snorq run`` prints: where to sign in, and what to try."""
    return "\n".join(
        [
            "",
            "  SNORQ sandbox: WhatsApp, Messenger and TikTok are played by the built-in simulator.",
            "",
            f"    Inbox      {sandbox.url}/",
            f"    Email      {DEMO_EMAIL}",
            f"    Password   {sandbox.password}",
            "",
            "  Be a customer: in another terminal, in this folder, run",
            '    snorq simulate whatsapp --text "Hi"',
            "  (or facebook, or tiktok), reply from the inbox and watch the ticks:",
            "  sent, delivered, read.",
            "",
            f"    Simulator  {sandbox.simulator_url}/_simulator/  (faults, requests, webhooks)",
            "",
        ]
    )
