"""Parsers and the inbound worker on arbitrary and near-valid webhook bodies.

A body reaches a parser only once its signature checked out, so anything here is
what a platform (or someone holding its secret) could send. Whatever it holds, a
platform's parser returns events or raises ParseError, the one error it documents;
the inbound worker stores every body with its outcome — FAILED with a reason that
never quotes the customer when it cannot be used — never raises (a raise would
retry a poisoned body for hours), and keeps running.

The parsers' own tests mutate one value of a few fixtures; these stack several
mutations on every fixture, with hostile values (huge numbers, NaN, long text,
escapes no database column holds, deep nesting), and add arbitrary bytes and
arbitrary JSON documents.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models import Message, WebhookEvent, WebhookStatus
from app.platforms import get_platform
from app.platforms.errors import ParseError
from app.platforms.events import Event
from tests import payloads
from tests.log_scan import TEXT_KEYS
from tests.payloads import json_values, payload
from tests.support import meta_body
from workers.inbound import ingest_webhooks

PLATFORMS = ("whatsapp", "facebook", "tiktok")
FIXTURES = {
    platform: sorted(
        path.stem for path in (Path(payloads.__file__).parent / platform).glob("*.json")
    )
    for platform in PLATFORMS
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: A message of each platform's fixtures.
FIRST_MESSAGES = {"whatsapp": "text", "facebook": "message", "tiktok": "im_receive_msg"}
#: Depths of nested lists around the interpreter's recursion limit, and far beyond it.
DEPTHS = (50, 500, 900, 950, 990, 1_000, 5_000, 100_000)

hostile_values = st.one_of(
    json_values,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(min_size=300, max_size=5_000),
    st.sampled_from(["\x00", "\ud800", "\udfff", "a\ud83d", "\u2028\u2029", "🎉" * 500, ""]),
    st.integers(min_value=1, max_value=300).map(
        lambda depth: json.loads("[" * depth + "]" * depth)
    ),
)


def _slots(document):
    """Every ``(container, key)`` of a JSON document."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in list(items):
        yield document, key
        if isinstance(value, dict | list):
            yield from _slots(value)


@st.composite
def mutated(draw, document: dict) -> dict:
    """``document`` with one to three values replaced by hostile ones, or removed."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = list(_slots(document))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(hostile_values)
    return document


def encoded(platform: str, document) -> bytes:
    """The body as the platform sends it; a lone surrogate stays as its (invalid) bytes."""
    if platform == "tiktok":
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return meta_body(document)


@st.composite
def near_valid(draw, platform: str) -> bytes:
    """A fixture of ``platform`` with hostile changes (TikTok's: also inside ``content``)."""
    document = payload(platform, draw(st.sampled_from(FIXTURES[platform])))
    if platform == "tiktok" and draw(st.booleans()):
        inner = draw(mutated(json.loads(document["content"])))
        document["content"] = json.dumps(inner, ensure_ascii=False)
    else:
        document = draw(mutated(document))
    return encoded(platform, document)


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
any_body = st.one_of(
    st.binary(max_size=4_096),
    json_documents.map(lambda document: json.dumps(document).encode()),
)


def parse_or_parse_error(platform: str, body: bytes) -> None:
    """Parse ``body``: a list of events, or ParseError. Anything else fails the test."""
    try:
        events = get_platform(platform).parse(body)
    except ParseError:
        return
    assert isinstance(events, list)
    assert all(isinstance(event, Event) for event in events)


def ingest(platform: str, body: bytes) -> WebhookEvent:
    """Run the inbound job on ``body`` as the worker would; the stored webhook."""
    delivery_id = uuid.uuid4().hex
    text = body.decode("utf-8", "surrogateescape")
    ingest_webhooks.fn([[delivery_id, platform, text, time.time()]])
    return WebhookEvent.get(WebhookEvent.delivery_id == delivery_id)


def customer_texts(body: bytes) -> set[str]:
    """What the customer wrote in a body: strings under the platforms' text keys."""
    found: set[str] = set()

    def walk(value, key=None) -> None:
        if isinstance(value, dict):
            for child_key, child in value.items():
                walk(child, child_key)
        elif isinstance(value, list):
            for child in value:
                walk(child, key)
        elif isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError, RecursionError):
                walk(json.loads(value))
        elif isinstance(value, str) and key in TEXT_KEYS and len(value) >= 8:
            found.add(value)

    with contextlib.suppress(ValueError, RecursionError):
        walk(json.loads(body))
    return found


# -- the parsers --------------------------------------------------------------------


@FUZZ
@given(platform=st.sampled_from(PLATFORMS), body=any_body)
def test_any_body_parses_into_events_or_is_a_parse_error(platform, body):
    parse_or_parse_error(platform, body)


@FUZZ
@given(data=st.data(), platform=st.sampled_from(PLATFORMS))
def test_any_fixture_with_hostile_changes_parses_into_events_or_is_a_parse_error(data, platform):
    parse_or_parse_error(platform, data.draw(near_valid(platform)))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_deeply_nested_json_anywhere_parses_or_is_a_parse_error(platform, depth):
    for body in [b"[" * depth + b"]" * depth, *with_nested_values(platform, depth)]:
        parse_or_parse_error(platform, body)


def test_nesting_past_the_limit_is_refused_however_many_brackets_the_body_has():
    from app.platforms.parsing import MAX_DEPTH, load_object

    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    # Many brackets, shallow: fine. One level past the limit: refused, brackets in strings
    # or not.
    assert load_object(json.dumps({"a": [[] for _ in range(500)], "b": "[" * 500}))
    assert load_object(f'{{"a": {nested(MAX_DEPTH - 1)}}}')
    with pytest.raises(ParseError, match=f"nested more than {MAX_DEPTH} levels"):
        load_object(f'{{"a": {nested(MAX_DEPTH)}}}')


#: Stands for a nested value while a document is encoded around it.
_HOLE = "\x00HOLE\x00"


def with_nested_values(platform: str, depth: int) -> list[bytes]:
    """A real message whose every value in turn is nested lists ``depth`` deep.

    TikTok's ``content`` is a JSON document inside a string: its values get it too.
    """
    nested = "[" * depth + "]" * depth
    document = payload(platform, FIRST_MESSAGES[platform])
    if platform != "tiktok":
        return [text.encode() for text in _holed(document, nested, meta=True)]
    bodies = [text.encode() for text in _holed(document, nested, meta=False)]
    for content in _holed(json.loads(document["content"]), nested, meta=False):
        bodies.append(encoded("tiktok", {**document, "content": content}))
    return bodies


def _holed(document: dict, nested: str, *, meta: bool) -> list[str]:
    """``document`` encoded once per value, that value replaced by ``nested``."""
    texts = []
    for container, key in list(_slots(document)):
        original, container[key] = container[key], _HOLE
        text = json.dumps(document, ensure_ascii=meta)
        texts.append(
            (text.replace("/", "\\/") if meta else text).replace('"\\u0000HOLE\\u0000"', nested)
        )
        container[key] = original
    return texts


# -- the inbound worker ---------------------------------------------------------------


@FUZZ
@given(data=st.data(), platform=st.sampled_from(PLATFORMS))
def test_the_worker_stores_any_near_valid_body_with_its_outcome_and_never_raises(
    connections, data, platform
):
    body = data.draw(st.one_of(near_valid(platform), any_body))
    stored = ingest(platform, body)
    assert bytes(stored.body) == body
    assert stored.status in (WebhookStatus.PROCESSED, WebhookStatus.FAILED)
    if stored.status == WebhookStatus.FAILED:
        assert stored.error
        assert not any(text in stored.error for text in customer_texts(body))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("depth", [900, 950, 990, 5_000])
def test_the_worker_stores_deeply_nested_bodies_and_never_raises(connections, platform, depth):
    for body in with_nested_values(platform, depth):
        assert ingest(platform, body).status in (WebhookStatus.PROCESSED, WebhookStatus.FAILED)


def test_a_worker_fed_hostile_jobs_keeps_running_and_then_stores_a_real_message(
    connections, worker
):
    hostile = [
        (platform, body)
        for platform in PLATFORMS
        for body in [
            *with_nested_values(platform, 990),
            b"[" * 100_000 + b"]" * 100_000,
            b"\xff\xfe\x00",
            b'{"object": NaN, "entry": [Infinity]}',
        ]
    ]
    for platform, body in hostile:
        _queue(platform, body)
    real = payload("whatsapp", "text")
    _queue("whatsapp", meta_body(real))
    worker.drain()
    assert all(thread.is_alive() for thread in worker.workers)
    assert WebhookEvent.select().count() == len(hostile) + 1
    external_id = real["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert Message.select().where(Message.external_id == external_id).exists()


def _queue(platform: str, body: bytes) -> None:
    delivery = [uuid.uuid4().hex, platform, body.decode("utf-8", "surrogateescape"), time.time()]
    ingest_webhooks.send([delivery])
