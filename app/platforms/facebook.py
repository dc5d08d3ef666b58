"""Facebook Messenger (Send API on a Page): webhooks, sends, quick replies, typing.

The platform is named ``facebook`` in URLs, the database and the CLI (a connection is a
Facebook Page); staff read it as "Messenger", as the inbox shows it.
Protocol facts: ../shared/PLATFORMS.md, section 3.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import ClassVar

from app.models import ContentType, Direction, MessageStatus
from app.platforms.base import (
    MB,
    Account,
    Grant,
    MediaRule,
    Outbound,
    OutboundMedia,
    Profile,
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
    StatusEvent,
    WatermarkEvent,
)
from app.platforms.meta import MetaPlatform
from app.platforms.parsing import Fields, labelled, load_object, location_preview, reaction_preview


class Facebook(MetaPlatform):
    name: ClassVar[str] = "facebook"
    title: ClassVar[str] = "Messenger"
    max_text_length: ClassVar[int] = 2000
    burst_limit: ClassVar[tuple[int, int]] = (300, 1)

    # -- webhooks -----------------------------------------------------------------

    def parse(self, body: bytes) -> list[Event]:
        return parse_webhook(body)

    # -- connections (PLATFORMS.md, section 3 "Tokens"; defect (e) of the seed) ------

    #: Listing the user's Pages, messaging as them, subscribing to their webhooks.
    scope: ClassVar[tuple[str, ...]] = (
        "pages_show_list",
        "pages_messaging",
        "pages_manage_metadata",
    )
    #: The Messenger webhook fields SNORQ reads.
    webhook_fields: ClassVar[tuple[str, ...]] = (
        "messages",
        "message_echoes",
        "message_deliveries",
        "message_reads",
        "messaging_postbacks",
        "message_reactions",
    )

    def authorize_params(self, state: str) -> dict[str, str]:
        return {**super().authorize_params(state), "scope": ",".join(self.scope)}

    def exchange_code(self, code: str) -> list[Grant]:
        """One grant per Page the user manages, with a Page token that does not expire.

        The short-lived user token becomes a long-lived one first: Page tokens
        listed with a long-lived user token have no expiry.
        """
        short_lived = self.redeem_code(code).access_token
        user_token = self.oauth_token(
            {"grant_type": "fb_exchange_token", "fb_exchange_token": short_lived}
        ).access_token
        pages = self.graph_list(
            "me/accounts", user_token, {"fields": "id,name,access_token", "limit": "100"}
        )
        grants = [Grant(p["id"], p.get("name", ""), TokenSet(p["access_token"])) for p in pages]
        for grant in grants:
            fields = {"subscribed_fields": ",".join(self.webhook_fields)}
            self.subscribe_app(grant.account_id, grant.tokens.access_token, fields)
        return grants

    # -- sending (PLATFORMS.md, section 3, "Send API", "Quick replies", "Messaging window") --

    read_receipts: ClassVar[bool] = True
    typing_indicator: ClassVar[bool] = True
    #: Quick replies per message, and characters per title and per payload.
    max_quick_replies: ClassVar[int] = 13
    max_quick_reply_title: ClassVar[int] = 20
    max_quick_reply_payload: ClassVar[int] = 1000
    reply_extras: ClassVar[frozenset[str]] = frozenset({"quick_replies"})

    def validate_reply(self, text: str, extras: Mapping) -> dict:
        """The extras of a reply, checked: quick replies (``[{title, payload}]``) or none."""
        super().validate_reply(text, extras)
        if "quick_replies" not in extras:
            return {}
        return {"quick_replies": self._checked_quick_replies(extras["quick_replies"])}

    def send(self, account: Account, recipient: Recipient, outbound: Outbound) -> str:
        # The reference comes back in the echo webhook's ``metadata``.
        content = self._attachment(account, outbound) if outbound.media else {"text": outbound.text}
        message: dict = {
            **content,
            "metadata": snorq_reference(outbound.snorq_message_id),
        }
        if outbound.quick_replies:
            message["quick_replies"] = [
                {"content_type": "text", "title": q["title"], "payload": q["payload"]}
                for q in outbound.quick_replies
            ]
        body = {"recipient": {"id": recipient.external_id}, **_messaging_type(outbound)}
        answer = self.post_messages(account, {**body, "message": message}, sends=True)
        if not answer.get("message_id"):
            raise self.unconfirmed()
        return answer["message_id"]

    def mark_read(self, account: Account, recipient: Recipient, external_id: str) -> None:
        self._sender_action(account, recipient, "mark_seen")

    def typing(self, account: Account, recipient: Recipient, external_id: str) -> None:
        self._sender_action(account, recipient, "typing_on")

    def _sender_action(self, account: Account, recipient: Recipient, action: str) -> None:
        """A sender action goes alone: with ``recipient`` and never with a ``message``."""
        body = {"recipient": {"id": recipient.external_id}, "sender_action": action}
        self.post_messages(account, body)

    def _checked_quick_replies(self, items: object) -> list[dict]:
        if not isinstance(items, list) or not items:
            raise invalid_reply("quick_replies must be a list of {title, payload} objects.")
        if len(items) > self.max_quick_replies:
            raise invalid_reply(
                f"{self.title} takes at most {self.max_quick_replies} quick replies; "
                f"this reply has {len(items)}."
            )
        return [self._checked_quick_reply(n, item) for n, item in enumerate(items, start=1)]

    def _checked_quick_reply(self, number: int, item: object) -> dict:
        if not isinstance(item, Mapping):
            raise invalid_reply(
                f"Quick reply {number} must be an object with a title and a payload."
            )
        title, payload = item.get("title"), item.get("payload", item.get("title"))
        if not isinstance(title, str) or not title.strip():
            raise invalid_reply(f"Quick reply {number} needs a title.")
        if len(title) > self.max_quick_reply_title:
            raise invalid_reply(
                f"Quick reply {number}: {self.title} takes titles of at most "
                f"{self.max_quick_reply_title} characters; {title!r} has {len(title)}."
            )
        if not isinstance(payload, str) or not 0 < len(payload) <= self.max_quick_reply_payload:
            raise invalid_reply(
                f"Quick reply {number}: the payload must be text of 1 to "
                f"{self.max_quick_reply_payload} characters."
            )
        return {"title": title, "payload": payload}

    # -- errors (PLATFORMS.md, section 3 "Error codes"); Graph's own codes
    # (meta.GRAPH_ERRORS) apply as well ------------------------------------------------

    error_codes: ClassVar[Mapping[int | tuple[int, int], Outcome]] = {
        80006: THROTTLED,  # too many Messenger calls to this Page
        1200: UNAVAILABLE,  # a temporary send failure
        (10, 2018278): refused(ErrorCode.OUTSIDE_WINDOW),  # outside the allowed window
        (100, 2018001): refused(ErrorCode.INVALID_RECIPIENT),  # no matching user
        551: refused(ErrorCode.RECIPIENT_BLOCKED),  # this person isn't available right now
    }

    # -- media and profiles (PLATFORMS.md, section 3: attachments up to 25 MB, the
    # Attachment Upload API, the User Profile API) ---------------------------------

    max_media_bytes: ClassVar[int] = 25 * MB
    media_rules: ClassVar[Mapping[str, MediaRule]] = {
        "image": MediaRule(frozenset({"image/jpeg", "image/png", "image/gif"}), 25 * MB),
        "video": MediaRule(frozenset({"video/mp4", "video/quicktime"}), 25 * MB),
        "audio": MediaRule(
            frozenset({"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/wav"}), 25 * MB
        ),
        "document": MediaRule(None, 25 * MB),
    }
    profiles: ClassVar[bool] = True

    def upload_media(self, account: Account, media: OutboundMedia) -> str:
        """``POST /{page-id}/message_attachments`` (multipart): the attachment id to send.

        https://developers.facebook.com/docs/messenger-platform/reference/attachment-upload-api
        """
        attachment = {"type": _ATTACHMENT_TYPES[media.kind], "payload": {"is_reusable": True}}
        with uploading(self.title):
            answer = self.graph(
                "POST",
                f"{account.account_id}/message_attachments",
                account.access_token,
                data={"message": json.dumps({"attachment": attachment})},
                files={"filedata": (media.filename, media.data, media.mime_type)},
            )
        if not answer.get("attachment_id"):
            raise self.unreadable()
        return str(answer["attachment_id"])

    def _attachment(self, account: Account, outbound: Outbound) -> dict:
        """A message carrying the uploaded file (Messenger gives files no caption)."""
        attachment_id = self.upload_media(account, outbound.media)
        kind = _ATTACHMENT_TYPES[outbound.media.kind]
        return {"attachment": {"type": kind, "payload": {"attachment_id": attachment_id}}}

    def fetch_profile(self, account: Account, recipient: Recipient) -> Profile:
        """The customer's name and picture from the User Profile API (the picture's link expires).

        Needs "Business Asset User Profile Access"; without it Meta refuses (code 10 or
        2018218) and the contact keeps its PSID.
        """
        node = self.graph(
            "GET",
            recipient.external_id,
            account.access_token,
            params={"fields": "first_name,last_name,profile_pic"},
        )
        name = " ".join(str(node[k]) for k in ("first_name", "last_name") if node.get(k)).strip()
        return Profile(display_name=name[:200] or None, avatar_url=node.get("profile_pic") or None)


#: Messenger's attachment type for each kind of file.
_ATTACHMENT_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file"}


# -- sending ---------------------------------------------------------------------------


def _messaging_type(outbound: Outbound) -> dict:
    """RESPONSE within 24 h; past it (up to 7 days) a person's reply carries HUMAN_AGENT."""
    if outbound.human_agent:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    return {"messaging_type": "RESPONSE"}


# -- webhooks (PLATFORMS.md, section 3, "Webhook" and "Event types") ----------------------

#: What each attachment kind is in SNORQ's words.
_CONTENT_TYPES = {
    "image": ContentType.IMAGE,
    "video": ContentType.VIDEO,
    "audio": ContentType.AUDIO,
    "document": ContentType.DOCUMENT,
    "sticker": ContentType.STICKER,
    "location": ContentType.LOCATION,
    "link": ContentType.SHARE,
    "share": ContentType.SHARE,
}

#: Messenger's attachment types under SNORQ's names (the others are the same).
_RENAMED = {"file": "document", "fallback": "link", "reel": "share", "ig_reel": "share"}

#: Kinds with a file behind them, fetched later by the media worker.
_FILES = {"image", "video", "audio", "document", "sticker"}


def parse_webhook(body: bytes) -> list[Event]:
    """The events of a Messenger webhook: every entry and every messaging item.

    Raises:
      ParseError: the body is not a Page webhook.
    """
    payload = load_object(body)
    if payload.text("object") != "page":
        raise ParseError("body.object is not page")
    events: list[Event] = []
    for entry in payload.objects("entry", required=True):
        page_id = entry.ident("id")
        for item in entry.objects("messaging"):
            events += _parse_item(page_id, item)
    return events


def _parse_item(page_id: str, item: Fields) -> list[Event]:
    for key, parse in _ITEMS:
        if key in item.data:
            return parse(page_id, item)
    # Opt-ins, referrals, handovers, edits: nothing a conversation shows.
    return []


def _message(page_id: str, item: Fields) -> list[Event]:
    """A customer's message, or the echo of one the Page sent (sender and recipient swap)."""
    message = item.obj("message")
    echo = message.flag("is_echo")
    content_type, content, media = _content(message)
    event = MessageEvent(
        account_id=page_id,
        contact=ContactRef(item.obj("recipient" if echo else "sender").ident("id")),
        external_id=message.ident("mid", max_length=255),
        direction=Direction.OUTBOUND if echo else Direction.INBOUND,
        content_type=content_type,
        content=content,
        timestamp=item.millis("timestamp"),
        payload=item.data,
        media=media,
        snorq_message_id=parse_snorq_reference(message.data.get("metadata")) if echo else None,
    )
    return [event]


def _content(message: Fields) -> tuple[str, str, tuple[MediaRef, ...]]:
    text = message.text("text", required=False)
    attachments = [(_kind(a), a) for a in message.objects("attachments")]
    media = tuple(_media(kind, a) for kind, a in attachments if kind in _FILES)
    if text:
        quick_reply = message.obj("quick_reply", required=False)
        return ContentType.INTERACTIVE if quick_reply else ContentType.TEXT, text, media
    if not attachments:
        return ContentType.UNSUPPORTED, labelled("unsupported"), ()
    kind, attachment = attachments[0]
    content_type = _CONTENT_TYPES.get(kind, ContentType.UNSUPPORTED)
    if len(attachments) > 1:
        return content_type, labelled("attachments", len(attachments)), media
    return content_type, _preview(kind, attachment), media


def _kind(attachment: Fields) -> str:
    kind = attachment.text("type")
    payload = attachment.obj("payload", required=False)
    if kind == "image" and payload is not None and "sticker_id" in payload.data:
        return "sticker"
    return _RENAMED.get(kind, kind)


def _preview(kind: str, attachment: Fields) -> str:
    payload = attachment.obj("payload", required=False)
    if kind == "location" and payload is not None:
        coordinates = payload.obj("coordinates")
        return location_preview(coordinates.number("lat"), coordinates.number("long"))
    if kind in ("link", "share"):
        title = attachment.text("title", required=False)
        return labelled(kind, title or (payload and payload.text("title", required=False)))
    return labelled(kind if kind in _CONTENT_TYPES else "unsupported")


def _media(kind: str, attachment: Fields) -> MediaRef:
    payload = attachment.obj("payload", required=False)
    return MediaRef(kind=kind, url=payload and payload.text("url", required=False))


def _delivery(page_id: str, item: Fields) -> list[Event]:
    """Each named message was delivered; so was everything sent up to the watermark."""
    delivery = item.obj("delivery")
    watermark = delivery.millis("watermark")
    events: list[Event] = [
        StatusEvent(page_id, mid, MessageStatus.DELIVERED, watermark)
        for mid in delivery.idents("mids", max_length=255)
    ]
    customer = item.obj("sender").ident("id")
    events.append(WatermarkEvent(page_id, customer, MessageStatus.DELIVERED, watermark))
    return events


def _read(page_id: str, item: Fields) -> list[Event]:
    watermark = item.obj("read").millis("watermark")
    customer = item.obj("sender").ident("id")
    return [WatermarkEvent(page_id, customer, MessageStatus.READ, watermark)]


def _postback(page_id: str, item: Fields) -> list[Event]:
    """A tap on a button or a persistent-menu item; its title is what the customer chose."""
    postback = item.obj("postback")
    customer = item.obj("sender").ident("id")
    title = postback.text("title", required=False) or labelled("button")
    # Postbacks from before 2019 have no mid: the customer and the moment name them.
    mid = postback.ident("mid", required=False, max_length=255) or _synthetic_id(
        "postback", customer, item.integer("timestamp")
    )
    event = MessageEvent(
        account_id=page_id,
        contact=ContactRef(customer),
        external_id=mid,
        direction=Direction.INBOUND,
        content_type=ContentType.POSTBACK,
        content=title,
        timestamp=item.millis("timestamp"),
        payload=item.data,
    )
    return [event]


def _reaction(page_id: str, item: Fields) -> list[Event]:
    """A reaction to a message, by the customer or by the Page."""
    reaction = item.obj("reaction")
    reacted = reaction.ident("mid", max_length=255)
    action = reaction.text("action")
    sender = item.obj("sender").ident("id")
    by_page = sender == page_id
    emoji = reaction.text("emoji", required=False) or reaction.text("reaction", required=False)
    event = MessageEvent(
        account_id=page_id,
        contact=ContactRef(item.obj("recipient").ident("id") if by_page else sender),
        # A reaction has no id of its own; a retried webhook must still map to the same one.
        external_id=_synthetic_id("reaction", reacted, action, item.integer("timestamp")),
        direction=Direction.OUTBOUND if by_page else Direction.INBOUND,
        content_type=ContentType.REACTION,
        content=reaction_preview(emoji if action == "react" else None),
        timestamp=item.millis("timestamp"),
        payload=item.data,
    )
    return [event]


def _synthetic_id(kind: str, *parts: object) -> str:
    """A stable external id for an event the platform gives none."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{kind}:{digest[:40]}"


_ITEMS = (
    ("message", _message),
    ("delivery", _delivery),
    ("read", _read),
    ("postback", _postback),
    ("reaction", _reaction),
)
