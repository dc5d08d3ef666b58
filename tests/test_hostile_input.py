"""Hostile input at the webhook endpoints: the web refuses or queues, and never fails."""

import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import meta_headers, tiktok_headers

PLATFORMS = ["whatsapp", "facebook", "tiktok"]
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

header_text = st.text(alphabet=string.printable.strip() + "éü€", max_size=120)
signature_headers = st.dictionaries(
    st.sampled_from(["X-Hub-Signature-256", "TikTok-Signature", "Content-Type", "X-Other"]),
    header_text,
    max_size=3,
)


@FUZZ
@given(
    platform=st.sampled_from(PLATFORMS), body=st.binary(max_size=4096), headers=signature_headers
)
def test_arbitrary_unsigned_requests_are_refused_not_failed(client, platform, body, headers):
    response = client.post(f"/api/v1/webhooks/{platform}", data=body, headers=headers)
    assert response.status_code == 401


@FUZZ
@given(
    platform=st.sampled_from(["whatsapp", "facebook"]),
    body=st.binary(max_size=4096),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
)
def test_any_correctly_signed_body_is_queued_whatever_its_content_type(
    client, platform, body, content_type
):
    headers = {**meta_headers(platform, body), "Content-Type": content_type}
    # The raw stream: the test client would otherwise re-encode an empty form body.
    response = client.post(
        f"/api/v1/webhooks/{platform}",
        input_stream=io.BytesIO(body),
        content_length=len(body),
        headers=headers,
    )
    assert response.status_code == 200


@FUZZ
@given(body=st.binary(max_size=4096))
def test_any_correctly_signed_tiktok_body_is_queued(client, body):
    response = client.post("/api/v1/webhooks/tiktok", data=body, headers=tiktok_headers(body))
    assert response.status_code == 200


@FUZZ
@given(query=st.dictionaries(header_text, header_text, max_size=4))
def test_arbitrary_handshakes_are_refused_without_echoing(client, query):
    for platform in PLATFORMS:
        response = client.get(f"/api/v1/webhooks/{platform}", query_string=query)
        assert response.status_code == 403


def test_deeply_nested_json_is_just_bytes_to_the_web(client):
    body = b'{"object":"page","entry":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = client.post(
        "/api/v1/webhooks/facebook", data=body, headers=meta_headers("facebook", body)
    )
    assert response.status_code == 200
