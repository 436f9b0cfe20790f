"""What a drill says its rollbacks did comes from their runs in the journal: never
"rollbacks ran" when one failed, and a failed rollback fails the drill (exit 3)."""

from __future__ import annotations

from types import SimpleNamespace

from mpac_drill.drill.result import _status
from mpac_drill.errors import ExitCode


def _run(name: str, status: str, exc: str | None = None) -> dict:
    out = {"activity": {"name": name}, "status": status}
    if exc:
        out["exception"] = ["Traceback ...\n", f"chaoslib.exceptions.ActivityFailed: {exc}\n"]
    return out


CTX = SimpleNamespace(abort_reason=None)
OK = [_run("stop-load", "succeeded"), _run("fail-back", "succeeded")]
BAD = [_run("stop-load", "succeeded"), _run("fail-back", "failed", "DR stack did not stop")]


def test_a_signal_with_every_rollback_succeeded_says_they_ran() -> None:
    status, reason = _status(CTX, {"status": "interrupted", "rollbacks": OK}, ExitCode.HANGUP)
    assert status == "aborted" and reason.endswith("rollbacks ran")


def test_a_signal_with_a_failed_rollback_names_it_and_never_says_they_ran() -> None:
    status, reason = _status(CTX, {"status": "interrupted", "rollbacks": BAD}, ExitCode.HANGUP)
    assert status == "aborted"
    assert "rollbacks ran" not in reason and "fail-back" in reason


def test_a_completed_method_with_a_failed_rollback_is_a_failed_drill() -> None:
    journal = {"status": "completed", "run": [], "rollbacks": BAD}
    assert _status(CTX, journal, None) == (
        "failed",
        "rollback fail-back failed: DR stack did not stop",
    )
    assert _status(CTX, {"status": "completed", "run": [], "rollbacks": OK}, None) == (
        "completed",
        None,
    )
