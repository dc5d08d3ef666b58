from pathlib import Path

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


def _production(tmp_path, database_url: str) -> dict:
    return {
        "SNORQ_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "x" * 40,
        "SNORQ_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


@pytest.mark.parametrize(
    ("database_url", "path"),
    [("sqlite:////srv/snorq/snorq.db", "/srv/snorq/snorq.db"), ("postgres://db/snorq", None)],
)
def test_a_database_url_says_which_database_and_file(tmp_path, database_url, path):
    settings = Settings.from_env(_production(tmp_path, database_url))
    assert settings.sqlite_path == (Path(path) if path else None)
    assert settings.production


def test_a_relative_sqlite_url_is_a_file_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(_production(tmp_path, "sqlite:///data/snorq.db"))
    assert settings.sqlite_path == tmp_path / "data" / "snorq.db"


def test_a_sqlite_url_is_production_mode_and_needs_its_secrets(tmp_path):
    env = _production(tmp_path, "sqlite:////srv/snorq/snorq.db")
    del env["SECRET_KEY"]
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("database_url", "named"),
    [
        ("mysql://snorq:hunter2@db/snorq", "'mysql'"),
        ("postgresq://db/snorq", "'postgresq'"),
        ("/srv/snorq/snorq.db", "missing"),
    ],
)
def test_an_unsupported_database_url_names_the_scheme_and_not_the_password(
    tmp_path, database_url, named
):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(_production(tmp_path, database_url))
    message = str(refused.value)
    assert message == (
        "DATABASE_URL must start with postgresql://, postgres:// or sqlite:/// "
        f"(its scheme is {named})."
    )
    assert "hunter2" not in message


@pytest.mark.parametrize("database_url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_a_sqlite_url_must_name_a_file(tmp_path, database_url):
    with pytest.raises(ConfigError, match="a sqlite:/// URL names a file"):
        Settings.from_env(_production(tmp_path, database_url))
