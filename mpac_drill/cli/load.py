"""``mpac-drill load``: the drill's load generator seen from outside (remote workers)."""

from __future__ import annotations

import click

from mpac_drill.cli import console, target_options
from mpac_drill.config import load_target
from mpac_drill.errors import ExitCode, UsageError
from mpac_drill.load import parse_bind, worker_command


@click.group("load")
def command() -> None:
    """The drill's locust load: commands for workers on other machines.

    \b
    Example:
      mpac-drill load worker-command --target staging
    """


@command.command("worker-command")
@target_options
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes on that machine (locust --processes).",
)
def worker_command_cmd(target: str, sets: tuple[str, ...], processes: int) -> int:
    """Print the one line that starts a locust worker for the target's drills.

    The target's load section must say external_workers: N and master_bind: host:port
    (master_host: the address the workers dial, when it is not the bind host). Run the
    printed line on each worker machine (locust installed) before the drill; the drill's
    master waits load.workers_wait_s for N of them and fails before the fault (exit 3)
    otherwise. The locustfile and the service URLs come from the master (locust's -f -
    download and spawn message): no URL, token or secret is on the line. Several workers
    on one machine: give each its own TMPDIR (locust writes the downloaded locustfile to
    $TMPDIR/<name>, where two workers overwrite each other's; one then exits "No User class
    found!"), or start one worker with --processes N.

    \b
    Example:
      mpac-drill load worker-command --target staging --set load.master_bind=0.0.0.0:5557
    """
    t = load_target(target, sets)
    bind = t.get("load.master_bind")
    if not bind:
        raise UsageError(
            f"target {t.name} has no load.master_bind (host:port the master binds for "
            "external workers); set it in the target or with --set load.master_bind=..."
        )
    host, port = parse_bind(str(bind))
    dial = str(t.get("load.master_host") or host)
    if dial in ("0.0.0.0", "::", ""):
        raise UsageError(
            f"load.master_bind binds {host}: set load.master_host to the address the "
            "workers reach the master at"
        )
    console.print(worker_command(dial, port, processes=processes), markup=False, soft_wrap=True)
    return ExitCode.OK
