"""``mpac-drill gate``."""

from __future__ import annotations

import click

from mpac_drill.errors import HarnessError


@click.command("gate")
def command() -> int:
    """Not built yet."""
    raise HarnessError("gate is not built yet")
