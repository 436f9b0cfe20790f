"""``mpac-drill demo``."""

from __future__ import annotations

import click

from mpac_drill.errors import HarnessError


@click.command("demo")
def command() -> int:
    """Not built yet."""
    raise HarnessError("demo is not built yet")
