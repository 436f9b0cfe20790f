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

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_TARGET = ROOT / "experiments" / "targets" / "sandbox.yaml"
BENCH_NAME = "sandbox-bench"
BENCH_STATE_DIR = ".sandbox-bench"  # git-ignored (.sandbox-*/), relative to the project root
BENCH_PORTS: dict[str, Any] = {
    "rds.primary_port": 29432,
    "rds.standby_port": 29433,
    "redis.primary_port": 29379,
    "redis.replica_port": 29380,
    "redis.sentinel_ports": [29381, 29382, 29383],
    "ecs.task_port_base": 29100,
}
BENCH_SERVICE_PORT_BASE = 29080


def bench_settings(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (the sandbox target's settings) moved to the benchmark's state folder and ports."""
    out = copy.deepcopy(base)
    out["name"] = BENCH_NAME
    out["state_dir"] = BENCH_STATE_DIR
    for dotted, value in BENCH_PORTS.items():
        section, key = dotted.split(".")
        out[section][key] = value
    for i, service in enumerate(out["ecs"]["services"].values()):  # in the file's order
        service["port"] = BENCH_SERVICE_PORT_BASE + i
    return out


def write_bench_target(folder: Path, base: Path = SANDBOX_TARGET) -> Path:
    """Write ``folder/sandbox-bench.yaml`` (the benchmark's target) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(yaml.safe_load(base.read_text(encoding="utf-8")))
    path = folder / f"{BENCH_NAME}.yaml"
    header = (f"# Written by bench/_target.py from {base.name}: the benchmarks' own sandbox\n"
              f"# (state folder {BENCH_STATE_DIR}, ports 29xxx, below the ephemeral range).\n")
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path
