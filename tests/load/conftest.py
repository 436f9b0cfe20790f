"""Fixtures of the load tests: the fake MPAC server and "remote" workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_load_runner import fake_hosts  # noqa: F401 - a fixture


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator:
    """Start workers from the printed line in a folder of their own (no MPAC_LOAD_OUT: they
    are "remote", their figures reach the master only by locust messages)."""
    procs: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPAC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    def start(argv: list[str], n: int) -> list[subprocess.Popen]:
        for i in range(n):
            home = tmp_path / f"worker-machine-{i}"
            home.mkdir()
            log = (home / "worker.log").open("wb")
            # a machine of its own, its own /tmp: locust writes the locustfile it downloads
            # to $TMPDIR/<name>, and two workers sharing one overwrite each other's file
            # (one then exits "No User class found!")
            procs.append(
                subprocess.Popen(
                    argv,
                    cwd=home,
                    env={**env, "TMPDIR": str(home)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        return procs

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
