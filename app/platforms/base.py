"""The contract every platform adapter keeps, and the flow the three share.

An adapter is pure protocol: it verifies and parses webhooks, builds requests to
the platform's API and reads its answers. It never touches the database or the
queue; workers hand it what it needs (an :class:`Account`, a :class:`Recipient`)
and store what it returns.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlencode

from app.config import PlatformSecrets, Settings, get_settings
from app.platforms.events import Event


@dataclass(frozen=True)
class Account:
    """The business side of a send: which account, with which (decrypted) token."""

    account_id: str
    access_token: str


@dataclass(frozen=True)
class Recipient:
    """The customer side of a send, as SNORQ knows them from their messages."""

    external_id: str
    phone: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True)
class OutboundMedia:
    """A file staff attach to a reply, read from SNORQ's media storage."""

    kind: str
    mime_type: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class Outbound:
    """One reply to send. ``snorq_message_id`` is echoed back where the platform allows."""

    snorq_message_id: int
    text: str = ""
    template: Mapping | None = None
    quick_replies: tuple[Mapping, ...] = ()
    reply_to: str | None = None
    media: OutboundMedia | None = None
    human_agent: bool = False


@dataclass(frozen=True)
class TokenSet:
    """Tokens from an exchange or a refresh; expiries in seconds from now (None: never)."""

    access_token: str
    refresh_token: str | None = None
    expires_in: int | None = None
    refresh_expires_in: int | None = None


@dataclass(frozen=True)
class Grant:
    """One account an OAuth exchange gave SNORQ access to."""

    account_id: str
    name: str
    tokens: TokenSet
    extra: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """What a platform tells about a customer; the avatar URL usually expires."""

    display_name: str | None = None
    avatar_url: str | None = None
    username: str | None = None


class Platform:
    """One messaging platform. Subclasses set the constants and override the hooks.

    Webhook methods are pure functions of their input; the others call the
    platform's API through :mod:`app.platforms.http` and raise the errors of
    :mod:`app.platforms.errors`.
    """

    name: ClassVar[str]
    #: The longest text the platform accepts in one message.
    max_text_length: ClassVar[int]
    #: The platform's own throughput limit per account: (sends, seconds).
    burst_limit: ClassVar[tuple[int, int]]

    @property
    def settings(self) -> Settings:
        return get_settings()

    # -- webhooks ---------------------------------------------------------------

    def webhook_secret(self) -> str:
        return self.settings.secrets_for(self.name).webhook_secret

    def verify_signature(self, body: bytes, headers: Mapping[str, str], now: float) -> bool:
        """True when ``headers`` carry a valid signature of the exact ``body`` bytes."""
        raise NotImplementedError

    def verify_subscription(self, args: Mapping[str, str]) -> str | None:
        """The challenge to echo for a GET subscription handshake, or None to refuse."""
        return None

    def parse(self, body: bytes) -> list[Event]:
        """The events in a verified webhook body.

        Raises:
          ParseError: when the body is not a payload the platform documents.
        """
        raise NotImplementedError

    # -- messaging --------------------------------------------------------------

    def send(self, account: Account, recipient: Recipient, outbound: Outbound) -> str:
        """Send one message; returns the platform's id for it.

        Raises:
          PlatformError: classified (TemporaryError, AuthError, PermanentError).
        """
        raise NotImplementedError

    def mark_read(self, account: Account, recipient: Recipient, external_id: str) -> None:
        """Tell the platform staff have read up to ``external_id`` (where it supports it)."""

    # -- connections --------------------------------------------------------------

    #: The platform's name as staff read it.
    title: ClassVar[str]

    @property
    def credentials(self) -> PlatformSecrets:
        return self.settings.secrets_for(self.name)

    @property
    def redirect_uri(self) -> str:
        """Where the platform sends staff back; the authorize and token calls must agree."""
        return f"{self.settings.public_url}/api/v1/platforms/callback/{self.name}"

    def can_connect(self) -> bool:
        """Whether SNORQ holds the app credentials the connect flow needs."""
        return bool(self.credentials.app_id and self.credentials.app_secret)

    def authorize_url(self, state: str) -> str:
        """The platform's page where staff grant access; it returns to :attr:`redirect_uri`."""
        return f"{self.authorize_endpoint()}?{urlencode(self.authorize_params(state))}"

    def authorize_endpoint(self) -> str:
        raise NotImplementedError

    def authorize_params(self, state: str) -> dict[str, str]:
        return {
            "client_id": self.credentials.app_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "state": state,
        }

    def exchange_code(self, code: str) -> list[Grant]:
        """Redeem the code from the callback for every account it grants.

        Raises:
          PlatformError: TemporaryError to try again later; any other refuses the grant.
        """
        raise NotImplementedError

    def refresh(self, account: Account, refresh_token: str | None) -> TokenSet:
        """New tokens for ``account``.

        Raises:
          TemporaryError: the platform could not answer; try again later.
          PlatformError: any other kind: refused for good; a person must reconnect.
        """
        raise NotImplementedError


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def same_secret(expected: str, received: str) -> bool:
    """Constant-time comparison of two secrets, whatever characters ``received`` has."""
    return hmac.compare_digest(expected.encode(), received.encode("utf-8", "replace"))


#: How SNORQ names its own message in the fields a platform echoes back
#: (Messenger ``message.metadata``, WhatsApp ``biz_opaque_callback_data``).
_REFERENCE_PREFIX = "snorq:"


def snorq_reference(message_id: int) -> str:
    return f"{_REFERENCE_PREFIX}{message_id}"


def parse_snorq_reference(value: object) -> int | None:
    """SNORQ's message id from an echoed reference, or None if it is not one of ours."""
    if not isinstance(value, str) or not value.startswith(_REFERENCE_PREFIX):
        return None
    number = value.removeprefix(_REFERENCE_PREFIX)
    return int(number) if number.isdigit() else None
