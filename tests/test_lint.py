"""The style guide, checked in CI: ruff lint and ruff format over the whole tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mpac_drill import PROJECT_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")], ids=" ".join)
def test_ruff_passes_on_the_tree(args: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [str(BIN / "ruff"), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_import_contracts_hold() -> None:
    """The layers of docs/architecture.md, as pyproject.toml's import-linter contracts."""
    proc = subprocess.run(
        [str(BIN / "lint-imports")], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_platform_and_measure_packages_pass_mypy_strict() -> None:
    """The seam and the figures are typed strictly (both platforms checked against the
    Platform protocol in mpac_drill/drill/platforms.py)."""
    proc = subprocess.run(
        [
            str(BIN / "mypy"),
            "--strict",
            "--follow-imports=silent",
            "mpac_drill/platform",
            "mpac_drill/measure",
            "mpac_drill/drill/platforms.py",
            "mpac_drill/timefmt.py",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
