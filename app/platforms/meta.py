"""What WhatsApp and Messenger share: Meta's webhooks, the Graph API and its errors.

Meta signs the raw bytes it sends (already ``\\uXXXX``-escaped, with ``\\/``), so the
HMAC is computed over the body exactly as received, never over re-encoded JSON.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started

Every Graph call carries its token in the ``Authorization`` header and its secrets in
a POST body, never in the URL: a URL can end up in an error message or a log. A
refusal is Graph's ``{"error": {"code", "error_subcode", "message"}}``; it is
classified by its code (:data:`GRAPH_ERRORS`, then each platform's own table),
never by its text.
https://developers.facebook.com/docs/graph-api/guides/error-handling
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import requests

from app.platforms import http
from app.platforms.base import (
    Account,
    Platform,
    TokenSet,
    error_code,
    hmac_sha256_hex,
    same_secret,
)
from app.platforms.errors import (
    NO_PERMISSION,
    REJECTED,
    THROTTLED,
    TOKEN_REFUSED,
    UNAVAILABLE,
    AuthError,
    ErrorCode,
    Outcome,
    PlatformError,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"

#: What Meta's codes mean on every Graph call, token endpoints included (PLATFORMS.md,
#: section 1 "Graph error shape"); a platform's own table is read first.
GRAPH_ERRORS: Mapping[int, Outcome] = {
    0: TOKEN_REFUSED,  # AuthException
    102: TOKEN_REFUSED,  # the API session expired
    190: TOKEN_REFUSED,  # the access token expired or was invalidated
    1: UNAVAILABLE,  # API unknown: wait and retry
    2: UNAVAILABLE,  # API service: temporarily down
    4: THROTTLED,  # the app's request limit
    17: THROTTLED,  # the user's request limit
    32: THROTTLED,  # the Page's request limit
    613: THROTTLED,  # a custom rate limit
    3: NO_PERMISSION,  # the app may not call this method
    10: NO_PERMISSION,  # permission denied
    **dict.fromkeys(range(200, 300), NO_PERMISSION),
    368: REJECTED,  # blocked for policy violations: retrying cannot help
}


class MetaPlatform(Platform):
    """A platform on Meta's Graph API (WhatsApp Cloud API, Messenger)."""

    # -- webhooks -----------------------------------------------------------------

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

    # -- the Graph API --------------------------------------------------------------

    @classmethod
    def outcome(cls, code: int, subcode: int | None) -> Outcome | None:
        """The platform's own meaning of a code first (Messenger's 10/2018278), then Graph's."""
        return super().outcome(code, subcode) or GRAPH_ERRORS.get(code)

    def graph_url(self, path: str) -> str:
        return f"{self.settings.graph_api_url}/{path}"

    def graph(self, method: str, path: str, token: str, *, sends: bool = False, **kwargs) -> dict:
        """One Graph API call made with ``token``; the JSON object it answered.

        Parameters:
          sends: The call may deliver a message, so an answer SNORQ cannot read
            may mean it went (``maybe_delivered``).

        Raises:
          PlatformError: Graph's refusal, classified by its code; a TemporaryError
            for a 2xx answer that is not a JSON object.
        """
        headers = {"Authorization": f"Bearer {token}"}
        response = http.request(method, self.graph_url(path), headers=headers, **kwargs)
        return self.graph_answer(response, sends=sends)

    def graph_answer(self, response: requests.Response, *, sends: bool = False) -> dict:
        """The JSON object of a successful Graph answer (see :meth:`graph`)."""
        answer = http.json_object(response)
        if response.ok and answer is None:
            raise self.unconfirmed() if sends else self.unreadable()
        if response.ok and "error" not in answer:
            return answer
        raise self.graph_error(answer or {}, response.status_code, http.retry_after(response))

    def graph_error(
        self, answer: Mapping, http_status: int, retry_after: float | None = None
    ) -> PlatformError:
        """The error for a Graph refusal: its ``{"error": {...}}`` answer and HTTP status."""
        error = answer.get("error")
        error = error if isinstance(error, Mapping) else {}
        return self.classify(
            error_code(error.get("code")),
            str(error.get("message", "")),
            subcode=error_code(error.get("error_subcode")),
            http_status=http_status,
            retry_after=retry_after,
        )

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

    def post_messages(self, account: Account, body: dict, *, sends: bool = False) -> dict:
        """POST ``body`` to the account's ``/messages`` edge: replies, read receipts, typing."""
        path = f"{account.account_id}/messages"
        return self.graph("POST", path, account.access_token, json=body, sends=sends)

    # -- connections (PLATFORMS.md, section 3 "Tokens") ------------------------------

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
        """A token from ``/oauth/access_token``, asked for with the app's secret in a form body."""
        app = {"client_id": self.credentials.app_id, "client_secret": self.credentials.app_secret}
        url = self.graph_url("oauth/access_token")
        answer = self.graph_answer(http.request("POST", url, data={**app, **fields}))
        if not isinstance(answer.get("access_token"), str):
            raise self.unreadable()
        return TokenSet(answer["access_token"], expires_in=answer.get("expires_in"))

    def subscribe_app(self, object_id: str, token: str, fields: Mapping[str, str]) -> None:
        """Subscribe SNORQ's app to the webhooks of a Page or WhatsApp Business Account."""
        self.graph("POST", f"{object_id}/subscribed_apps", token, data=fields)
