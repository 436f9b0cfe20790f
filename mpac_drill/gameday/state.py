"""A game day's state in its run folder, and the handshake with the operators.

- ``gameday.json``: written by the harness only (atomically): the plan, each step's
  ``shown_at``, ``confirmed_at``, ``effect_seen_at``, who and notes, the §3 cadence.
- ``gameday/acks/<step>.json``: written by ``mpac-drill gameday ack`` (or the harness's own
  Enter prompt): the step confirmed, when, by whom, with a note.
- ``gameday/updates/<n>.json``: written by ``mpac-drill gameday update``: one stakeholder
  update (runbook §3), when, by whom.

Every instant is a UTC wall-clock reading (``time.time()``): the operator's terminal and
the harness are different processes on one machine.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from mpac_drill.errors import UsageError
from mpac_drill.timefmt import iso

STATE = "gameday.json"


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def stamp(t: float) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(t, UTC))


def write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UsageError(f"{run_dir} is not a game day's run folder (no {STATE})") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not readable JSON: {exc}") from None


def ack_path(run_dir: Path, number: int) -> Path:
    return run_dir / "gameday" / "acks" / f"{number}.json"


def write_ack(run_dir: Path, number: int, note: str = "", by: str | None = None) -> dict[str, Any]:
    """Confirm step ``number`` now; the first confirmation of a step is the one kept."""
    ack = {"step": number, "at": time.time(), "who": by or who(), "note": note}
    path = ack_path(run_dir, number)
    if path.exists():
        raise UsageError(f"step {number} was already confirmed ({path})")
    write_atomic(path, ack)
    return ack


def read_ack(run_dir: Path, number: int) -> dict[str, Any] | None:
    try:
        return dict(json.loads(ack_path(run_dir, number).read_text()))
    except (OSError, ValueError):
        return None


def write_update(run_dir: Path, note: str = "") -> dict[str, Any]:
    upd = {"at": time.time(), "who": who(), "note": note}
    write_atomic(run_dir / "gameday" / "updates" / f"{time.time_ns()}.json", upd)
    return upd


def read_updates(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((run_dir / "gameday" / "updates").glob("*.json")):
        try:
            out.append(dict(json.loads(p.read_text())))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda u: u["at"])


def find_run(run: str, runs_dir: Path) -> Path:
    """RUN: a run folder's path, or its name under ``runs_dir``."""
    for cand in (Path(run), Path(runs_dir) / run):
        if (cand / STATE).is_file():
            return cand.resolve()
    raise UsageError(f"no game day {run!r} (neither a path nor a run under {runs_dir})")


__all__ = ["who", "read", "write_ack", "read_ack", "write_update", "read_updates", "find_run"]
