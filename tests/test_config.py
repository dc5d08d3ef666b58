import pytest
from cryptography.fernet import Fernet

from app.config import ConfigError, Settings


def test_embedded_mode_generates_development_secrets_in_instance(tmp_path):
    settings = Settings.from_env({"SNORQ_INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url is None and not settings.production
    assert (tmp_path / "encryption_key").read_text().strip() == settings.encryption_keys[0]
    assert (tmp_path / "secret_key").read_text().strip() == settings.secret_key
    assert "development key" in settings.startup_warnings()[0]
    again = Settings.from_env({"SNORQ_INSTANCE_PATH": str(tmp_path)})
    assert again.encryption_keys == settings.encryption_keys


def test_production_without_secret_key_is_a_clear_error(tmp_path):
    env = {
        "SNORQ_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql://db/snorq",
        "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        Settings.from_env(env)


def test_production_without_encryption_keys_is_a_clear_error(tmp_path):
    env = {
        "SNORQ_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql://db/snorq",
        "SECRET_KEY": "x" * 40,
    }
    with pytest.raises(ConfigError, match="SNORQ_ENCRYPTION_KEYS must be set"):
        Settings.from_env(env)
    assert not (tmp_path / "encryption_key").exists()


def test_a_malformed_encryption_key_is_named(tmp_path):
    env = {"SNORQ_INSTANCE_PATH": str(tmp_path), "SNORQ_ENCRYPTION_KEYS": "not-a-key"}
    with pytest.raises(ConfigError, match="key 1 is not a Fernet key"):
        Settings.from_env(env)


def test_production_with_its_secrets_has_no_warnings(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    env = {
        "SNORQ_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql://db/snorq",
        "SECRET_KEY": "x" * 40,
        "SNORQ_ENCRYPTION_KEYS": keys,
        "GRAPH_API_URL": "https://graph.facebook.com/v26.0/",
    }
    settings = Settings.from_env(env)

    assert len(settings.encryption_keys) == 2
    assert settings.startup_warnings() == []
    assert settings.graph_api_url == "https://graph.facebook.com/v26.0"
    assert settings.facebook_auth_url == "https://www.facebook.com/v26.0/dialog/oauth"


def test_tiktok_webhook_secret_defaults_to_the_client_secret(tmp_path):
    env = {"SNORQ_INSTANCE_PATH": str(tmp_path), "TIKTOK_CLIENT_SECRET": "cs"}
    assert Settings.from_env(env).secrets_for("tiktok").webhook_secret == "cs"
    env["TIKTOK_WEBHOOK_SECRET"] = "ws"
    assert Settings.from_env(env).secrets_for("tiktok").webhook_secret == "ws"


def test_a_malformed_number_is_named(tmp_path):
    env = {"SNORQ_INSTANCE_PATH": str(tmp_path), "SNORQ_WEBHOOK_MAX_BYTES": "lots"}
    with pytest.raises(ConfigError, match="SNORQ_WEBHOOK_MAX_BYTES must be a whole number"):
        Settings.from_env(env)
