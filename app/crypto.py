"""Platform tokens encrypted at rest with MultiFernet over ``SNORQ_ENCRYPTION_KEYS``.

The first key encrypts; every key decrypts, so a new key can be put first and the
old one kept until ``snorq rotate-keys`` has re-encrypted every stored token.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import get_settings

__all__ = ["InvalidToken", "decrypt", "encrypt", "reencrypt"]


@functools.cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _cipher(get_settings().encryption_keys)


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` under the first key."""
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever configured key fits.

    Raises:
      InvalidToken: when no configured key can read it.
    """
    return _current().decrypt(ciphertext.encode()).decode()


def reencrypt(ciphertext: str) -> str:
    """The same plaintext, encrypted under the first key."""
    return _current().rotate(ciphertext.encode()).decode()
