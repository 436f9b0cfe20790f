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
