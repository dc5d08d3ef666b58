"""Helpers the tests share: clean state, platform-style signing, draining the queues."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from app.config import get_settings

META_SECRETS = {"whatsapp": "wa-app-secret", "facebook": "fb-app-secret"}
TIKTOK_SECRET = "tt-client-secret"


def reset_state() -> None:
    """Empty every table and the Redis database, and forget in-process caches."""
    from app import messages, routing
    from app.db import database, is_postgres
    from app.models import ALL_MODELS
    from app.redis_client import get_redis

    with database.connection_context():
        tables = [model._meta.table_name for model in ALL_MODELS]
        if is_postgres():
            quoted = ", ".join(f'"{table}"' for table in tables)
            database.execute_sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
        else:
            with database.atomic():
                for model in reversed(ALL_MODELS):
                    model.delete().execute()
    get_redis().flushdb()
    routing.forget()
    messages.forget_cached_ids()
    get_settings.cache_clear()


def meta_body(payload: dict) -> bytes:
    """A payload encoded the way Meta sends it: escaped unicode and escaped slashes."""
    return json.dumps(payload, ensure_ascii=True).replace("/", "\\/").encode()


def meta_headers(platform: str, body: bytes) -> dict:
    digest = hmac.new(META_SECRETS[platform].encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def tiktok_body(payload: dict) -> bytes:
    """A TikTok webhook body: UTF-8 JSON; ``content`` itself is a JSON string."""
    return json.dumps(payload, ensure_ascii=False).encode()


def tiktok_headers(body: bytes, at: int | None = None, secret: str = TIKTOK_SECRET) -> dict:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"TikTok-Signature": f"t={at},s={digest}", "Content-Type": "application/json"}


def signed(platform: str, payload: dict) -> tuple[bytes, dict]:
    """The body and headers a platform would send for ``payload``."""
    if platform == "tiktok":
        body = tiktok_body(payload)
        return body, tiktok_headers(body)
    body = meta_body(payload)
    return body, meta_headers(platform, body)
