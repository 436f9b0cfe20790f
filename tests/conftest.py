"""Shared fixtures: the real sandbox (session-wide) and a CLI runner."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mpac_drill import PROJECT_ROOT
from mpac_drill.config import Target, load_target
from mpac_drill.drill.result import SCHEMA_CANDIDATES

SCHEMA = next((p for p in SCHEMA_CANDIDATES if p.is_file()), SCHEMA_CANDIDATES[-1])


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, timeout: float = 300, env: dict | None = None) -> CliResult:
    """Run ``mpac-drill`` as a user would: a separate process, real exit code."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mpac_drill.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        env=env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def sandbox() -> Target:
    """The sandbox, up for the whole session, down at the end."""
    from mpac_drill.errors import UsageError
    from mpac_drill.sandbox import control

    target = load_target("sandbox")
    try:
        control.up(target)  # this checkout's sandbox, if the demo left it up, is reused
    except UsageError as exc:  # the ports are someone else's: one line, not 40 errors
        pytest.exit(
            f"the default sandbox cannot start here ({exc}); is a sandbox of "
            "another checkout up? Stop it there (mpac-drill sandbox down), then rerun",
            returncode=3,
        )
    yield target
    control.down(target)


@pytest.fixture(scope="session")
def result_schema() -> dict:
    if not SCHEMA.is_file():
        pytest.skip(f"contract schema not found at {SCHEMA}")
    return json.loads(SCHEMA.read_text())


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


#: Fixtures that start a real sandbox: a test using one is a sandbox test, marked or not
#: (so ``-m "not sandbox"`` never starts one).
SANDBOX_FIXTURES = {"sandbox", "gameday_target"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SANDBOX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)
