"""The benchmarks' own sandbox: a copy of the sandbox target on ports nobody else uses.

Benchmarks start and stop a sandbox; the default one (``.sandbox``, ports 15432.., 16379..,
26379.., 18080.., 18100..) may be in use by a developer or a test session, so a benchmark
writes a copy of ``experiments/targets/sandbox.yaml`` with its own state folder and ports in
29xxx (PostgreSQL, Redis, Sentinels, listeners, tasks; below Linux's ephemeral range
32768-60999, where TIME-WAIT sockets of other sandboxes can hold a port), and brings that
one up and down.

    path = write_bench_target(Path("/tmp/bench"))
    target = load_target(str(path))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_TARGET = ROOT / "experiments" / "targets" / "sandbox.yaml"
BENCH_NAME = "sandbox-bench"
BENCH_STATE_DIR = ".sandbox-bench"  # git-ignored (.sandbox-*/), relative to the project root
BENCH_PORT_BLOCK = 29000


def bench_settings(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (the sandbox target's settings) moved to the benchmark's state folder and ports."""
    from mpac_drill.sandbox.control import private_settings

    return private_settings(
        base, name=BENCH_NAME, state_dir=BENCH_STATE_DIR, port_block=BENCH_PORT_BLOCK
    )


def write_bench_target(folder: Path, base: Path = SANDBOX_TARGET) -> Path:
    """Write ``folder/sandbox-bench.yaml`` (the benchmark's target) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(yaml.safe_load(base.read_text(encoding="utf-8")))
    path = folder / f"{BENCH_NAME}.yaml"
    header = (
        f"# Written by bench/_target.py from {base.name}: the benchmarks' own sandbox\n"
        f"# (state folder {BENCH_STATE_DIR}, ports 29xxx, below the ephemeral range).\n"
    )
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path
