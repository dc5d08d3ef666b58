"""The accounts the simulated platforms hold, and the tokens and codes that open them.

An account is a WhatsApp phone number (inside a WhatsApp Business Account), a
Facebook Page, or a TikTok business account. A token opens some accounts of one
platform until it expires; a token the simulator never issued or was never told
about is refused, as the platform would refuse it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from app.simulator.ids import numeric_id

#: The account a platform's owner has when nothing was registered before a connect.
_DEFAULT_ACCOUNTS = {
    "whatsapp": ("109876543210001", "Simulated Shop"),
    "facebook": ("309876543210001", "Simulated Page"),
    "tiktok": ("7000000000000000009", "Simulated TikTok shop"),
}

#: Seconds an OAuth ``code`` can be exchanged.
CODE_LIFETIME = 600


@dataclass
class Account:
    platform: str
    account_id: str
    name: str
    #: WhatsApp: the WhatsApp Business Account the number belongs to.
    waba_id: str | None = None
    #: WhatsApp: the number as customers see it.
    display_phone_number: str | None = None
    subscribed: bool = False

    @classmethod
    def described(cls, platform: str, account_id: str, name: str = "", **details) -> Account:
        """An account with the details given; the others made up as the platform would."""
        defaults = whatsapp_details(account_id) if platform == "whatsapp" else {}
        given = {key: value for key, value in details.items() if value is not None}
        return cls(platform, account_id, name or f"{platform} {account_id}", **defaults | given)

    def json(self) -> dict:
        return {
            "platform": self.platform,
            "account_id": self.account_id,
            "name": self.name,
            "waba_id": self.waba_id,
            "display_phone_number": self.display_phone_number,
            "subscribed": self.subscribed,
        }


def whatsapp_details(account_id: str) -> dict:
    """The WABA id and display number of a phone-number id nobody described."""
    return {
        "waba_id": numeric_id(f"waba:{account_id}"),
        "display_phone_number": "1555" + numeric_id(f"phone:{account_id}", 7),
    }


@dataclass(frozen=True)
class Token:
    """What one token opens: a kind (system, user, page, business) and accounts."""

    platform: str
    kind: str
    account_ids: frozenset[str]
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def expires_in(self, now: float) -> int | None:
        return None if self.expires_at is None else max(0, int(self.expires_at - now))


@dataclass(frozen=True)
class Code:
    """An authorization code an OAuth dialog handed out, exchangeable once."""

    platform: str
    client_id: str
    redirect_uri: str
    issued_at: float = field(default_factory=time.time)


class Registry:
    """Every account, token, refresh token and code of the simulated platforms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[tuple[str, str], Account] = {}
        self._tokens: dict[str, Token] = {}
        self._refresh_tokens: dict[str, Token] = {}
        self._codes: dict[str, Code] = {}
        self._page_tokens: dict[tuple[str, str], str] = {}

    # -- accounts ---------------------------------------------------------------

    def add_account(self, platform: str, account_id: str, name: str = "", **details) -> Account:
        """The account, created (or its details updated) as described."""
        with self._lock:
            account = self._accounts.get((platform, account_id))
            if account is None:
                account = Account.described(platform, account_id, name, **details)
                self._accounts[(platform, account_id)] = account
                return account
            if name:
                account.name = name
            for key, value in details.items():
                if value is not None:
                    setattr(account, key, value)
            return account

    def account(self, platform: str, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get((platform, account_id))

    def accounts(self, platform: str | None = None) -> list[Account]:
        with self._lock:
            return [a for a in self._accounts.values() if platform in (None, a.platform)]

    def owned(self, platform: str) -> list[Account]:
        """The accounts an owner connecting ``platform`` grants (a default one if none)."""
        accounts = self.accounts(platform)
        if accounts:
            return accounts
        account_id, name = _DEFAULT_ACCOUNTS[platform]
        return [self.add_account(platform, account_id, name)]

    def whatsapp_business_account(self, waba_id: str) -> list[Account]:
        return [a for a in self.accounts("whatsapp") if a.waba_id == waba_id]

    # -- tokens -----------------------------------------------------------------

    def register(
        self,
        platform: str,
        account_id: str,
        access_token: str,
        *,
        refresh_token: str | None = None,
        expires_at: float | None = None,
        refresh_expires_at: float | None = None,
        name: str = "",
        **details,
    ) -> Account:
        """Make ``access_token`` (and ``refresh_token``) open the account, as SNORQ holds them."""
        account = self.add_account(platform, account_id, name, **details)
        kind = {"whatsapp": "system", "facebook": "page", "tiktok": "business"}[platform]
        with self._lock:
            known = self._tokens.get(access_token)
            ids = (known.account_ids if known else frozenset()) | {account_id}
            self._tokens[access_token] = Token(platform, kind, ids, expires_at)
            if refresh_token:
                self._refresh_tokens[refresh_token] = Token(
                    platform, "refresh", frozenset({account_id}), refresh_expires_at
                )
        return account

    def issue(self, platform: str, kind: str, account_ids, expires_in: int | None = None) -> str:
        """A new access token of ``kind`` opening ``account_ids``."""
        value = _new_token(platform)
        expires_at = None if expires_in is None else time.time() + expires_in
        with self._lock:
            self._tokens[value] = Token(platform, kind, frozenset(account_ids), expires_at)
        return value

    def issue_refresh(self, platform: str, account_id: str, expires_in: int) -> str:
        value = "rft." + secrets.token_hex(24)
        with self._lock:
            self._refresh_tokens[value] = Token(
                platform, "refresh", frozenset({account_id}), time.time() + expires_in
            )
        return value

    def token(self, value: str | None) -> Token | None:
        if not value:
            return None
        with self._lock:
            return self._tokens.get(value)

    def page_token(self, user_token: str, page_id: str, expires_at: float | None) -> str:
        """The Page token a user token gets for ``page_id`` (the same one each time)."""
        with self._lock:
            value = self._page_tokens.get((user_token, page_id))
            if value is None:
                value = self._page_tokens[(user_token, page_id)] = _new_token("facebook")
                self._tokens[value] = Token("facebook", "page", frozenset({page_id}), expires_at)
            return value

    def redeem_refresh(self, value: str, now: float) -> Token | None:
        """The refresh token's grant, spent (TikTok rotates refresh tokens), if still valid."""
        with self._lock:
            token = self._refresh_tokens.pop(value, None)
        if token is None or token.expired(now):
            return None
        return token

    # -- OAuth codes ------------------------------------------------------------

    def new_code(self, platform: str, client_id: str, redirect_uri: str) -> str:
        value = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[value] = Code(platform, client_id, redirect_uri)
        return value

    def redeem_code(self, value: str, now: float) -> Code | None:
        with self._lock:
            code = self._codes.pop(value, None)
        if code is None or now - code.issued_at > CODE_LIFETIME:
            return None
        return code


def _new_token(platform: str) -> str:
    if platform == "tiktok":
        return "act." + secrets.token_hex(24)
    return "EAAS" + secrets.token_urlsafe(90).replace("-", "").replace("_", "")
