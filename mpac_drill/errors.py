"""Exit codes and the exception hierarchy; only ``cli.main`` turns these into an exit."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code of the ``mpac-drill`` command, in one place."""

    OK = 0  # all targets met
    TARGET_MISSED = 1  # a target missed, the experiment deviated, or nothing to report
    USAGE = 2  # bad input: unknown target, malformed file, bad --set, busy port
    HARNESS = 3  # the harness or the platform could not run the drill
    HANGUP = 129  # SIGHUP (the terminal or SSH session went away)
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    TERMINATED = 143  # SIGTERM


class DrillError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code: ExitCode = ExitCode.HARNESS


class UsageError(DrillError):
    """The user asked for something that cannot be: fix the input and retry."""

    exit_code = ExitCode.USAGE


class HarnessError(DrillError):
    """The harness or the platform under test failed (not a missed target)."""

    exit_code = ExitCode.HARNESS


class SandboxError(HarnessError):
    """A sandbox component did not come up, or the sandbox is not running."""


class SafetyStop(DrillError):
    """A stop condition or a guard ended the drill; rollbacks have run."""

    exit_code = ExitCode.TARGET_MISSED


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt so that cleanup and rollbacks run;
    ``signum`` says which."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.signum = signum


__all__ = [
    "Terminated",
    "ExitCode",
    "DrillError",
    "UsageError",
    "HarnessError",
    "SandboxError",
    "SafetyStop",
]
