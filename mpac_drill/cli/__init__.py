"""The ``mpac-drill`` command: one group, one module per command, one place for exit codes.

Only :func:`main` exits. Errors the user can fix print one line and exit 2; harness or
platform failures exit 3; a missed target exits 1; Ctrl-C exits 130.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from mpac_drill import __version__
from mpac_drill.errors import DrillError, ExitCode, Terminated

# Piped output (CI logs, tests) gets wide tables instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EPILOG_TARGETS = (
    "Targets: sandbox (default, local), staging, production, or a path to a target file."
)


def target_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--target`` and ``--set``, shared by every command."""
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY.PATH=VALUE",
        help="Override one target setting for this run (repeatable), "
        "e.g. --set rds.failover_delay_s=2.5",
    )(f)
    f = click.option(
        "--target",
        "-t",
        default="sandbox",
        show_default=True,
        metavar="NAME|PATH",
        help="Target name (experiments/targets/NAME.yaml) or a target file.",
    )(f)
    return f


def runs_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--runs-dir",
        default="runs",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Folder holding one sub-folder per drill run.",
    )(f)


def out_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--out",
        "out_dir",
        default="docs/dr-test-results",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Folder the report files are written to.",
    )(f)


def drill_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--users``, ``--load-workers``, ``--dry-run`` and the production guard's flags:
    shared by commands that run drills."""
    f = click.option(
        "--ticket",
        default=None,
        metavar="CHG-123",
        help="Change ticket; required with --allow-production.",
    )(f)
    f = click.option(
        "--allow-production",
        is_flag=True,
        help="Permit a drill on a production target (the target file must "
        "also say allow_production: true).",
    )(f)
    f = click.option(
        "--dry-run",
        is_flag=True,
        help="Print every step and AWS call the drill would make; make none.",
    )(f)
    f = click.option(
        "--load-workers",
        type=click.IntRange(0, 64),
        default=None,
        help="Run locust as a master with N workers (default: target's load.workers).",
    )(f)
    f = click.option(
        "--users",
        type=click.IntRange(0, 100_000),
        default=None,
        help="Simulated users of the load (default: target's load.users; 0 turns load off). "
        "Each sends about 15 requests/s: portal POST /login and GET /verify, smarttab POST "
        "/orders, pgw POST /payments/qr; on an AWS target these are real requests to its "
        "endpoints (real logins, orders and QR payments): --dry-run prints them.",
    )(f)
    return f


def repeat_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--repeat N``: run each scenario N times (the sandbox made whole between runs)."""
    return click.option(
        "--repeat",
        type=click.IntRange(1, 1000),
        default=1,
        show_default=True,
        metavar="N",
        help="Run each scenario N times (the platform checked whole before each run) and "
        "print each scenario's spread: median, p95, min, max and a bootstrap 95 % CI of "
        "rto_s, rto_slo_s and rpo_s.",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mpac-drill")
def cli() -> None:
    """Measure the MPAC DR runbook's RTO and RPO by injecting real failures.

    \b
    First contact (no AWS needed):
      mpac-drill sandbox up          # start the local miniature MPAC platform
      mpac-drill run rds-failover    # inject a failure, measure RTO/RPO under load
      mpac-drill sandbox down
    """


def _register() -> None:
    from mpac_drill.cli import (
        check,
        gameday,
        gate,
        load,
        quarter,
        recover,
        report,
        run,
        sandbox,
        scenarios,
    )

    for mod in (sandbox, scenarios, run, quarter, report, gate, check, recover, gameday, load):
        cli.add_command(mod.command)


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into one exit code."""
    _register()
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    try:
        rv = cli.main(args=argv, prog_name="mpac-drill", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else ExitCode.OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.ClickException as exc:  # usage errors from click itself
        err_console.print(f"mpac-drill: error: {_one_line(exc.format_message())}", markup=False)
        code = ExitCode.USAGE
    except DrillError as exc:
        err_console.print(f"mpac-drill: error: {_one_line(str(exc))}", markup=False)
        code = exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        err_console.print("mpac-drill: interrupted", markup=False)
        code = ExitCode.INTERRUPTED
    except Terminated as exc:
        hangup = exc.signum == signal.SIGHUP
        err_console.print(f"mpac-drill: {'hung up' if hangup else 'terminated'}", markup=False)
        code = ExitCode.HANGUP if hangup else ExitCode.TERMINATED
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, exit 3
        if os.environ.get("MPAC_DRILL_DEBUG"):
            raise
        err_console.print(
            f"mpac-drill: internal error: {exc.__class__.__name__}: "
            f"{_one_line(str(exc))} (set MPAC_DRILL_DEBUG=1 for a traceback)",
            markup=False,
        )
        code = ExitCode.HARNESS
    if argv is None:  # the process's own entry point (in-process callers pass argv)
        # The outcome is decided and result.json written: a hang-up or SIGTERM while the
        # interpreter exits (it puts default handlers back) must not kill the process by
        # signal and lose the exit code of the signal that ended the drill.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    sys.stdout.flush()
    return int(code)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)
