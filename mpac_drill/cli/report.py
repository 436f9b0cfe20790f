"""``mpac-drill report``."""

from __future__ import annotations

import click

from mpac_drill.errors import HarnessError


@click.command("report")
def command() -> int:
    """Not built yet."""
    raise HarnessError("report is not built yet")
