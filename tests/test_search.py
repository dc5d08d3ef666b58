"""Search: an organization's messages by their words, its conversations by their contact."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import retention, search
from app.messages.profiles import record_profile
from app.models import Contact, Message
from tests.fixtures import make_connection
from tests.test_api import add_message, make_conversation


@pytest.fixture
def zoe(connections):
    return make_conversation(connections["whatsapp"], "Zoë Martin", minutes_ago=5)


@pytest.fixture
def jose(connections):
    return make_conversation(connections["facebook"], "José Álvarez", minutes_ago=1)


@pytest.fixture
def misaki(connections):
    return make_conversation(connections["tiktok"], "美咲 Sato", minutes_ago=9)


@pytest.fixture
def stranger(other_org):
    """Another organization's conversation, its contact named and saying what ours do."""
    foreign = make_conversation(make_connection(other_org, "whatsapp", "999"), "Zoë Martin")
    add_message(foreign, "The tracking link does not work")
    Contact.update(phone="16505550123").where(Contact.id == foreign.contact_id).execute()
    return foreign


def found(client, headers, query: str, **params) -> dict:
    response = client.get("/api/v1/search", query_string={"q": query, **params}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.json


def message_ids(result: dict) -> list[int]:
    return [message["id"] for message in result["messages"]]


def conversation_ids(result: dict) -> list[int]:
    return [conversation["id"] for conversation in result["conversations"]]


# -- the words of a query ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Zoë's order-123!", ["Zoë", "s", "order", "123"]),
        ('"track" AND (link* OR NEAR:x)', ["track", "AND", "link", "OR", "NEAR", "x"]),
        ("a&b|!c\x00d_e", ["a", "b", "c", "d", "e"]),
        ("美咲　さん", ["美咲", "さん"]),
        ("+1 (650) 555", ["1", "650", "555"]),
    ],
)
def test_a_query_is_its_runs_of_letters_and_digits(text, words):
    assert search.words(text) == words


def test_only_the_first_words_count_and_each_is_cut_to_a_prefix():
    assert search.words(" ".join(f"w{n}" for n in range(20))) == [f"w{n}" for n in range(8)]
    assert search.words("x" * 500) == ["x" * search.LONGEST_WORD]


@pytest.mark.parametrize("text", ["", "   ", "*", '"":&|!()', "\x00", "_ _ __"])
def test_a_query_without_a_word_is_refused(text):
    with pytest.raises(ValueError, match="Type a word"):
        search.words(text)


def test_each_word_is_quoted_whole_into_either_engines_syntax():
    assert search.fts5_query(["NEAR", "zoë"]) == '"NEAR"* "zoë"*'
    assert search.tsquery(["NEAR", "zoë"]) == "'NEAR':* & 'zoë':*"


# -- messages ----------------------------------------------------------------------------


def test_a_word_finds_the_messages_saying_it_newest_first_with_their_conversation(
    client, api_headers, zoe, jose
):
    first = add_message(zoe, "The tracking link does not work")
    add_message(zoe, "Thanks, that's perfect")
    last = add_message(jose, "Here is your new tracking link.", direction="OUTBOUND")

    result = found(client, api_headers, "tracking")

    assert message_ids(result) == [last.id, first.id]
    shown = result["messages"][0]
    assert (shown["conversation_id"], shown["platform"]) == (jose.id, "facebook")
    assert shown["contact"]["display_name"] == "José Álvarez"
    assert (shown["content"], shown["direction"]) == ("Here is your new tracking link.", "OUTBOUND")
    assert shown["attachments"] == []
    assert result["next_before"] is None


def test_each_word_matches_the_start_of_a_word_in_any_case(client, api_headers, zoe):
    message = add_message(zoe, "The tracking link does not work")
    for query in ("track", "TRACKING", "Lin", "wor"):
        assert message_ids(found(client, api_headers, query)) == [message.id], query
    assert message_ids(found(client, api_headers, "racking")) == []


def test_a_message_must_have_every_word(client, api_headers, zoe):
    both = add_message(zoe, "The tracking link does not work")
    add_message(zoe, "Here is your tracking number")
    add_message(zoe, "The link is broken")

    assert message_ids(found(client, api_headers, "link track")) == [both.id]
    assert message_ids(found(client, api_headers, "track link pizza")) == []


def test_operators_in_a_query_are_only_words_to_find(client, api_headers, zoe):
    add_message(zoe, "tracking link")
    near = add_message(zoe, "Is the shop near the station or not?")

    for query in ("tracking OR pizza", "NOT tracking", '"tracking" -pizza*', "NEAR(tracking link)"):
        assert message_ids(found(client, api_headers, query)) == [], query
    assert message_ids(found(client, api_headers, "near OR not")) == [near.id]


def test_messages_page_newest_first_by_before(client, api_headers, zoe):
    sent = [add_message(zoe, f"Parcel number {n} is on its way").id for n in range(5)]

    first = found(client, api_headers, "parcel", limit=2)
    second = found(client, api_headers, "parcel", limit=2, before=first["next_before"])
    last = found(client, api_headers, "parcel", limit=2, before=second["next_before"])

    assert [message_ids(page) for page in (first, second, last)] == [
        sent[:2:-1],
        sent[2:0:-1],
        sent[:1],
    ]
    assert first["next_before"] == sent[3] and last["next_before"] is None


def test_the_limit_is_twenty_unless_asked_and_fifty_at_most(client, api_headers, zoe):
    for n in range(55):
        add_message(zoe, f"Parcel {n}")
    assert len(found(client, api_headers, "parcel")["messages"]) == 20
    assert len(found(client, api_headers, "parcel", limit=500)["messages"]) == 50
    assert len(found(client, api_headers, "parcel", limit=0)["messages"]) == 1


def test_a_deleted_message_is_no_longer_found(client, api_headers, zoe):
    old = add_message(zoe, "Old tracking link")
    kept = add_message(zoe, "New tracking link")

    retention.delete_in_batches(Message.select(Message.id).where(Message.id == old.id))

    assert message_ids(found(client, api_headers, "tracking")) == [kept.id]


def test_an_edited_message_is_found_by_its_new_text_only(client, api_headers, zoe):
    message = add_message(zoe, "Photo")
    Message.update(content="A photo of the broken parcel").where(Message.id == message.id).execute()

    assert message_ids(found(client, api_headers, "broken")) == [message.id]
    assert message_ids(found(client, api_headers, "Photo")) == [message.id]
    Message.update(content="Gone").where(Message.id == message.id).execute()
    assert message_ids(found(client, api_headers, "broken")) == []


# -- conversations by their contact ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("zoë", "Zoë Martin"),
        ("ZOË mar", "Zoë Martin"),
        ("josé", "José Álvarez"),
        ("álv", "José Álvarez"),
        ("美咲", "美咲 Sato"),
        ("sato", "美咲 Sato"),
    ],
)
def test_a_contacts_name_finds_their_conversation_whatever_its_script_or_case(
    client, api_headers, zoe, jose, misaki, query, name
):
    result = found(client, api_headers, query)
    assert [c["contact"]["display_name"] for c in result["conversations"]] == [name]


def test_diacritics_count_so_both_databases_find_the_same(client, api_headers, zoe, jose):
    assert found(client, api_headers, "zoe")["conversations"] == []
    assert found(client, api_headers, "jose")["conversations"] == []


def test_a_phone_number_or_username_is_found_by_its_start(client, api_headers, zoe, misaki):
    Contact.update(phone="16505550123").where(Contact.id == zoe.contact_id).execute()
    Contact.update(username="sato.misaki").where(Contact.id == misaki.contact_id).execute()

    assert conversation_ids(found(client, api_headers, "1650555")) == [zoe.id]
    assert conversation_ids(found(client, api_headers, "+1650555012")) == [zoe.id]
    assert conversation_ids(found(client, api_headers, "650555")) == []
    assert conversation_ids(found(client, api_headers, "misa")) == [misaki.id]


def test_conversations_come_most_recently_active_first_and_on_the_first_page_only(
    client, api_headers, connections
):
    older = make_conversation(connections["whatsapp"], "Anna One", minutes_ago=30)
    newer = make_conversation(connections["facebook"], "Anna Two", minutes_ago=3)
    add_message(older, "anna here")

    result = found(client, api_headers, "anna")

    assert conversation_ids(result) == [newer.id, older.id]
    shown = client.get(f"/api/v1/conversations/{newer.id}", headers=api_headers).json
    assert result["conversations"][0] == shown["conversation"]
    assert found(client, api_headers, "anna", before=10**9)["conversations"] == []


def test_a_renamed_contact_is_found_by_the_new_name_only(client, api_headers, zoe):
    record_profile(zoe.contact_id, display_name="Zoé Dupont", avatar_key=None)

    assert conversation_ids(found(client, api_headers, "dupont")) == [zoe.id]
    assert found(client, api_headers, "martin")["conversations"] == []


# -- another organization ----------------------------------------------------------------


def test_another_organizations_messages_and_contacts_are_never_found(
    client, api_headers, zoe, stranger
):
    ours = add_message(zoe, "The tracking link does not work")
    for query in ("tracking", "zoë martin", "1650555"):
        result = found(client, api_headers, query)
        assert stranger.id not in conversation_ids(result)
        assert [m["conversation_id"] for m in result["messages"]] in ([], [zoe.id])
    assert message_ids(found(client, api_headers, "tracking", before=ours.id + 1)) == [ours.id]


def test_an_organization_with_nothing_matching_gets_empty_lists(client, api_headers, stranger):
    assert found(client, api_headers, "tracking") == {
        "messages": [],
        "conversations": [],
        "next_before": None,
    }


def test_search_needs_a_signed_in_staff_member(client, zoe):
    assert client.get("/api/v1/search?q=zoë").status_code == 401


# -- what a query may be -----------------------------------------------------------------


@pytest.mark.parametrize("query", [None, "", "  ", "?!*", "__", '"":'])
def test_a_query_without_a_word_answers_400_with_a_sentence(client, api_headers, query):
    params = {} if query is None else {"q": query}
    response = client.get("/api/v1/search", query_string=params, headers=api_headers)
    assert response.status_code == 400
    assert response.json["error"] == "Type a word to search for: some letters or digits."


#: Syntax of FTS5 or to_tsquery around words all in "The tracking link does not work".
HOSTILE = [
    '"track',
    "track'",
    "*track*",
    "track:*",
    "track & link | !not",
    "(((track",
    "(track) (link)",
    "link NOT track",
    "the:tracking",
    "\x00tracking\x00",
    "tracking'); --",
    "^track",
    "💥 track",
    "-track +link",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_syntax_of_either_engine_in_a_query_only_separates_words(client, api_headers, zoe, query):
    message = add_message(zoe, "The tracking link does not work")
    assert message_ids(found(client, api_headers, query)) == [message.id]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=200), before=st.none() | st.integers(-(2**70), 2**70))
def test_any_query_answers_200_or_400(client, api_headers, zoe, query, before):
    params = {"q": query} if before is None else {"q": query, "before": before}
    response = client.get("/api/v1/search", query_string=params, headers=api_headers)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
