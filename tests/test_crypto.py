import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from app import crypto
from app.cli import main
from app.config import get_settings
from app.models import PlatformConnection
from tests.fixtures import make_connection


@pytest.fixture
def use_keys(monkeypatch):
    def set_keys(*keys: str) -> None:
        monkeypatch.setenv("SNORQ_ENCRYPTION_KEYS", ",".join(keys))
        get_settings.cache_clear()

    return set_keys


def test_a_token_round_trips_and_is_not_stored_in_the_clear(org):
    connection = make_connection(org, "tiktok", refresh_token="refresh-secret")
    stored = PlatformConnection.get_by_id(connection.id)

    assert "tiktok-access-token" not in stored.access_token_encrypted
    assert "refresh-secret" not in stored.refresh_token_encrypted
    assert stored.access_token() == "tiktok-access-token"
    assert stored.refresh_token() == "refresh-secret"


def test_rotation_moves_every_token_to_the_new_key(org, use_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    connection = make_connection(org, "tiktok", refresh_token="refresh-secret")

    use_keys(new, old)
    result = CliRunner().invoke(main, ["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("Re-encrypted the tokens of 1 connection(s).")

    use_keys(new)
    rotated = PlatformConnection.get_by_id(connection.id)
    assert rotated.access_token() == "tiktok-access-token"
    assert rotated.refresh_token() == "refresh-secret"
    use_keys(old)
    with pytest.raises(crypto.InvalidToken):
        rotated.access_token()


def test_every_configured_key_decrypts(use_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(old)
    under_old = crypto.encrypt("token")
    use_keys(new, old)
    assert crypto.decrypt(under_old) == "token"
    assert crypto.decrypt(crypto.encrypt("token")) == "token"
    use_keys(old)
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(_encrypt_with(new, "x"))


def _encrypt_with(key: str, text: str) -> str:
    return Fernet(key).encrypt(text.encode()).decode()
