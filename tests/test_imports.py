import subprocess
import sys

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
