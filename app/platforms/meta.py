"""What WhatsApp and Messenger share: Meta's webhook signature and subscription handshake.

Meta signs the raw bytes it sends (already ``\\uXXXX``-escaped, with ``\\/``), so the
HMAC is computed over the body exactly as received, never over re-encoded JSON.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import requests

from app.platforms import http
from app.platforms.base import Account, Platform, TokenSet, hmac_sha256_hex, same_secret
from app.platforms.calls import answer_json, with_retry_after
from app.platforms.errors import (
    AuthError,
    ErrorCode,
    PermanentError,
    PlatformError,
    TemporaryError,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"


class MetaPlatform(Platform):
    """A platform on Meta's Graph API (WhatsApp Cloud API, Messenger)."""

    def verify_signature(self, body: bytes, headers: Mapping[str, str], now: float) -> bool:
        secret = self.webhook_secret()
        received = headers.get(SIGNATURE_HEADER)
        if not secret or not received:
            return False
        return same_secret("sha256=" + hmac_sha256_hex(secret, body), received)

    def verify_subscription(self, args: Mapping[str, str]) -> str | None:
        verify_token = self.settings.secrets_for(self.name).verify_token
        if not verify_token or args.get("hub.mode") != "subscribe":
            return None
        if not same_secret(verify_token, args.get("hub.verify_token", "")):
            return None
        return args.get("hub.challenge", "")

    # -- connections (PLATFORMS.md, section 3 "Tokens") ------------------------------
    #
    # Every call carries its token in the Authorization header and its secrets in a
    # POST body: a URL can end up in an error message or a log.

    def authorize_endpoint(self) -> str:
        return self.settings.facebook_auth_url

    def refresh(self, account: Account, refresh_token: str | None) -> TokenSet:
        # Page tokens made from a long-lived user token and WhatsApp business tokens
        # never expire and come with no refresh token; once Meta refuses one (code
        # 190), only a person logging in again can grant a new one.
        raise AuthError(
            ErrorCode.TOKEN_EXPIRED,
            f"Meta no longer accepts this {self.title} token; reconnect the account.",
        )

    def redeem_code(self, code: str) -> TokenSet:
        """The user (or business) token an authorization code stands for."""
        return self.oauth_token({"redirect_uri": self.redirect_uri, "code": code})

    def oauth_token(self, fields: Mapping[str, str]) -> TokenSet:
        """A token from ``/oauth/access_token`` (Meta accepts its fields as a form body)."""
        app = {"client_id": self.credentials.app_id, "client_secret": self.credentials.app_secret}
        url = self.graph_url("oauth/access_token")
        data = graph_json(http.request("POST", url, data={**app, **fields}))
        return TokenSet(data["access_token"], expires_in=data.get("expires_in"))

    def graph_url(self, path: str) -> str:
        return f"{self.settings.graph_api_url}/{path}"

    def graph(self, method: str, path: str, token: str, **kwargs) -> dict:
        """One Graph API call made with ``token``."""
        headers = {"Authorization": f"Bearer {token}"}
        return graph_json(http.request(method, self.graph_url(path), headers=headers, **kwargs))

    def graph_list(self, path: str, token: str, params: Mapping[str, str]) -> Iterator[dict]:
        """Every item of a paginated Graph edge, page after page."""
        # Graph's ``paging.next`` URL repeats the token in its query string, so the
        # next page is asked for by its cursor instead.
        params = dict(params)
        while True:
            page = self.graph("GET", path, token, params=params)
            yield from page.get("data", [])
            paging = page.get("paging", {})
            after = paging.get("cursors", {}).get("after")
            if not paging.get("next") or not after:
                return
            params["after"] = after

    def subscribe_app(self, object_id: str, token: str, fields: Mapping[str, str]) -> None:
        """Subscribe SNORQ's app to the webhooks of a Page or WhatsApp Business Account."""
        self.graph("POST", f"{object_id}/subscribed_apps", token, data=fields)


# -- Graph API errors (https://developers.facebook.com/docs/graph-api/guides/error-handling) --

#: Meta's generic recovery rules: wait and retry, or get a new token.
_RETRY = {1, 2, 4, 17, 32, 613}
_NEW_TOKEN = {0, 102, 190}


def graph_json(response: requests.Response) -> dict:
    """The JSON object of a successful Graph answer.

    Raises:
      PlatformError: classified by Meta's error code.
    """
    answer = answer_json(response)
    if response.ok and "error" not in answer:
        return answer
    raise with_retry_after(graph_error(response.status_code, answer), response)


def graph_error(status: int, answer: dict) -> PlatformError:
    """The error for a Graph refusal: HTTP ``status``, JSON ``answer`` (``{"error": …}``)."""
    error = answer.get("error", {})
    code = error.get("code")
    message = f"Meta answered HTTP {status}"
    if code is not None:
        message = f"Meta error {code}: {error.get('message', '')}"
    if code in _RETRY or (code is None and status >= 500):
        return TemporaryError(ErrorCode.PLATFORM_UNAVAILABLE, message, platform_code=code)
    if code in _NEW_TOKEN:
        return AuthError(ErrorCode.TOKEN_EXPIRED, message, platform_code=code)
    if code in {3, 10} or (isinstance(code, int) and 200 <= code <= 299):
        return AuthError(ErrorCode.PERMISSION_DENIED, message, platform_code=code)
    return PermanentError(ErrorCode.REJECTED, message, platform_code=code)
