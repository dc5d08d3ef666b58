import pytest
from click.testing import CliRunner

from app.auth import check_password, user_for_token
from app.cli import main
from app.models import Organization, PlatformConnection, User


@pytest.fixture
def snorq():
    def run(*args: str) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output.strip().splitlines()[-1]

    return run


def test_migrate_reports_an_up_to_date_database(snorq):
    assert snorq("migrate") == "Database is up to date."


def test_create_org_prints_the_new_id(snorq):
    org_id = int(snorq("create-org", "Acme Ltd"))
    assert Organization.get_by_id(org_id).name == "Acme Ltd"


def test_create_user_prints_the_user_id_and_hashes_the_password(snorq, org):
    user_id = int(
        snorq("create-user", "--org", str(org.id), "--email", "A@Acme.test", "--password", "s3cret")
    )
    user = User.get_by_id(user_id)
    assert user.email == "a@acme.test" and user.organization_id == org.id
    assert "s3cret" not in user.password_hash and check_password(user, "s3cret")


def test_create_user_refuses_an_unknown_organization():
    result = CliRunner().invoke(
        main, ["create-user", "--org", "999", "--email", "a@b.c", "--password", "p"]
    )
    assert result.exit_code != 0 and "no organization with id 999" in result.output


def test_create_token_prints_a_token_that_authenticates(snorq, user):
    token = snorq("create-token", "--email", user.email)
    assert user_for_token(token).id == user.id


def test_add_connection_prints_the_id_and_encrypts_the_token(snorq, org):
    connection_id = int(
        snorq(
            "add-connection",
            "--org",
            str(org.id),
            "--platform",
            "tiktok",
            "--account-id",
            "biz-1",
            "--access-token",
            "at-1",
            "--refresh-token",
            "rt-1",
            "--expires-in",
            "86400",
            "--name",
            "Acme TikTok",
        )
    )
    connection = PlatformConnection.get_by_id(connection_id)
    assert (connection.platform, connection.account_id, connection.name) == (
        "tiktok",
        "biz-1",
        "Acme TikTok",
    )
    assert connection.access_token() == "at-1" and connection.refresh_token() == "rt-1"
    assert "at-1" not in connection.access_token_encrypted
    assert connection.token_expires_at is not None


def test_add_connection_refuses_an_account_already_connected(snorq, org):
    args = [
        "add-connection",
        "--org",
        str(org.id),
        "--platform",
        "whatsapp",
        "--account-id",
        "555",
        "--access-token",
        "t",
    ]
    snorq(*args)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "already connected" in result.output


def test_a_configuration_error_is_one_clear_line(monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/nowhere")
    monkeypatch.delenv("SECRET_KEY")
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["create-org", "X"])
    assert result.exit_code == 2
    assert "SECRET_KEY must be set" in result.output


def test_an_unsupported_database_url_is_one_clear_line(monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "mysql://snorq:hunter2@127.0.0.1/snorq")
    get_settings.cache_clear()
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 2
    assert result.output == (
        "snorq: configuration error: DATABASE_URL must start with postgresql://, "
        "postgres:// or sqlite:/// (its scheme is 'mysql').\n"
    )
