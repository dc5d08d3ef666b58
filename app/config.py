"""Every setting SNORQ reads, taken from the environment in one place.

With nothing set, SNORQ runs embedded: SQLite under ``instance/``, an in-process
Redis-compatible store, and a development encryption key generated on first use.
Setting ``DATABASE_URL`` (PostgreSQL, or an SQLite file named on purpose) switches to
production mode, where a missing secret is a start-up error instead of a generated
default.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

PLATFORMS = ("whatsapp", "facebook", "tiktok")

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com/v25.0"
DEFAULT_TIKTOK_API_URL = "https://business-api.tiktok.com/open_api/v1.3"
DEFAULT_TIKTOK_AUTH_URL = "https://www.tiktok.com/v2/auth/authorize/"

#: The schemes ``DATABASE_URL`` may have.
POSTGRES_SCHEMES = ("postgresql", "postgres")
SQLITE_SCHEME = "sqlite"

#: The seed's daily quotas per connection (messages per rolling 24 h).
DEFAULT_DAILY_QUOTAS = {"whatsapp": 1000, "facebook": 200, "tiktok": 100}


class ConfigError(Exception):
    """A setting is missing or invalid; the message says what to set."""


@dataclass(frozen=True)
class PlatformSecrets:
    """The app credentials SNORQ holds for one platform."""

    app_id: str = ""
    app_secret: str = ""
    verify_token: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str | None
    redis_url: str | None
    secret_key: str
    encryption_keys: tuple[str, ...]
    platforms: Mapping[str, PlatformSecrets]
    whatsapp_config_id: str = ""
    tiktok_redirect_uri: str = ""
    public_url: str = "http://127.0.0.1:5000"
    graph_api_url: str = DEFAULT_GRAPH_API_URL
    facebook_auth_url: str = ""
    tiktok_api_url: str = DEFAULT_TIKTOK_API_URL
    tiktok_auth_url: str = DEFAULT_TIKTOK_AUTH_URL
    webhook_max_bytes: int = 3 * 1024 * 1024
    tiktok_signature_tolerance: int = 300
    daily_quotas: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DAILY_QUOTAS))
    messenger_human_agent: bool = False
    token_refresh_margin: int = 6 * 3600
    http_timeout: float = 10.0
    send_unconfirmed_wait: int = 600
    send_give_up_after: int = 24 * 3600
    delayed_job_grace: int = 120
    webhook_sweep_grace: int = 300
    webhook_retention_days: int = 30
    audit_retention_days: int = 365
    media_max_bytes: int = 100 * 1024 * 1024
    media_s3_bucket: str = ""
    media_s3_endpoint: str = ""
    media_s3_region: str = ""
    clock_run_at_start: bool = False
    proxy_count: int = 0
    metrics_token: str = ""
    worker_metrics_port: int = 9191

    @property
    def production(self) -> bool:
        return self.database_url is not None

    def startup_warnings(self) -> list[str]:
        """What an operator should hear about when a process starts."""
        warnings = []
        if not self.production and self.encryption_keys == (self._development_key(),):
            warnings.append(
                f"Tokens are encrypted with a development key kept in "
                f"{self.instance_path / 'encryption_key'}; set SNORQ_ENCRYPTION_KEYS "
                "before storing real platform tokens."
            )
        return warnings

    def _development_key(self) -> str | None:
        path = self.instance_path / "encryption_key"
        return path.read_text().strip() if path.exists() else None

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file: ``instance/snorq.db``, a ``sqlite:///`` URL's, or None (PostgreSQL)."""
        if self.database_url is None:
            return self.instance_path / "snorq.db"
        url = urlsplit(self.database_url)
        if url.scheme != SQLITE_SCHEME:
            return None
        # sqlite:///relative/x.db and sqlite:////absolute/x.db, as playhouse.db_url reads them.
        return Path(url.path[1:]).resolve()

    @property
    def media_path(self) -> Path:
        return self.instance_path / "media"

    def secrets_for(self, platform: str) -> PlatformSecrets:
        return self.platforms[platform]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: ``os.environ``).

        Raises:
          ConfigError: in production mode when ``SECRET_KEY`` or
            ``SNORQ_ENCRYPTION_KEYS`` is missing, when ``DATABASE_URL`` is not a
            database SNORQ runs on, or when a number is malformed.
        """
        env = os.environ if env is None else env
        instance_path = Path(env.get("SNORQ_INSTANCE_PATH") or "instance").resolve()
        database_url = _database_url(env)
        if database_url is None:
            secret_key, encryption_keys = _development_secrets(env, instance_path)
        else:
            secret_key = _required(env, "SECRET_KEY", "a long random string signing sessions")
            encryption_keys = _split(
                _required(env, "SNORQ_ENCRYPTION_KEYS", "comma-separated Fernet keys")
            )
        _check_fernet_keys(encryption_keys)
        graph_api_url = env.get("GRAPH_API_URL", DEFAULT_GRAPH_API_URL).rstrip("/")
        public_url = env.get("SNORQ_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
        return cls(
            instance_path=instance_path,
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret_key,
            encryption_keys=encryption_keys,
            platforms=_platform_secrets(env),
            whatsapp_config_id=env.get("WHATSAPP_CONFIG_ID", ""),
            tiktok_redirect_uri=env.get("TIKTOK_REDIRECT_URI")
            or f"{public_url}/api/v1/platforms/callback/tiktok",
            public_url=public_url,
            graph_api_url=graph_api_url,
            facebook_auth_url=env.get("FACEBOOK_AUTH_URL") or _facebook_dialog_url(graph_api_url),
            tiktok_api_url=env.get("TIKTOK_API_URL", DEFAULT_TIKTOK_API_URL).rstrip("/"),
            tiktok_auth_url=env.get("TIKTOK_AUTH_URL", DEFAULT_TIKTOK_AUTH_URL),
            webhook_max_bytes=_int(env, "SNORQ_WEBHOOK_MAX_BYTES", 3 * 1024 * 1024),
            tiktok_signature_tolerance=_int(env, "TIKTOK_SIGNATURE_TOLERANCE", 300),
            daily_quotas={
                name: _int(env, f"SNORQ_DAILY_QUOTA_{name.upper()}", quota)
                for name, quota in DEFAULT_DAILY_QUOTAS.items()
            },
            messenger_human_agent=_flag(env, "FACEBOOK_HUMAN_AGENT"),
            token_refresh_margin=_int(env, "SNORQ_TOKEN_REFRESH_MARGIN", 6 * 3600),
            http_timeout=float(_int(env, "SNORQ_HTTP_TIMEOUT", 10)),
            send_unconfirmed_wait=_int(env, "SNORQ_SEND_UNCONFIRMED_WAIT", 600),
            send_give_up_after=_int(env, "SNORQ_SEND_GIVE_UP_AFTER", 24 * 3600),
            delayed_job_grace=_int(env, "SNORQ_DELAYED_JOB_GRACE", 120),
            webhook_sweep_grace=_int(env, "SNORQ_WEBHOOK_SWEEP_GRACE", 300),
            webhook_retention_days=_int(env, "SNORQ_WEBHOOK_RETENTION_DAYS", 30),
            audit_retention_days=_int(env, "SNORQ_AUDIT_RETENTION_DAYS", 365),
            media_max_bytes=_int(env, "SNORQ_MEDIA_MAX_BYTES", 100 * 1024 * 1024),
            media_s3_bucket=env.get("SNORQ_MEDIA_S3_BUCKET", ""),
            media_s3_endpoint=env.get("SNORQ_MEDIA_S3_ENDPOINT", ""),
            media_s3_region=env.get("SNORQ_MEDIA_S3_REGION", ""),
            clock_run_at_start=_flag(env, "SNORQ_CLOCK_RUN_AT_START"),
            proxy_count=_int(env, "SNORQ_PROXY_COUNT", 0),
            metrics_token=env.get("SNORQ_METRICS_TOKEN", "").strip(),
            worker_metrics_port=_int(env, "SNORQ_WORKER_METRICS_PORT", 9191),
        )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


LOG_FORMATS = ("text", "json")


def log_format(env: Mapping[str, str] | None = None) -> str:
    """``LOG_FORMAT``: ``text`` (readable lines, the default) or ``json`` (one object a line).

    Read on its own, not with :class:`Settings`: a process sets up its logging
    before anything else, a command that needs no secrets included.

    Raises:
      ConfigError: for any other value.
    """
    env = os.environ if env is None else env
    value = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, not {value!r}.")
    return value


def _database_url(env: Mapping[str, str]) -> str | None:
    """``DATABASE_URL`` if it is PostgreSQL or an SQLite file; None if unset.

    Raises:
      ConfigError: any other scheme (the message names the scheme only: the URL may
        hold a password).
    """
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return None
    scheme, found, _ = url.partition("://")
    if not found or scheme.lower() not in (*POSTGRES_SCHEMES, SQLITE_SCHEME):
        named = repr(scheme) if found else "missing"
        raise ConfigError(
            f"DATABASE_URL must start with postgresql://, postgres:// or sqlite:/// "
            f"(its scheme is {named})."
        )
    if scheme.lower() == SQLITE_SCHEME and urlsplit(url).path[1:] in ("", ":memory:"):
        raise ConfigError(
            "DATABASE_URL: a sqlite:/// URL names a file, as sqlite:////var/lib/snorq/snorq.db."
        )
    return url


def _platform_secrets(env: Mapping[str, str]) -> dict[str, PlatformSecrets]:
    tiktok_secret = env.get("TIKTOK_CLIENT_SECRET", "")
    return {
        "whatsapp": PlatformSecrets(
            app_id=env.get("WHATSAPP_APP_ID", ""),
            app_secret=env.get("WHATSAPP_APP_SECRET", ""),
            verify_token=env.get("WHATSAPP_VERIFY_TOKEN", ""),
            webhook_secret=env.get("WHATSAPP_APP_SECRET", ""),
        ),
        "facebook": PlatformSecrets(
            app_id=env.get("FACEBOOK_APP_ID", ""),
            app_secret=env.get("FACEBOOK_APP_SECRET", ""),
            verify_token=env.get("FACEBOOK_VERIFY_TOKEN", ""),
            webhook_secret=env.get("FACEBOOK_APP_SECRET", ""),
        ),
        "tiktok": PlatformSecrets(
            app_id=env.get("TIKTOK_CLIENT_KEY", ""),
            app_secret=tiktok_secret,
            webhook_secret=env.get("TIKTOK_WEBHOOK_SECRET") or tiktok_secret,
        ),
    }


def _development_secrets(env: Mapping[str, str], instance_path: Path) -> tuple[str, tuple]:
    """Secrets for the embedded mode: from the environment, else kept in ``instance/``."""
    secret_key = env.get("SECRET_KEY") or _instance_secret(
        instance_path / "secret_key", lambda: secrets.token_urlsafe(48)
    )
    keys = env.get("SNORQ_ENCRYPTION_KEYS")
    if keys:
        return secret_key, _split(keys)
    key_file = instance_path / "encryption_key"
    return secret_key, (_instance_secret(key_file, lambda: Fernet.generate_key().decode()),)


def _instance_secret(path: Path, generate) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate())
    return path.read_text().strip()


def _check_fernet_keys(keys: tuple[str, ...]) -> None:
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"SNORQ_ENCRYPTION_KEYS: key {number} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`)'
            ) from None


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} must be set when DATABASE_URL is set ({what}).")
    return value


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}.") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _facebook_dialog_url(graph_api_url: str) -> str:
    version = graph_api_url.rsplit("/", 1)[-1]
    return f"https://www.facebook.com/{version}/dialog/oauth"
