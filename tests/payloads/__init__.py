"""Real-shaped platform webhook payloads, one JSON file per event: ``<platform>/<event>.json``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import strategies as st

_HERE = Path(__file__).parent


def payload(platform: str, event: str) -> dict:
    """A fresh copy of the payload, to change freely before signing it."""
    return json.loads((_HERE / platform / f"{event}.json").read_text(encoding="utf-8"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutations(draw, document: dict) -> dict:
    """``document`` with one value somewhere in it replaced by any JSON value, or removed."""
    mutated = copy.deepcopy(document)
    container, key = draw(st.sampled_from(list(_slots(mutated))))
    if isinstance(container, dict) and draw(st.booleans()):
        del container[key]
    else:
        container[key] = draw(json_values)
    return mutated


def _slots(value):
    """Every ``(container, key)`` of a JSON document, outermost first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in list(items):
        yield value, key
        if isinstance(item, dict | list):
            yield from _slots(item)
