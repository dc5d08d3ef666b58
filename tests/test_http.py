"""app/platforms/http.py: the one HTTP client setup for platform calls."""

import pytest
import responses

from app.config import get_settings
from app.platforms import http

URL = "https://graph.facebook.com/v25.0/me"
PROXY_AND_CA = ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")
PROXY_AND_CA += ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def environment(monkeypatch):
    """The process environment, read afresh by the client for each test."""
    for name in PROXY_AND_CA:
        monkeypatch.delenv(name, raising=False)
    http._environment.cache_clear()
    yield monkeypatch
    http._environment.cache_clear()


def _call() -> dict:
    """Make one call; the settings requests handed to its transport."""
    with responses.RequestsMock() as mocked:
        mocked.get(URL, json={"id": "1"})
        http.request("GET", URL)
        return mocked.calls[0].request.req_kwargs


def test_a_platform_call_goes_through_the_proxy_the_environment_names(environment):
    environment.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert _call()["proxies"].get("https") == "http://proxy.internal:3128"


def test_a_host_the_environment_exempts_is_called_directly(environment):
    environment.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    environment.setenv("NO_PROXY", "graph.facebook.com")
    assert not _call()["proxies"].get("https")


def test_the_ca_bundle_the_environment_names_verifies_platform_calls(environment, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    environment.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert _call()["verify"] == str(bundle)


def test_a_call_names_snorq_sends_no_cookie_and_leaves_with_snorqs_timeouts(environment):
    with responses.RequestsMock() as mocked:
        mocked.get(URL, json={"id": "1"}, headers={"Set-Cookie": "fr=abc; Path=/"})
        http.request("GET", URL, headers={"Authorization": "Bearer t"})
        http.request("GET", URL)
        first, second = (call.request for call in mocked.calls)
    assert first.headers["User-Agent"] == "SNORQ/0.1"
    assert first.headers["Accept-Encoding"] == "gzip, deflate"
    assert first.headers["Authorization"] == "Bearer t"
    assert "Authorization" not in second.headers
    assert "Cookie" not in second.headers, "a platform's cookie is not sent back"
    assert first.req_kwargs["timeout"] == (http.CONNECT_TIMEOUT, get_settings().http_timeout)
