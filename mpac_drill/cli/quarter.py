"""``mpac-drill quarter``."""

from __future__ import annotations

import click

from mpac_drill.errors import HarnessError


@click.command("quarter")
def command() -> int:
    """Not built yet."""
    raise HarnessError("quarter is not built yet")
