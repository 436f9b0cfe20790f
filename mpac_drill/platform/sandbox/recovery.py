"""Where recovery time goes, on the sandbox: the daemon's own events of recovery.

The daemon logs each event the moment its component sees it (``state.json`` ``events``, UTC
stamps): ``ecs: svc-portal/task-1 running (port 18100 open)`` when a replacement task
serves, ``rds: promoted rds-standby to primary`` once ``pg_promote`` returned and commits no
longer wait for a standby, ``redis: redis-replica promoted to primary (Sentinel switch)``
when the node reports the master role. These lines are the evidence of each event.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from mpac_drill.platform import RecoveryEvent

#: daemon event line → the kind of recovery event it is
_PATTERNS = (
    (re.compile(r"^ecs: (?P<resource>\S+) running\b"), "task_running"),
    (re.compile(r"^rds: promoted (?P<resource>\S+) to primary"), "database_promoted"),
    (re.compile(r"^redis: (?P<resource>\S+) promoted to primary"), "cache_promoted"),
)


def parse_events(lines: list[dict[str, str]], since: float) -> list[RecoveryEvent]:
    """The recovery events among the daemon's event lines (``{"at", "event"}``) at or after
    ``since`` (epoch), oldest first."""
    out: list[RecoveryEvent] = []
    for line in lines:
        try:
            at = datetime.fromisoformat(str(line["at"]))
        except (KeyError, TypeError, ValueError):
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at.timestamp() < since:
            continue
        text = str(line.get("event", ""))
        for pattern, kind in _PATTERNS:
            match = pattern.match(text)
            if match:
                out.append(
                    RecoveryEvent(
                        at=str(line["at"]),
                        kind=kind,
                        resource=match.group("resource"),
                        evidence=f"sandbox daemon event {line['at']}: {text}",
                    )
                )
                break
    return sorted(out, key=lambda e: e["at"])


def read_events(state_dir: Path, since: float) -> list[RecoveryEvent]:
    """The recovery events in the sandbox's ``state.json`` since ``since`` (epoch)."""
    try:
        state = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return []
    return parse_events(list(state.get("events") or []), since)


__all__ = ["parse_events", "read_events"]
