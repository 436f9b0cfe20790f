"""The one step timer: a procedure's steps timed back to back on the monotonic clock, each
recorded with its UTC start (mapped through one clock reading), duration, outcome, detail.

Used by every timed procedure of every platform (point-in-time restore, region failover).

Example::

    timer = StepTimer(records, time.monotonic(), utc_now())
    with timer.step("restore snapshot") as st:
        ...
        st["detail"] = "mpac-smartpos-dr available"
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from mpac_drill.measure.record import Step
from mpac_drill.timefmt import iso


class StepTimer:
    """Steps appended to ``items`` as dicts: name, started_at, duration_s, ok, detail."""

    def __init__(
        self,
        items: list[Step],
        ref_mono: float,
        ref_utc: datetime,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        """:param on_done: called with the name of each step that completed (the drill's
        write-ahead record notes it), after its duration was taken."""
        self.items = items
        self.ref_mono, self.ref_utc = ref_mono, ref_utc
        self.on_done = on_done

    def add(self, name: str, start: float, duration: float, ok: bool, detail: str) -> None:
        at = self.ref_utc + timedelta(seconds=start - self.ref_mono)
        self.items.append(
            {
                "name": name,
                "started_at": iso(at),
                "duration_s": round(max(duration, 0.0), 4),
                "ok": ok,
                "detail": detail,
            }
        )
        if ok and self.on_done is not None:
            self.on_done(name)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        out = {"detail": ""}
        start = time.monotonic()
        try:
            yield out
        except BaseException as exc:
            self.add(name, start, time.monotonic() - start, False, out["detail"] or str(exc))
            raise
        self.add(name, start, time.monotonic() - start, True, out["detail"])


__all__ = ["StepTimer"]
