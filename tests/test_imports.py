import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_ENV

PURE_MODULES = [
    "app",
    "app.config",
    "app.db",
    "app.models",
    "app.crypto",
    "app.messages",
    "app.live",
    "app.platforms",
    "app.serializers",
    "app.windows",
    "app.cli",
    "scheduler.jobs",
]


def test_importing_a_module_does_no_io(tmp_path):
    instance = tmp_path / "instance"
    code = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *PURE_MODULES],
        env={"SNORQ_INSTANCE_PATH": str(instance), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not instance.exists()


#: What each deployed process must not load: the embedded mode's in-process Redis,
#: the sandbox's platform simulator, the S3 client (until a file is stored there),
#: the migration runner (`snorq migrate` alone), and Flask in the workers.
NOT_NEEDED = ("fakeredis", "lupa", "app.simulator", "boto3", "moto", "playhouse.migrations")

LOADS = {
    "worker": "import workers",
    "web": "import app; app.create_app()",
    "clock": "import scheduler.jobs",
}


@pytest.mark.parametrize("process", sorted(LOADS))
def test_a_deployed_process_does_not_import_what_it_does_not_use(process, tmp_path):
    unwanted = [*NOT_NEEDED, *(["flask", "werkzeug", "jinja2"] if process != "web" else [])]
    code = f"import sys\n{LOADS[process]}\nprint(' '.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            "SNORQ_INSTANCE_PATH": str(tmp_path / "instance"),
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgresql://snorq@127.0.0.1:1/unused",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "SECRET_KEY": "import-test",
            "SNORQ_ENCRYPTION_KEYS": TEST_ENV["SNORQ_ENCRYPTION_KEYS"],
        },
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert [m for m in unwanted if m in loaded or any(n.startswith(m + ".") for n in loaded)] == []


def test_snorq_run_without_a_sandbox_does_not_load_the_simulator(tmp_path):
    loaded = _loaded_modules("import app.embedded, workers\nimport app; app.create_app()", tmp_path)
    assert "fakeredis" in loaded, "the embedded mode runs on the in-process Redis"
    assert sorted(m for m in loaded if m.startswith("app.simulator")) == []


def test_snorq_run_on_sqlite_leaves_out_the_postgresql_driver_and_fakeredis_json(tmp_path):
    # The embedded mode's own start-up, as `run_embedded` does it before its imports.
    code = (
        "import app.embedded\nfrom app.config import get_settings\n"
        "app.embedded.leave_out_unused_modules(get_settings())\n"
        "import workers, scheduler.jobs\nimport app; app.create_app()"
    )
    loaded = _loaded_modules(code, tmp_path)
    assert "peewee" in loaded and "fakeredis" in loaded
    unwanted = ("psycopg2", "psycopg", "jsonpath_ng")
    assert [m for m in loaded if m.split(".")[0] in unwanted] == []


def _loaded_modules(code: str, tmp_path) -> set[str]:
    """The modules a fresh embedded-mode interpreter holds after running ``code``."""
    listing = "import sys\nprint(' '.join(m for m, module in sys.modules.items() if module))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{listing}\n"],
        env={"SNORQ_INSTANCE_PATH": str(tmp_path / "instance"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())
