"""TikTok API for Business, Business Messaging: webhooks, sends, tokens.

Protocol facts: ../shared/PLATFORMS.md, section 4B. Webhooks carry
``TikTok-Signature: t=<unix seconds>,s=<hex>``, an HMAC-SHA256 of ``"<t>." + body``;
there is no GET handshake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from app.models import ContentType, Direction, MessageStatus
from app.platforms import http
from app.platforms.base import (
    MB,
    Account,
    Grant,
    MediaRule,
    MediaSource,
    Outbound,
    OutboundMedia,
    Platform,
    Profile,
    Recipient,
    TokenSet,
    error_code,
    hmac_sha256_hex,
    same_secret,
    uploading,
)
from app.platforms.errors import (
    NO_PERMISSION,
    THROTTLED,
    TOKEN_REFUSED,
    UNAVAILABLE,
    AuthError,
    ErrorCode,
    Outcome,
    PermanentError,
    PlatformError,
    refused,
)
from app.platforms.events import (
    AuthorizationRevoked,
    ContactRef,
    Event,
    MediaRef,
    MessageEvent,
    WatermarkEvent,
)
from app.platforms.parsing import Fields, clip, labelled, load_object

SIGNATURE_HEADER = "TikTok-Signature"


def parse_signature_header(value: str) -> tuple[int, str] | None:
    """``(timestamp, signature)`` from a ``t=…,s=…`` header, or None if malformed."""
    fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
    timestamp, signature = fields.get("t", "").strip(), fields.get("s", "").strip()
    if not timestamp.isdigit() or not signature:
        return None
    return int(timestamp), signature


class TikTok(Platform):
    name: ClassVar[str] = "tiktok"
    title: ClassVar[str] = "TikTok"
    #: The limit TikTok Business Messaging partners document (infobip.com/docs/tiktok/
    #: message-types: "up to 6000 characters").
    max_text_length: ClassVar[int] = 6000
    burst_limit: ClassVar[tuple[int, int]] = (600, 60)

    # -- webhooks -----------------------------------------------------------------

    def verify_signature(self, body: bytes, headers: Mapping[str, str], now: float) -> bool:
        secret = self.webhook_secret()
        parsed = parse_signature_header(headers.get(SIGNATURE_HEADER, ""))
        if not secret or parsed is None:
            return False
        timestamp, received = parsed
        if abs(now - timestamp) > self.settings.tiktok_signature_tolerance:
            return False
        expected = hmac_sha256_hex(secret, str(timestamp).encode() + b"." + body)
        return same_secret(expected, received)

    def parse(self, body: bytes) -> list[Event]:
        return parse_webhook(body)

    # -- sending (PLATFORMS.md, section 4B "Send"; Chatwoot's app/services/tiktok/client.rb);
    # a reply is text or an image, with no extras, no read receipts and no typing -----

    def send(self, account: Account, recipient: Recipient, outbound: Outbound) -> str:
        if not recipient.thread_id:
            raise PermanentError(
                ErrorCode.INVALID_RECIPIENT,
                "TikTok has not named this conversation yet; a reply can go out once the "
                "customer writes again.",
            )
        body = {
            "business_id": account.account_id,
            "recipient_type": "CONVERSATION",
            "recipient": recipient.thread_id,
            **(self._image(account, outbound) if outbound.media else _text(outbound)),
        }
        data = self.business_api(
            "POST", "business/message/send/", account.access_token, json=body, sends=True
        )
        message = data.get("message")
        if not isinstance(message, dict) or not message.get("message_id"):
            raise self.unconfirmed()
        return str(message["message_id"])

    # -- the Business API (PLATFORMS.md, section 4B "Calls") ----------------------------

    def business_api(
        self, method: str, path: str, token: str | None = None, *, sends: bool = False, **kwargs
    ) -> dict:
        """One Business API call (``token`` goes in ``Access-Token``); the ``data`` it answered.

        TikTok says in ``code``, not in the HTTP status, whether a call failed.

        Parameters:
          sends: The call may deliver a message, so an answer SNORQ cannot read
            may mean it went (``maybe_delivered``).

        Raises:
          PlatformError: TikTok's refusal, classified by its code (or, with none, by
            the HTTP status); a TemporaryError for a 2xx answer without a code.
        """
        headers = {"Access-Token": token} if token else {}
        url = f"{self.settings.tiktok_api_url}/{path}"
        response = http.request(method, url, headers=headers, **kwargs)
        envelope = http.json_object(response) or {}
        code = error_code(envelope.get("code"))
        if response.ok and code == 0:
            data = envelope.get("data")
            return data if isinstance(data, dict) else {}
        if response.ok and code is None:
            raise self.unconfirmed() if sends else self.unreadable()
        raise self.classify(
            code or None,  # a 0 on a failed HTTP answer names no error: the status decides
            str(envelope.get("message", "")),
            http_status=response.status_code,
            retry_after=http.retry_after(response),
        )

    # -- errors (PLATFORMS.md, section 4B "Limits"; SleekFlow's list of TikTok Business
    # Messaging errors: help.sleekflow.io, "Troubleshooting your TikTok Business
    # Messaging channels") -------------------------------------------------------------

    error_codes: ClassVar[Mapping[int, Outcome]] = {
        40100: THROTTLED,  # too many requests to this endpoint
        40104: TOKEN_REFUSED,  # an expired token [3p: named so for refresh tokens]
        40105: TOKEN_REFUSED,  # the access token is missing, wrong or revoked
        40001: NO_PERMISSION,  # the app lacks a permission on this account
        # TikTok's own per-account messaging limits (conversations per day, messages
        # per 48 h window): retrying in seconds cannot help.
        40064: refused(ErrorCode.RATE_LIMITED),
        40908: refused(ErrorCode.MEDIA_UPLOAD_FAILED),  # unsupported file type
    }
    #: Without an envelope, a 401 is the gateway refusing the token.
    http_statuses: ClassVar[Mapping[int, Outcome]] = {429: THROTTLED, 401: TOKEN_REFUSED}

    @classmethod
    def outcome(cls, code: int, subcode: int | None) -> Outcome | None:
        """The table's meaning of a code; any 5xxxx code is TikTok's side failing."""
        if 50000 <= code < 60000:
            return UNAVAILABLE
        return super().outcome(code, subcode)

    # -- media and profiles (PLATFORMS.md, section 4B "Media"; Chatwoot's
    # app/services/tiktok/client.rb) -------------------------------------------------

    #: TikTok hands over images and short videos; it documents no limit.
    max_media_bytes: ClassVar[int] = 25 * MB
    #: Only images go out: JPG or PNG up to 3 MB (error 40908 "Unsupported file type").
    media_rules: ClassVar[Mapping[str, MediaRule]] = {
        "image": MediaRule(frozenset({"image/jpeg", "image/png"}), 3 * MB),
    }
    profiles: ClassVar[bool] = True

    def media_url(self, account: Account, source: MediaSource) -> str:
        """``business/message/media/download/``: a short-lived link for one message's file."""
        body = {
            "business_id": account.account_id,
            "conversation_id": source.thread_id,
            "message_id": source.message_id,
            "media_id": source.media_id,
            "media_type": "VIDEO" if source.kind == "video" else "IMAGE",
        }
        path = "business/message/media/download/"
        url = self.business_api("POST", path, account.access_token, json=body).get("download_url")
        if not isinstance(url, str) or not url:
            raise self.unreadable()
        return url

    def upload_media(self, account: Account, media: OutboundMedia) -> str:
        """``business/message/media/upload/`` (multipart): the media id of the image."""
        with uploading(self.title):
            data = self.business_api(
                "POST",
                "business/message/media/upload/",
                account.access_token,
                data={"business_id": account.account_id, "media_type": "IMAGE"},
                files={"file": (media.filename, media.data, media.mime_type)},
            )
        if not data.get("media_id"):
            raise self.unreadable()
        return str(data["media_id"])

    def _image(self, account: Account, outbound: Outbound) -> dict:
        """An image message: the file is uploaded first, then sent by its media id."""
        return {
            "message_type": "IMAGE",
            "image": {"media_id": self.upload_media(account, outbound.media)},
        }

    def fetch_profile(self, account: Account, recipient: Recipient) -> Profile:
        """The customer as the conversation's participants list names them.

        ``business/message/content/list/`` answers the latest messages of a conversation
        with its ``participants`` (``{role, id, display_name, profile_image}``; the
        image link expires) [3p: TikTok's portal is JS-only; integrations agree].
        """
        if not recipient.thread_id:
            return Profile()
        data = self.business_api(
            "GET",
            "business/message/content/list/",
            account.access_token,
            params={"business_id": account.account_id, "conversation_id": recipient.thread_id},
        )
        for person in data.get("participants") or ():
            if isinstance(person, dict) and str(person.get("id")) == recipient.external_id:
                name = person.get("display_name")
                return Profile(
                    display_name=str(name)[:200] if name else None,
                    avatar_url=person.get("profile_image") or None,
                )
        return Profile()

    # -- connections (PLATFORMS.md, section 4B "Auth") --------------------------------

    #: Reading the business account's profile, and reading, sending and managing its DMs.
    scope: ClassVar[tuple[str, ...]] = (
        "user.info.basic",
        "user.info.username",
        "user.info.profile",
        "message.list.read",
        "message.list.send",
        "message.list.manage",
    )

    @property
    def redirect_uri(self) -> str:
        return self.settings.tiktok_redirect_uri

    def authorize_endpoint(self) -> str:
        return self.settings.tiktok_auth_url

    def authorize_params(self, state: str) -> dict[str, str]:
        params = super().authorize_params(state)
        # TikTok's authorize page calls the app's id client_key; its token calls, client_id.
        params["client_key"] = params.pop("client_id")
        return {**params, "scope": ",".join(self.scope)}

    def exchange_code(self, code: str) -> list[Grant]:
        """The one business account that authorized SNORQ (its ``open_id`` is its business id)."""
        fields = {
            "grant_type": "authorization_code",
            "auth_code": code,
            "redirect_uri": self.redirect_uri,
        }
        data = self._token_call("tt_user/oauth2/token/", fields)
        tokens = _token_set(data)
        business_id = data["open_id"]
        return [Grant(business_id, self._display_name(business_id, tokens.access_token), tokens)]

    def refresh(self, account: Account, refresh_token: str | None) -> TokenSet:
        if refresh_token is None:
            raise AuthError(ErrorCode.TOKEN_EXPIRED, "TikTok gave no refresh token; reconnect.")
        fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _token_set(self._token_call("tt_user/oauth2/refresh_token/", fields))

    def _token_call(self, path: str, fields: Mapping[str, str]) -> dict:
        """A token endpoint, asked with the app's secret in a JSON body."""
        app = {"client_id": self.credentials.app_id, "client_secret": self.credentials.app_secret}
        return self.business_api("POST", path, json={**app, **fields})

    def _display_name(self, business_id: str, token: str) -> str:
        """The account's name as TikTok shows it; the grant does not depend on it."""
        params = {"business_id": business_id, "fields": json.dumps(["username", "display_name"])}
        try:
            data = self.business_api("GET", "business/get/", token, params=params)
        except PlatformError:
            return ""
        return data.get("display_name") or data.get("username") or ""


def _text(outbound: Outbound) -> dict:
    return {"message_type": "TEXT", "text": {"body": outbound.text}}


def _token_set(data: Mapping) -> TokenSet:
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token"),
        expires_in=data.get("expires_in"),
        refresh_expires_in=data.get("refresh_token_expires_in"),
    )


# -- webhooks (PLATFORMS.md, section 4B, "Webhook events"; section 4A for authorization) --

#: Why TikTok says access was removed (developers.tiktok.com/doc/webhooks-events).
_REVOKE_REASONS = {
    1: "the user disconnected SNORQ in TikTok",
    2: "the user deleted their TikTok account",
    3: "the user's age changed",
    4: "the account was banned",
    5: "the developer revoked authorization",
}


def parse_webhook(body: bytes) -> list[Event]:
    """The events of a TikTok webhook (Business Messaging, or an authorization removal).

    Raises:
      ParseError: the body is not a TikTok webhook envelope.
    """
    envelope = load_object(body)
    event = envelope.text("event")
    account_id = envelope.ident("user_openid")
    if event in ("im_receive_msg", "im_send_msg"):
        return [_message(account_id, event == "im_receive_msg", _content(envelope))]
    if event == "im_mark_read_msg":
        return _read(account_id, _content(envelope))
    if event == "authorization.removed":
        return [_revoked(account_id, envelope)]
    # Referrals, video and comment events: nothing a conversation shows.
    return []


def _content(envelope: Fields) -> Fields:
    """The event's details: a JSON object carried as a string."""
    return load_object(envelope.text("content"), "body.content")


def _message(account_id: str, inbound: bool, content: Fields) -> MessageEvent:
    """A customer's message, or the echo of one the business sent (from SNORQ or the app)."""
    customer = content.obj("from_user" if inbound else "to_user").ident("id")
    username = content.text("from" if inbound else "to", required=False)
    content_type, text, media = _body(content)
    return MessageEvent(
        account_id=account_id,
        contact=ContactRef(
            customer, display_name=clip(username, 200), username=clip(username, 128)
        ),
        external_id=content.ident("message_id", max_length=255),
        direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
        content_type=content_type,
        content=text,
        timestamp=content.millis("timestamp"),
        payload=content.data,
        thread_id=content.ident("conversation_id"),
        media=media,
    )


def _body(content: Fields) -> tuple[str, str, tuple[MediaRef, ...]]:
    kind = content.text("type")
    if kind == "text":
        return ContentType.TEXT, content.obj("text").text("body"), ()
    if kind == "image":
        media_id = content.obj("image").ident("media_id", max_length=255)
        return ContentType.IMAGE, labelled("image"), (MediaRef(kind="image", media_id=media_id),)
    if kind == "share_post":
        url = content.obj("share_post").text("embed_url", required=False)
        return ContentType.SHARE, labelled("share", url), ()
    if kind == "sticker":
        return ContentType.STICKER, labelled("sticker"), ()
    return ContentType.UNSUPPORTED, labelled("unsupported"), ()


def _read(account_id: str, content: Fields) -> list[Event]:
    """The customer read everything up to a moment (TikTok has no per-message receipts)."""
    reader = content.obj("from_user").ident("id")
    if reader == account_id:
        # The business read the thread in the TikTok app: that says nothing of the customer.
        return []
    read = content.obj("read", required=False)
    at = read.millis("last_read_timestamp") if read else content.millis("timestamp")
    return [WatermarkEvent(account_id, reader, MessageStatus.READ, at)]


def _revoked(account_id: str, envelope: Fields) -> AuthorizationRevoked:
    reason = None
    if envelope.data.get("content"):
        reason = _content(envelope).integer("reason", required=False)
    return AuthorizationRevoked(account_id, _REVOKE_REASONS.get(reason, ""))
