"""WhatsApp Business Cloud API: webhooks, sends, templates, read receipts, media.

Protocol facts: ../shared/PLATFORMS.md, section 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlencode

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
    Recipient,
    TokenSet,
    invalid_reply,
    parse_snorq_reference,
    snorq_reference,
    uploading,
)
from app.platforms.errors import (
    THROTTLED,
    UNAVAILABLE,
    ErrorCode,
    Outcome,
    ParseError,
    refused,
)
from app.platforms.events import (
    ContactRef,
    Event,
    MediaRef,
    MessageEvent,
    PlatformNotice,
    StatusEvent,
)
from app.platforms.meta import MetaPlatform
from app.platforms.parsing import (
    Fields,
    clip,
    labelled,
    load_object,
    location_preview,
    reaction_preview,
)

_OOXML = "application/vnd.openxmlformats-officedocument."


class WhatsApp(MetaPlatform):
    name: ClassVar[str] = "whatsapp"
    title: ClassVar[str] = "WhatsApp"
    max_text_length: ClassVar[int] = 4096
    burst_limit: ClassVar[tuple[int, int]] = (80, 1)

    # -- webhooks -----------------------------------------------------------------

    def parse(self, body: bytes) -> list[Event]:
        return parse_webhook(body)

    # -- connections (Embedded Signup: business linking with WHATSAPP_CONFIG_ID) ------
    # https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-customers-as-a-tech-provider

    def can_connect(self) -> bool:
        return super().can_connect() and bool(self.settings.whatsapp_config_id)

    def authorize_params(self, state: str) -> dict[str, str]:
        # Facebook Login for Business: the configuration, not a scope, says what is asked.
        return {
            **super().authorize_params(state),
            "config_id": self.settings.whatsapp_config_id,
            "override_default_response_type": "true",
        }

    def exchange_code(self, code: str) -> list[Grant]:
        """One grant per phone number of each WhatsApp Business Account the business shared.

        Each account is subscribed to SNORQ's app, so its webhooks arrive.
        """
        tokens = self.redeem_code(code)
        grants = []
        for waba_id in self.shared_accounts(tokens.access_token):
            self.subscribe_app(waba_id, tokens.access_token, {})
            numbers = self.graph_list(
                f"{waba_id}/phone_numbers",
                tokens.access_token,
                {"fields": "id,display_phone_number,verified_name"},
            )
            grants += [_number_grant(number, tokens) for number in numbers]
        return grants

    def shared_accounts(self, business_token: str) -> list[str]:
        """The WhatsApp Business Account ids a business token was granted."""
        app_token = f"{self.credentials.app_id}|{self.credentials.app_secret}"
        query = urlencode({"input_token": business_token})
        data = self._batch_get(f"debug_token?{query}", app_token).get("data", {})
        for scope in data.get("granular_scopes", []):
            if scope.get("scope") == "whatsapp_business_management":
                return list(scope.get("target_ids", []))
        return []

    def _batch_get(self, relative_url: str, token: str) -> dict:
        """A GET sent inside a Graph batch request, so its query travels in a POST body.

        ``debug_token`` takes the token it inspects in its query string.
        https://developers.facebook.com/docs/graph-api/batch-requests
        """
        batch = json.dumps([{"method": "GET", "relative_url": relative_url}])
        response = http.request(
            "POST",
            self.settings.graph_api_url,
            headers={"Authorization": f"Bearer {token}"},
            data={"batch": batch, "include_headers": "false"},
        )
        if not response.ok:
            answer = http.json_object(response) or {}
            raise self.graph_error(answer, response.status_code, http.retry_after(response))
        try:
            (answer,) = response.json()
            status, body = answer["code"], json.loads(answer["body"])
        except (ValueError, TypeError, KeyError):
            raise self.unreadable() from None
        if not isinstance(body, dict):
            raise self.unreadable()
        if status != 200:
            raise self.graph_error(body, status)
        return body

    # -- sending (PLATFORMS.md, section 2, "Send a message", "Template", "Mark as read") --

    read_receipts: ClassVar[bool] = True
    typing_indicator: ClassVar[bool] = True
    reply_extras: ClassVar[frozenset[str]] = frozenset({"template"})

    def validate_reply(self, text: str, extras: Mapping) -> dict:
        """The extras of a reply, checked: a template (name, language, components) or none.

        A template reply needs no text: the template is the message.
        """
        if "template" not in extras:
            return super().validate_reply(text, extras)
        self.refuse_extras(extras)
        return {"template": _checked_template(extras["template"])}

    def send(self, account: Account, recipient: Recipient, outbound: Outbound) -> str:
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **_addressee(recipient),
            # Echoed in every status webhook: links a status to this send even when
            # the send's own answer was lost.
            "biz_opaque_callback_data": snorq_reference(outbound.snorq_message_id),
            **(self._media_content(account, outbound) if outbound.media else _content(outbound)),
        }
        sent = self.post_messages(account, body, sends=True).get("messages")
        first = sent[0] if isinstance(sent, list) and sent else None
        if not isinstance(first, dict) or not first.get("id"):
            raise self.unconfirmed()
        return first["id"]

    def mark_read(self, account: Account, recipient: Recipient, external_id: str) -> None:
        self.post_messages(account, _read_receipt(external_id))

    def typing(self, account: Account, recipient: Recipient, external_id: str) -> None:
        """Show "typing…"; WhatsApp ties it to reading the customer's latest message."""
        body = {**_read_receipt(external_id), "typing_indicator": {"type": "text"}}
        self.post_messages(account, body)

    # -- errors (PLATFORMS.md, section 2 "Error codes and HTTP status", section 5 "Error
    # classification"); Graph's own codes (meta.GRAPH_ERRORS) apply as well ----------

    error_codes: ClassVar[Mapping[int, Outcome]] = {
        80007: THROTTLED,  # the WhatsApp Business Account's rate limit
        130429: THROTTLED,  # the number's throughput (80 messages a second by default)
        131056: THROTTLED,  # too many messages to the same customer
        131000: UNAVAILABLE,  # something went wrong
        131016: UNAVAILABLE,  # service unavailable
        131057: UNAVAILABLE,  # the number is in maintenance mode (throughput upgrade)
        131047: refused(ErrorCode.OUTSIDE_WINDOW),  # 24 h passed: only a template now
        131021: refused(ErrorCode.INVALID_RECIPIENT),  # the recipient is the sender
        131026: refused(ErrorCode.INVALID_RECIPIENT),  # undeliverable
        131030: refused(ErrorCode.INVALID_RECIPIENT),  # not in the test number's allowed list
        131052: refused(ErrorCode.MEDIA_UPLOAD_FAILED),  # the customer's file could not be fetched
        131053: refused(ErrorCode.MEDIA_UPLOAD_FAILED),  # our file could not be uploaded
    }

    # -- media (PLATFORMS.md, section 2 "Media"; limits from Meta's "Supported media
    # types": https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media) --

    max_media_bytes: ClassVar[int] = 100 * MB
    media_rules: ClassVar[Mapping[str, MediaRule]] = {
        "image": MediaRule(frozenset({"image/jpeg", "image/png"}), 5 * MB),
        "video": MediaRule(frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
        "audio": MediaRule(
            frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB
        ),
        "document": MediaRule(
            frozenset(
                {
                    "application/pdf",
                    "text/plain",
                    "application/msword",
                    "application/vnd.ms-excel",
                    "application/vnd.ms-powerpoint",
                    f"{_OOXML}wordprocessingml.document",
                    f"{_OOXML}spreadsheetml.sheet",
                    f"{_OOXML}presentationml.presentation",
                }
            ),
            100 * MB,
        ),
    }
    caption_kinds: ClassVar[frozenset[str]] = frozenset({"image", "video", "document"})

    def media_url(self, account: Account, source: MediaSource) -> str:
        """``GET /{media-id}``: a link valid for five minutes."""
        url = self.graph("GET", str(source.media_id), account.access_token).get("url")
        if not isinstance(url, str) or not url:
            raise self.unreadable()
        return url

    def media_headers(self, account: Account) -> dict[str, str]:
        # The download link only answers to the same bearer token as the lookup.
        return {"Authorization": f"Bearer {account.access_token}"}

    def upload_media(self, account: Account, media: OutboundMedia) -> str:
        """``POST /{phone-number-id}/media`` (multipart); the media id to send."""
        with uploading(self.title):
            answer = self.graph(
                "POST",
                f"{account.account_id}/media",
                account.access_token,
                data={"messaging_product": "whatsapp", "type": media.mime_type},
                files={"file": (media.filename, media.data, media.mime_type)},
            )
        if not answer.get("id"):
            raise self.unreadable()
        return str(answer["id"])

    def _media_content(self, account: Account, outbound: Outbound) -> dict:
        """A media message: the uploaded file's id, its caption, a document's file name."""
        media = outbound.media
        content: dict = {"id": self.upload_media(account, media)}
        if outbound.text:
            content["caption"] = outbound.text
        if media.kind == "document":
            content["filename"] = media.filename
        return {"type": media.kind, media.kind: content}


def _number_grant(number: dict, tokens: TokenSet) -> Grant:
    """A phone number as a grant, named the way WhatsApp Manager shows it."""
    parts = (number.get("verified_name"), number.get("display_phone_number"))
    return Grant(number["id"], " · ".join(part for part in parts if part), tokens)


# -- sending ---------------------------------------------------------------------------


def _addressee(recipient: Recipient) -> dict:
    """``to`` the phone number when SNORQ knows it, else ``recipient``: the BSUID.

    When both are sent WhatsApp uses the number; a contact stored from an older
    payload is keyed on its ``wa_id``, which is all digits (a BSUID never is).
    """
    if recipient.phone:
        return {"to": recipient.phone}
    if recipient.external_id.isdigit():
        return {"to": recipient.external_id}
    return {"recipient": recipient.external_id}


def _content(outbound: Outbound) -> dict:
    template = outbound.template
    if template is None:
        return {"type": "text", "text": {"body": outbound.text}}
    sent = {"name": template["name"], "language": {"code": template["language"]}}
    if template["components"]:
        sent["components"] = template["components"]
    return {"type": "template", "template": sent}


def _read_receipt(external_id: str) -> dict:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": external_id}


def _checked_template(template: object) -> dict:
    """A template as the API takes it: ``{"name", "language": "en_US", "components": [...]}``.

    The language may also come as the Graph API writes it, ``{"code": "en_US"}``.
    """
    if not isinstance(template, Mapping):
        raise invalid_reply("template must be an object with name, language and components.")
    name, language = template.get("name"), template.get("language")
    if isinstance(language, Mapping):
        language = language.get("code")
    components = template.get("components", [])
    if not isinstance(name, str) or not name.strip():
        raise invalid_reply("template.name must be the name of an approved template.")
    if not isinstance(language, str) or not language.strip():
        raise invalid_reply('template.language must be a language code such as "en_US".')
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid_reply("template.components must be a list of objects.")
    return {"name": name.strip(), "language": language.strip(), "components": components}


# -- webhooks (PLATFORMS.md, "Webhook envelope", "Message types", "Statuses") --------

#: WhatsApp's status names; "played" (a voice note was listened to) implies read.
_STATUSES = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
}

_MEDIA = {
    "image": ContentType.IMAGE,
    "video": ContentType.VIDEO,
    "audio": ContentType.AUDIO,
    "document": ContentType.DOCUMENT,
    "sticker": ContentType.STICKER,
}

#: The longest phone number a contact row holds.
_MAX_PHONE = 32


def parse_webhook(body: bytes) -> list[Event]:
    """The events of a Cloud API webhook: every entry, change, message, status and error.

    Raises:
      ParseError: the body is not a WhatsApp Business Account webhook.
    """
    payload = load_object(body)
    if payload.text("object") != "whatsapp_business_account":
        raise ParseError("body.object is not whatsapp_business_account")
    events: list[Event] = []
    for entry in payload.objects("entry", required=True):
        for change in entry.objects("changes", required=True):
            # Other fields (template, account and quality updates) carry no messages.
            if change.text("field") == "messages":
                events += _parse_value(change.obj("value"))
    return events


def _parse_value(value: Fields) -> list[Event]:
    account_id = value.obj("metadata").ident("phone_number_id")
    profiles = value.objects("contacts")
    events: list[Event] = [_message(account_id, m, profiles) for m in value.objects("messages")]
    for status in value.objects("statuses"):
        event = _status(account_id, status)
        if event is not None:
            events.append(event)
    events += [_notice(account_id, error) for error in value.objects("errors")]
    return events


def _message(account_id: str, message: Fields, profiles: list[Fields]) -> MessageEvent:
    kind = message.text("type")
    content_type, content, media = _CONTENT.get(kind, _unsupported)(message, kind)
    return MessageEvent(
        account_id=account_id,
        contact=_contact(message, profiles),
        external_id=message.ident("id", max_length=255),
        direction=Direction.INBOUND,
        content_type=content_type,
        content=content,
        timestamp=message.seconds("timestamp"),
        payload=message.data,
        media=media,
    )


def _contact(message: Fields, profiles: list[Fields]) -> ContactRef:
    """The sender: keyed on the BSUID when there is one, the phone number kept beside it."""
    user_id = message.ident("from_user_id", required=False)
    phone = message.ident("from", required=False)
    if user_id is None and phone is None and message.data.get("type") == "system":
        # A changed user id arrives with neither: the thread is the one of the old id.
        system = message.obj("system")
        user_id = system.ident("previous_user_id", required=False) or system.ident("user_id")
    profile = next((p for p in profiles if _same_user(p, user_id, phone)), None)
    if profile is not None:
        user_id = user_id or profile.ident("user_id", required=False)
        phone = phone or profile.ident("wa_id", required=False)
    if user_id is None and phone is None:
        raise ParseError(f"{message.where} names no sender")
    if phone is not None and len(phone) > _MAX_PHONE:
        raise ParseError(f"{message.where}.from is not a phone number")
    names = profile.obj("profile", required=False) if profile is not None else None
    return ContactRef(
        external_id=user_id or phone,
        phone=phone,
        display_name=clip(names.text("name", required=False), 200) if names else None,
        username=clip(names.text("username", required=False), 128) if names else None,
    )


def _same_user(profile: Fields, user_id: str | None, phone: str | None) -> bool:
    return (user_id is not None and profile.ident("user_id", required=False) == user_id) or (
        phone is not None and profile.ident("wa_id", required=False) == phone
    )


def _text(message: Fields, kind: str):
    return ContentType.TEXT, message.obj("text").text("body"), ()


def _media(message: Fields, kind: str):
    media = message.obj(kind)
    filename = clip(media.text("filename", required=False), 255)
    ref = MediaRef(
        kind=kind,
        media_id=media.ident("id", max_length=255),
        url=media.text("url", required=False),
        mime_type=clip(media.text("mime_type", required=False), 255),
        filename=filename,
        sha256=clip(media.text("sha256", required=False), 128),
    )
    label = "voice" if kind == "audio" and media.flag("voice") else kind
    caption = media.text("caption", required=False)
    content = caption or labelled(label, filename if kind == "document" else None)
    return _MEDIA[kind], content, (ref,)


def _location(message: Fields, kind: str):
    location = message.obj("location")
    preview = location_preview(location.number("latitude"), location.number("longitude"))
    return ContentType.LOCATION, preview, ()


def _contacts(message: Fields, kind: str):
    names = []
    for card in message.objects("contacts", required=True):
        name = card.obj("name", required=False)
        names.append(name.text("formatted_name", required=False) if name else None)
    return ContentType.CONTACTS, labelled("contacts", ", ".join(n for n in names if n)), ()


def _interactive(message: Fields, kind: str):
    interactive = message.obj("interactive", required=False)
    if interactive is None:
        # Meta sends a reply it could not render bare, with the reason in value.errors.
        return _unsupported(message, kind)
    reply_type = interactive.text("type")
    if reply_type in ("button_reply", "list_reply"):
        return ContentType.INTERACTIVE, interactive.obj(reply_type).text("title"), ()
    if reply_type == "nfm_reply":
        body = interactive.obj("nfm_reply").text("body", required=False)
        return ContentType.INTERACTIVE, body or labelled("form"), ()
    return ContentType.INTERACTIVE, labelled("button"), ()


def _button(message: Fields, kind: str):
    """A tap on a template's quick-reply button."""
    return ContentType.INTERACTIVE, message.obj("button").text("text"), ()


def _reaction(message: Fields, kind: str):
    reaction = message.obj("reaction")
    reaction.ident("message_id", max_length=255)
    return ContentType.REACTION, reaction_preview(reaction.text("emoji", required=False)), ()


def _system(message: Fields, kind: str):
    body = message.obj("system").text("body", required=False)
    return ContentType.SYSTEM, body or labelled("system"), ()


def _order(message: Fields, kind: str):
    items = message.obj("order").objects("product_items")
    return ContentType.UNSUPPORTED, labelled("order", f"{len(items)} items" if items else None), ()


def _unsupported(message: Fields, kind: str):
    return ContentType.UNSUPPORTED, labelled("unsupported"), ()


_CONTENT = {
    "text": _text,
    **dict.fromkeys(_MEDIA, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "system": _system,
    "order": _order,
}


def _status(account_id: str, status: Fields) -> StatusEvent | None:
    """A status SNORQ tracks, or None for one it does not (a "deleted", say)."""
    name = _STATUSES.get(status.text("status"))
    if name is None:
        return None
    error_code = error_message = None
    if name == MessageStatus.FAILED:
        error_code, error_message = _failure(status.objects("errors"))
    return StatusEvent(
        account_id=account_id,
        external_id=status.ident("id", max_length=255),
        status=name,
        timestamp=status.seconds("timestamp"),
        error_code=error_code,
        error_message=error_message,
        snorq_message_id=parse_snorq_reference(status.data.get("biz_opaque_callback_data")),
    )


def _failure(errors: list[Fields]) -> tuple[int | None, str | None]:
    """SNORQ's code and message for a failed status (classified like a failed send)."""
    if not errors:
        return None, None
    code = errors[0].integer("code", required=False)
    title = errors[0].text("title", required=False) or "The message could not be delivered."
    if code is None:
        return int(ErrorCode.REJECTED), title
    error = WhatsApp.classify(code, title)
    return int(error.code), error.message


def _notice(account_id: str, error: Fields) -> PlatformNotice:
    code = error.integer("code", required=False)
    title = error.text("title", required=False) or "error"
    return PlatformNotice(account_id=account_id, code=str(code or "unknown"), message=title)
