"""Preflight on the sandbox: nothing to look up before the drill. ``mpac-drill run`` starts
the sandbox (or checks every component of a running one) before any drill, which is the
sandbox's preflight."""

from __future__ import annotations

from typing import Any

from mpac_drill.aws import DryRun
from mpac_drill.config import Target


def preflight(target: Target, scenario_id: str, *, dry_run: DryRun | None) -> list[Any]:
    """No checks: the sandbox is checked whole when it is started or found running."""
    return []


__all__ = ["preflight"]
