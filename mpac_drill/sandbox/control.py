"""Start, stop and inspect the sandbox from the harness side (``sandbox up|status|down``).

The daemon (``daemon.py``) owns the platform's processes; this module spawns it, waits for it
with progress, reads its ``state.json``, hands recovery delays to it through ``tuning.json``,
and sweeps every process carrying the sandbox marker on ``down``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpac_drill import PROJECT_ROOT
from mpac_drill.config import Target, in_port_block
from mpac_drill.errors import SandboxError, UsageError
from mpac_drill.sandbox.daemon import (
    STATE_FORMAT,
    TUNABLES,
    new_secrets,
    tunable,
    write_json_atomic,
)
from mpac_drill.sandbox.procs import MARKER_ENV, pid_alive, port_is_free, sweep

Progress = Callable[[str], None]
_STRUCTURAL = (
    "rds.primary_port",
    "rds.standby_port",
    "rds.synchronous",
    "redis.primary_port",
    "redis.replica_port",
    "redis.sentinel_ports",
    "ecs.tasks_per_service",
    "ecs.task_port_base",
    "ecs.services",
    "alb",
    "app",
    "backup",
)


def state_dir(target: Target) -> Path:
    if target.kind != "sandbox":
        raise UsageError(f"target {target.name!r} is not a sandbox (kind: {target.kind})")
    d = Path(str(target.require("state_dir")))
    return d if d.is_absolute() else PROJECT_ROOT / d


def private_settings(
    base: dict[str, Any], *, name: str, state_dir: str | Path, port_block: int
) -> dict[str, Any]:
    """A copy of sandbox settings ``base`` on its own state folder and ports, for a second
    sandbox beside the default one (tests, benchmarks): see ``config.in_port_block``."""
    out = in_port_block(base, port_block)
    out.update(name=name, state_dir=str(state_dir))
    return out


def port_settings(target: Target) -> list[tuple[str, int]]:
    """Every port the sandbox of ``target`` listens on, with the setting naming it."""
    out = [
        ("rds.primary_port", target.require("rds.primary_port")),
        ("rds.standby_port", target.require("rds.standby_port")),
        ("redis.primary_port", target.require("redis.primary_port")),
        ("redis.replica_port", target.require("redis.replica_port")),
    ]
    out += [
        (f"redis.sentinel_ports[{i}]", p)
        for i, p in enumerate(target.require("redis.sentinel_ports"))
    ]
    out += [
        (f"ecs.services.{n}.port", c["port"]) for n, c in target.require("ecs.services").items()
    ]
    base, per = target.require("ecs.task_port_base"), target.require("ecs.tasks_per_service")
    n_tasks = sum(int(c.get("tasks", per)) for c in target.require("ecs.services").values())
    out += [(f"ecs.task_port_base+{i}", base + i) for i in range(n_tasks)]
    return [(k, int(v)) for k, v in out]


@dataclass(frozen=True)
class SandboxView:
    """A running sandbox as a drill sees it: state, endpoints and (in memory only) secrets."""

    target: Target
    dir: Path
    state: dict[str, Any]
    secrets: dict[str, str]

    @property
    def endpoints(self) -> dict[str, Any]:
        return self.state["endpoints"]

    def dsn(self, db: str = "smartpos") -> str:
        key = "dsn" if db == "smartpos" else "pgw_dsn"
        return f"{self.endpoints[key]} password={self.secrets['db_password']}"

    def component(self, name: str) -> dict[str, Any]:
        for c in self.state["components"]:
            if c["name"] == name:
                return c
        raise SandboxError(f"sandbox has no component {name!r}")

    def by_role(self, kind: str, role: str) -> list[dict[str, Any]]:
        return [c for c in self.state["components"] if c["kind"] == kind and c["role"] == role]

    def refresh(self) -> SandboxView:
        return SandboxView(self.target, self.dir, read_state(self.dir) or self.state, self.secrets)


def read_state(sdir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((sdir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _daemon_running(state: dict[str, Any] | None) -> bool:
    if not state:
        return False
    return state["phase"] in ("starting", "ready") and pid_alive(int(state["daemon_pid"]))


def status(target: Target) -> dict[str, Any]:
    """The sandbox's state (``running: False`` with no components when it is down)."""
    sdir = state_dir(target)
    state = read_state(sdir)
    if not _daemon_running(state):
        return {
            "running": False,
            "healthy": False,
            "phase": "down",
            "components": [],
            "endpoints": {},
            "state_dir": str(sdir),
        }
    assert state is not None
    return {"running": True, **state, "state_dir": str(sdir)}


def view(target: Target) -> SandboxView:
    """The running sandbox, or a clear error telling how to start it."""
    sdir = state_dir(target)
    state = read_state(sdir)
    if not _daemon_running(state) or state is None or state["phase"] != "ready":
        raise SandboxError("the sandbox is not running: start it with `mpac-drill sandbox up`")
    sec = json.loads((sdir / "secrets.json").read_text())
    return SandboxView(target, sdir, state, sec)


def _structure(settings: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k in _STRUCTURAL:
        node: Any = settings
        for part in k.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):  # a tunable inside a structural section changes nothing
            node = {n: v for n, v in node.items() if f"{k}.{n}" not in TUNABLES}
        out[k] = node  # None: a sandbox started before the setting existed
    return out


def up(target: Target, progress: Progress = lambda m: None, timeout_s: float = 90) -> SandboxView:
    """Start the sandbox (idempotent) and wait until every component is healthy."""
    sdir = state_dir(target)
    state = read_state(sdir)
    if _daemon_running(state):
        assert state is not None
        running = json.loads((sdir / "target.json").read_text())
        if state.get("format") != STATE_FORMAT:
            progress("sandbox was started by an older mpac-drill (no passwords): restarting it")
            down(target, progress)
        elif _structure(running) == _structure(target.settings):
            if state["phase"] == "ready":
                tune(target, progress)
                return wait_healthy(target, progress, timeout_s)
        else:
            progress("sandbox runs with other ports or services: restarting it")
            down(target, progress)
    else:
        leftovers = sweep(sdir)
        if leftovers:
            progress(f"stopped {leftovers} process(es) left by an earlier sandbox")
    spawn(target)
    progress("starting sandbox daemon")
    return wait_healthy(target, progress, timeout_s)


def spawn(target: Target, secrets_: dict[str, str] | None = None) -> Path:
    """Start the daemon of a sandbox that is down, without waiting (``up`` waits). Fresh
    secrets, except those in ``secrets_`` (the region drill's DR stack restores the
    primary's database, so it keeps its password). ``secrets.json`` is 0600 from its
    creation."""
    sdir = state_dir(target)
    for setting, port in port_settings(target):
        if not port_is_free(port):
            raise UsageError(
                f"port {port} ({setting}) is already in use: free it or "
                f"--set {setting.split('[')[0].split('+')[0]}=..."
            )
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "state.json").unlink(missing_ok=True)
    (sdir / "tuning.json").unlink(missing_ok=True)
    write_json_atomic(sdir / "target.json", target.settings)
    write_json_atomic(sdir / "secrets.json", {**new_secrets(), **(secrets_ or {})}, 0o600)
    env = {**os.environ, MARKER_ENV: str(sdir.resolve())}
    with (sdir / "daemon.log").open("ab") as logf:
        subprocess.Popen(
            [sys.executable, "-m", "mpac_drill.sandbox.daemon", str(sdir)],
            env=env,
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )
    return sdir


def wait_healthy(
    target: Target, progress: Progress = lambda m: None, timeout_s: float = 60
) -> SandboxView:
    sdir = state_dir(target)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        state = read_state(sdir)
        if state is not None:
            if state["phase"] == "failed":
                sweep(sdir)
                raise SandboxError(f"sandbox did not come up: {state['error']}")
            if state["phase"] in ("stopped", "stopping") or not pid_alive(state["daemon_pid"]):
                sweep(sdir)
                raise SandboxError(f"sandbox daemon exited (see {sdir / 'daemon.log'})")
            msg = (
                f"starting {state['starting']}"
                if state["phase"] == "starting"
                else "waiting for "
                + ", ".join(c["name"] for c in state["components"] if not c["healthy"])
            )
            # state.json is rewritten every 0.25 s: just after a kill it can still say
            # healthy, naming the dead process; a component is healthy only while it runs
            if state["healthy"] and all(
                pid_alive(c["pid"]) for c in state["components"] if c.get("pid")
            ):
                progress("sandbox healthy")
                return view(target)
            if msg != last:
                progress(msg)
                last = msg
        time.sleep(0.05)
    state = read_state(sdir) or {}
    sick = [c["name"] for c in state.get("components", []) if not c["healthy"]]
    what = ", ".join(sick) or state.get("starting") or "the daemon"
    raise SandboxError(f"sandbox not healthy after {timeout_s:.0f} s: {what} did not come up")


def tune(target: Target, progress: Progress = lambda m: None, timeout_s: float = 5) -> None:
    """Hand the recovery delays of ``target`` to the running daemon and wait for its ack."""
    sdir = state_dir(target)
    wanted = {k: tunable(target.settings, k) for k in TUNABLES}
    state = read_state(sdir)
    if state and state.get("tuning") == wanted:
        return
    write_json_atomic(sdir / "tuning.json", wanted)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(sdir)
        if state and state.get("tuning") == wanted:
            progress("recovery delays set: " + ", ".join(f"{k}={v}" for k, v in wanted.items()))
            return
        time.sleep(0.05)
    raise SandboxError("the sandbox daemon did not take the new recovery delays")


def down(target: Target, progress: Progress = lambda m: None, timeout_s: float = 20) -> int:
    """Stop the daemon and every process it started, and the region drill's DR stack
    (``<state_dir>-dr``) if one was left behind; return how many were swept."""
    sdir = state_dir(target)
    dr = sdir.with_name(sdir.name + "-dr")
    swept = stop_dir(dr, progress, timeout_s) if dr.is_dir() else 0
    return swept + stop_dir(sdir, progress, timeout_s)


def stop_dir(sdir: Path, progress: Progress = lambda m: None, timeout_s: float = 20) -> int:
    """``down`` of the sandbox whose state lives in ``sdir``."""
    state = read_state(sdir)
    if state and pid_alive(int(state["daemon_pid"])):
        progress("stopping sandbox daemon")
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(state["daemon_pid"]), signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(int(state["daemon_pid"])):
            time.sleep(0.05)
    swept = sweep(sdir)
    if swept:
        progress(f"stopped {swept} leftover process(es)")
    (sdir / "state.json").unlink(missing_ok=True)
    return swept
