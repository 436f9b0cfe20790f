"""What the console shows while a drill runs: phase, elapsed time, health, load.

On a terminal a live panel refreshes four times a second; in a pipe (CI logs) each phase
change prints one line with the same figures.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.live import Live
from rich.table import Table

from mpac_drill.cli import err_console
from mpac_drill.drill.context import DrillContext


def _figures(ctx: DrillContext) -> tuple[str, str]:
    health = ""
    if ctx.observer is not None:
        latest = ctx.observer.latest()
        health = " ".join(f"{name}={'up' if ok else 'DOWN'}" for name, ok in sorted(latest.items()))
    load = ""
    if ctx.load is not None and not ctx.load.stopped:
        rps, fps = ctx.load.recent_rate()
        load = f"{rps:.0f} req/s, {fps:.1f} fail/s"
    return health, load


class DrillDisplay:
    """A listener for :class:`DrillContext` phase changes, plus a ticker on terminals."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.ctx: DrillContext | None = None
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tty = err_console.is_terminal

    def __call__(self, ctx: DrillContext) -> None:
        self.ctx = ctx
        if self.tty:
            if self._live is None:
                self._start_live()
            return
        health, load = _figures(ctx)
        extra = "  ".join(x for x in (health, load) if x)
        err_console.print(
            f"[dim]{self.label} {ctx.elapsed_s():6.1f}s[/dim] {ctx.current_phase}"
            + (f"  [dim]{extra}[/dim]" if extra else "")
        )

    def _render(self) -> Table:
        t = Table.grid(padding=(0, 2))
        ctx = self.ctx
        if ctx is None:
            return t
        health, load = _figures(ctx)
        t.add_row(f"[bold]{self.label}[/bold]", f"{ctx.elapsed_s():6.1f} s", ctx.current_phase)
        if health:
            t.add_row("", "health", health)
        if load:
            t.add_row("", "load", load)
        return t

    def _start_live(self) -> None:
        self._live = Live(self._render(), console=err_console, refresh_per_second=4, transient=True)
        self._live.start()

        def tick() -> None:
            while not self._stop.wait(0.25):
                if self._live is not None:
                    self._live.update(self._render())

        self._thread = threading.Thread(target=tick, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._live is not None:
            self._live.stop()

    def __enter__(self) -> DrillDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
