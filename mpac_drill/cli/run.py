"""``mpac-drill run``."""

from __future__ import annotations

import click

from mpac_drill.errors import HarnessError


@click.command("run")
def command() -> int:
    """Not built yet."""
    raise HarnessError("run is not built yet")
