"""The contract every platform adapter keeps, and the flow the three share.

An adapter is pure protocol: it verifies and parses webhooks, builds requests to
the platform's API and reads its answers. It never touches the database or the
queue; workers hand it what it needs (an :class:`Account`, a :class:`Recipient`)
and store what it returns.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlencode

import requests

from app.config import PlatformSecrets, Settings, get_settings
from app.platforms import http
from app.platforms.errors import (
    REJECTED,
    THROTTLED,
    UNAVAILABLE,
    ErrorCode,
    Outcome,
    PermanentError,
    PlatformError,
    TemporaryError,
)
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


@dataclass(frozen=True)
class MediaSource:
    """Where a platform keeps the file of a message: its media id, a link, or both.

    ``message_id`` and ``thread_id`` are the platform's ids of the message and of
    its conversation (TikTok asks for both to hand out a link).
    """

    kind: str
    media_id: str | None = None
    url: str | None = None
    message_id: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True)
class MediaRule:
    """What a platform takes as a reply's file of one kind (``types`` None: any type)."""

    types: frozenset[str] | None
    max_bytes: int


#: A megabyte as SNORQ counts the platforms' file limits (the smaller reading, to be safe).
MB = 1000 * 1000

#: Answers to a download whose link has expired (or was never valid for this token).
EXPIRED_LINK = frozenset({401, 403, 404, 410})


class Platform:
    """One messaging platform. Subclasses set the constants and override the hooks.

    Webhook methods are pure functions of their input; the others call the
    platform's API through :mod:`app.platforms.http` and raise the errors of
    :mod:`app.platforms.errors`, as :meth:`classify` names them.
    """

    name: ClassVar[str]
    #: The platform's name as staff read it (Facebook connections: "Messenger").
    title: ClassVar[str]
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

    # -- replies: checked before they are stored and again before they are sent ------

    #: The extras a reply may carry besides its text (a template, quick replies).
    reply_extras: ClassVar[frozenset[str]] = frozenset()

    def validate_reply(self, text: str, extras: Mapping) -> dict:
        """The extras of a reply, checked (none, unless the platform has some).

        Raises:
          PermanentError: a refusal staff can act on (the API answers it as a 400).
        """
        self.refuse_extras(extras)
        self.check_text(text)
        return {}

    def refuse_extras(self, extras: Mapping) -> None:
        """Refuse extras the platform does not have (say, quick replies on WhatsApp)."""
        unknown = sorted(set(extras) - self.reply_extras)
        if unknown:
            raise invalid_reply(f"{self.title} replies cannot carry {', '.join(unknown)}.")

    def check_text(self, text: str) -> None:
        """Refuse an empty reply, or one longer than the platform takes."""
        if not text.strip():
            raise invalid_reply("A reply needs some text.")
        if len(text) > self.max_text_length:
            raise PermanentError(
                ErrorCode.MESSAGE_TOO_LONG,
                f"{self.title} takes at most {self.max_text_length} characters in a "
                f"message; this one has {len(text)}.",
            )

    # -- messaging --------------------------------------------------------------

    #: Whether the platform has read receipts (:meth:`mark_read`) and a typing indicator.
    read_receipts: ClassVar[bool] = False
    typing_indicator: ClassVar[bool] = False

    def send(self, account: Account, recipient: Recipient, outbound: Outbound) -> str:
        """Send one message; returns the platform's id for it.

        Raises:
          PlatformError: classified (TemporaryError, AuthError, PermanentError).
        """
        raise NotImplementedError

    def mark_read(self, account: Account, recipient: Recipient, external_id: str) -> None:
        """Tell the platform staff have read up to ``external_id`` (where it supports it)."""

    def typing(self, account: Account, recipient: Recipient, external_id: str) -> None:
        """Show the customer that staff are typing (where the platform supports it)."""

    # -- errors: what the platform's refusals mean (PLATFORMS.md, section 5) -----------

    #: What the platform's error codes mean, by code or by (code, subcode).
    error_codes: ClassVar[Mapping[int | tuple[int, int], Outcome]] = {}
    #: What an HTTP status means when the answer carries no error code at all (5xx:
    #: unavailable, on every platform).
    http_statuses: ClassVar[Mapping[int, Outcome]] = {429: THROTTLED}

    @classmethod
    def classify(
        cls,
        code: int | None,
        text: str,
        *,
        subcode: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> PlatformError:
        """The error for one of the platform's refusals, by its code, never by its text.

        A code SNORQ does not know is REJECTED; only an answer with no code at all
        is classified by its HTTP status.

        Parameters:
          code: The platform's error code; None when its answer had none (an HTML page).
          text: The platform's words for it, kept in the message staff read.
          subcode: A finer code (Graph's ``error_subcode``).
          http_status: The answer's HTTP status.
          retry_after: Seconds the platform asked to wait, kept on a TemporaryError.
        """
        if code is None:
            message = f"{cls.title} answered HTTP {http_status}."
            outcome = cls.http_statuses.get(http_status) or _by_status(http_status)
        else:
            message = f"{cls.title} error {code}: {text}"
            outcome = cls.outcome(code, subcode) or REJECTED
        return outcome.error(message, platform_code=code, retry_after=retry_after)

    @classmethod
    def outcome(cls, code: int, subcode: int | None) -> Outcome | None:
        """What one of the platform's codes means; None for a code SNORQ does not know."""
        return cls.error_codes.get((code, subcode)) or cls.error_codes.get(code)

    def unconfirmed(self) -> TemporaryError:
        """A send's 2xx answer that names no message: it may have gone, so it is not repeated."""
        return TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE,
            f"{self.title} accepted the request but did not say which message it sent.",
            maybe_delivered=True,
        )

    def unreadable(self) -> TemporaryError:
        """Any other call's 2xx answer SNORQ cannot read: nothing was sent, so try again."""
        return TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"{self.title} gave an answer SNORQ cannot read."
        )

    # -- connections --------------------------------------------------------------

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

    # -- media and profiles --------------------------------------------------------

    #: The largest file the platform hands over in a message.
    max_media_bytes: ClassVar[int]
    #: What a reply may attach, by kind (none: the platform takes no files from SNORQ).
    media_rules: ClassVar[Mapping[str, MediaRule]] = {}
    #: The kinds of file a reply's text may go with as a caption.
    caption_kinds: ClassVar[frozenset[str]] = frozenset()
    #: Whether the platform tells more about a customer than its webhooks do.
    profiles: ClassVar[bool] = False

    def validate_media(self, kind: str, mime_type: str, size: int, caption: str) -> None:
        """Refuse a file (with its caption) the platform would not take, before it is sent.

        Raises:
          PermanentError: REJECTED, saying which limit the file is over.
        """
        rule = self.media_rules.get(kind)
        if rule is None:
            kinds = ", ".join(sorted(self.media_rules)) or "none"
            raise invalid_reply(
                f"{self.title} replies cannot carry a {kind} file (they take: {kinds})."
            )
        if rule.types is not None and mime_type not in rule.types:
            raise invalid_reply(
                f"{self.title} takes a {kind} as {', '.join(sorted(rule.types))}, not {mime_type}."
            )
        if size > rule.max_bytes:
            raise invalid_reply(
                f"{self.title} takes a {kind} of at most {_megabytes(rule.max_bytes)}; "
                f"this one is {_megabytes(size)}."
            )
        if caption.strip() and kind not in self.caption_kinds:
            raise invalid_reply(
                f"{self.title} sends a {kind} without text: send the text as a reply of its own."
            )

    def open_media(self, account: Account, source: MediaSource) -> requests.Response:
        """The file behind ``source``, as a streaming answer for the caller to read and close.

        A link that no longer works (HTTP 401, 403, 404 or 410) is asked for again
        once, where the platform hands out links by media id (:meth:`media_url`).

        Raises:
          TemporaryError: the platform could not hand it over now; try again later.
          PermanentError: the platform no longer has the file.
          AuthError: the token was refused.
        """
        response = self._download(account, source.url or self.media_url(account, source))
        if response.status_code in EXPIRED_LINK and source.media_id is not None:
            response.close()
            response = self._download(account, self.media_url(account, source))
        return _media_answer(response, self.title)

    def media_url(self, account: Account, source: MediaSource) -> str:
        """A fresh download link for ``source``, from the platform's media id."""
        raise PermanentError(
            ErrorCode.REJECTED, f"The link {self.title} gave for this file no longer works."
        )

    def media_headers(self, account: Account) -> dict[str, str]:
        """The headers a download needs (WhatsApp: the bearer token)."""
        return {}

    def _download(self, account: Account, url: str) -> requests.Response:
        return http.request("GET", url, headers=self.media_headers(account), stream=True)

    def fetch_profile(self, account: Account, recipient: Recipient) -> Profile:
        """What the platform tells about a customer beyond its webhooks (nothing, by default).

        Raises:
          PlatformError: classified; a refusal (no permission) leaves the contact as it is.
        """
        return Profile()


def invalid_reply(message: str) -> PermanentError:
    """A reply the platform would not take; ``message`` says what to change."""
    return PermanentError(ErrorCode.REJECTED, message)


def error_code(value: object) -> int | None:
    """A platform's error code as its JSON carries it: an integer, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _by_status(http_status: int | None) -> Outcome:
    """An answer without an error code: a 5xx is worth trying again; anything else is not."""
    return UNAVAILABLE if http_status is not None and http_status >= 500 else REJECTED


def _media_answer(response: requests.Response, title: str) -> requests.Response:
    """``response`` if it carries the file; else the error its status calls for."""
    if response.ok:
        return response
    response.close()
    status = response.status_code
    if status == 429 or status >= 500:
        raise TemporaryError(
            ErrorCode.PLATFORM_UNAVAILABLE,
            f"{title} could not hand over the file (HTTP {status}).",
            retry_after=http.retry_after(response),
        )
    raise PermanentError(ErrorCode.REJECTED, f"{title} no longer has this file (HTTP {status}).")


@contextmanager
def uploading(title: str) -> Iterator[None]:
    """Report a refused upload as MEDIA_UPLOAD_FAILED; an upload can be repeated safely.

    A TemporaryError stays one, but no longer ``maybe_delivered``: a file the platform
    kept without answering reaches no customer.
    """
    try:
        yield
    except TemporaryError as error:
        error.maybe_delivered = False
        raise
    except PermanentError as error:
        raise PermanentError(
            ErrorCode.MEDIA_UPLOAD_FAILED,
            f"{title} refused the file: {error.message}",
            platform_code=error.platform_code,
        ) from None


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size / 1000:.0f} KB"


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
