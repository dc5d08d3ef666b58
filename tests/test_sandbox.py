"""The sandbox: when it starts, what it sets, the demo it makes, and the simulator it mounts."""

import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app import sandbox
from app.auth import check_password
from app.config import ConfigError, get_settings
from app.models import Organization, PlatformConnection, User
from tests.fixtures import make_connection
from tests.test_simulator import serving


@pytest.fixture
def env(tmp_path):
    """An environment of its own: an empty instance folder, nothing else set."""
    return {"SNORQ_INSTANCE_PATH": str(tmp_path)}


ORGANIZATIONS = Organization._meta.table_name
CONNECTIONS = PlatformConnection._meta.table_name


def _with_organization(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {ORGANIZATIONS} (id INTEGER PRIMARY KEY)")
        db.execute(f"INSERT INTO {ORGANIZATIONS} VALUES (1)")  # noqa: S608 (a model's table)


def test_run_starts_the_sandbox_on_an_empty_embedded_database(env):
    assert sandbox.wanted(False, env)


def test_run_starts_the_sandbox_when_asked_even_with_a_database_url(env):
    env["DATABASE_URL"] = "postgresql://127.0.0.1/x"
    assert sandbox.wanted(True, env)
    assert not sandbox.wanted(False, env)


def test_run_on_a_database_with_organizations_uses_the_real_platforms(env, tmp_path):
    _with_organization(tmp_path / "snorq.db")
    assert not sandbox.wanted(False, env)


def test_a_folder_that_ran_the_sandbox_keeps_running_it(env, tmp_path):
    sandbox.prepare("127.0.0.1", 5000, True, env)
    _with_organization(tmp_path / "snorq.db")
    assert sandbox.wanted(False, env)


def test_prepare_points_every_platform_at_the_simulator(env):
    demo = sandbox.prepare("0.0.0.0", 8123, False, env)  # noqa: S104
    assert demo.url == "http://127.0.0.1:8123"
    assert env["GRAPH_API_URL"] == "http://127.0.0.1:8123/simulator/graph/v25.0"
    assert env["TIKTOK_API_URL"] == "http://127.0.0.1:8123/simulator/tiktok/open_api/v1.3"
    assert env["TIKTOK_AUTH_URL"] == "http://127.0.0.1:8123/simulator/tiktok/v2/auth/authorize/"
    assert env["FACEBOOK_AUTH_URL"] == "http://127.0.0.1:8123/simulator/facebook/v25.0/dialog/oauth"
    assert env["SNORQ_PUBLIC_URL"] == demo.url
    assert env["WHATSAPP_APP_SECRET"] == demo.apps["whatsapp"]["app_secret"]
    assert env["TIKTOK_CLIENT_KEY"] == demo.apps["tiktok"]["app_id"]


def test_prepare_generates_secrets_once_and_never_overrides_the_environment(env, tmp_path):
    env["FACEBOOK_APP_SECRET"] = "mine"
    first = sandbox.prepare("127.0.0.1", 5000, True, env)
    second_env = {"SNORQ_INSTANCE_PATH": env["SNORQ_INSTANCE_PATH"]}
    second = sandbox.prepare("127.0.0.1", 5050, True, second_env)
    assert env["FACEBOOK_APP_SECRET"] == "mine"
    assert (second.password, second.apps, second.accounts) == (
        first.password,
        first.apps,
        first.accounts,
    )
    assert second.url == "http://127.0.0.1:5050"
    path = tmp_path / sandbox.SANDBOX_FILE
    assert sandbox.load(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_sandbox_file_is_one_clear_error(env, tmp_path):
    (tmp_path / sandbox.SANDBOX_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not a sandbox file"):
        sandbox.prepare("127.0.0.1", 5000, True, env)


def test_without_the_sandbox_prepare_changes_nothing(env, tmp_path):
    _with_organization(tmp_path / "snorq.db")
    assert sandbox.prepare("127.0.0.1", 5000, False, env) is None
    assert set(env) == {"SNORQ_INSTANCE_PATH"}
    assert not (tmp_path / sandbox.SANDBOX_FILE).exists()


@pytest.fixture
def demo(env):
    return sandbox.prepare("127.0.0.1", 5000, True, env)


def test_setting_up_the_demo_twice_makes_it_once(demo):
    sandbox.set_up_demo(demo)
    sandbox.set_up_demo(demo)
    assert [o.name for o in Organization.select()] == [sandbox.DEMO_ORGANIZATION]
    (user,) = User.select()
    assert user.email == sandbox.DEMO_EMAIL and check_password(user, demo.password)
    connections = {c.platform: c for c in PlatformConnection.select()}
    assert set(connections) == {"whatsapp", "facebook", "tiktok"}
    for platform, connection in connections.items():
        spec = demo.accounts[platform]
        assert connection.organization_id == user.organization_id
        assert (connection.account_id, connection.access_token()) == (
            spec["account_id"],
            spec["access_token"],
        )
    assert connections["tiktok"].refresh_token() == demo.accounts["tiktok"]["refresh_token"]
    assert connections["tiktok"].token_expires_at is not None
    assert connections["whatsapp"].token_expires_at is None


def test_the_printed_password_always_works(demo, env):
    sandbox.set_up_demo(demo)
    (Path(env["SNORQ_INSTANCE_PATH"]) / sandbox.SANDBOX_FILE).unlink()
    fresh = sandbox.prepare("127.0.0.1", 5000, True, env)
    sandbox.set_up_demo(fresh)
    assert check_password(User.get(User.email == sandbox.DEMO_EMAIL), fresh.password)


def test_welcome_shows_the_inbox_the_credentials_and_what_to_try(demo):
    text = sandbox.welcome(demo)
    assert "http://127.0.0.1:5000/" in text
    assert sandbox.DEMO_EMAIL in text and demo.password in text
    assert 'snorq simulate whatsapp --text "Hi"' in text
    assert "http://127.0.0.1:5000/simulator/_simulator/" in text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_reply_through_the_mounted_simulator_comes_back_as_receipts_snorq_accepts(
    env, app, org, monkeypatch
):
    monkeypatch.setenv("SNORQ_SIMULATOR_DELAYS", "0,0.02")
    port = _free_port()
    demo = sandbox.prepare("127.0.0.1", port, True, env)
    sandbox.set_up_demo(demo)
    other = make_connection(org, "whatsapp", "999000111")
    simulator = sandbox.simulator_app(get_settings(), demo)
    sandbox.mount(app, simulator)
    try:
        with serving(app, port):
            base = f"{demo.simulator_url}/graph/v25.0"
            for account_id, token in (
                (
                    demo.accounts["whatsapp"]["account_id"],
                    demo.accounts["whatsapp"]["access_token"],
                ),
                (other.account_id, other.access_token()),
            ):
                response = requests.post(
                    f"{base}/{account_id}/messages",
                    json={
                        "messaging_product": "whatsapp",
                        "to": "15551234567",
                        "text": {"body": "Hello"},
                    },
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                assert response.status_code == 200, response.text
            assert requests.get(f"{demo.url}/healthz", timeout=5).status_code == 200
            history = _finished_webhooks(demo, 6)
    finally:
        simulator.extensions["simulator"].deliveries.close()
    assert all(entry["delivered"] and entry["outcomes"] == ["200"] for entry in history)


def _finished_webhooks(demo, count: int) -> list[dict]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        history = requests.get(f"{demo.simulator_url}/_simulator/webhooks", timeout=5).json()
        if len(history["webhooks"]) >= count:
            return history["webhooks"]
        time.sleep(0.05)
    raise AssertionError(history)


# -- `snorq run` itself ---------------------------------------------------------------


def _snorq(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("snorq")), *args]


def _start(folder: Path, port: int) -> tuple[subprocess.Popen, str]:
    """``snorq run`` in ``folder``, and what it printed once it is up."""
    log = folder / f"run-{time.monotonic_ns()}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            _snorq("run", "--port", str(port)),
            cwd=folder,
            env=_clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        text = log.read_text()
        if "Password" in text:
            return process, text
        time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text())


def _stop(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def _clean_env() -> dict:
    """Only what a newcomer's shell has: no SNORQ variables, no database or Redis URL."""
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return kept | {"SNORQ_SIMULATOR_DELAYS": "0,0.02"}


def test_snorq_run_in_a_fresh_folder_starts_the_sandbox_and_a_restart_keeps_it(tmp_path):
    port = _free_port()
    process, printed = _start(tmp_path, port)
    try:
        assert sandbox.DEMO_EMAIL in printed and f"http://127.0.0.1:{port}/" in printed
        simulated = subprocess.run(
            _snorq("simulate", "whatsapp", "--text", "Hi"),
            cwd=tmp_path,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert simulated.returncode == 0, simulated.stderr
        assert "200 OK" in simulated.stderr
        state = requests.get(f"http://127.0.0.1:{port}/simulator/_simulator/", timeout=5).json()
        assert {a["platform"] for a in state["accounts"]} == {"whatsapp", "facebook", "tiktok"}
    finally:
        _stop(process)
    password = next(line for line in printed.splitlines() if "Password" in line).split()[-1]
    process, printed_again = _start(tmp_path, port)
    _stop(process)
    assert password in printed_again
    with sqlite3.connect(tmp_path / "instance" / "snorq.db") as db:
        count = "SELECT count(*) FROM {}"
        assert db.execute(count.format(ORGANIZATIONS)).fetchone() == (1,)
        assert db.execute(count.format(CONNECTIONS)).fetchone() == (3,)


def test_real_platform_credentials_keep_an_empty_embedded_folder_out_of_the_sandbox(tmp_path):
    from app.sandbox import wanted

    env = {"SNORQ_INSTANCE_PATH": str(tmp_path)}
    assert wanted(False, env)
    assert not wanted(False, {**env, "WHATSAPP_APP_SECRET": "real-secret"})
    assert wanted(True, {**env, "WHATSAPP_APP_SECRET": "real-secret"})
