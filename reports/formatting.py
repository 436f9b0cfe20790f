"""How figures read in the report: seconds with one decimal, plus minutes or hours when long.

One place, so the Markdown, the HTML and the tests agree on every figure's text.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

DASH = "—"


def _missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def human(seconds: float) -> str:
    """``245`` → ``4 min 5 s``; ``900`` → ``15 min``; ``14400`` → ``4 h``."""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return " ".join(parts + [f"{secs} s"] * bool(secs or not parts))


def seconds(value: Any, *, never: str = "not recovered") -> str:
    """A measured duration: ``42.3 s`` or ``245.0 s (4 min 5 s)``; inf reads ``never``."""
    if _missing(value):
        return DASH
    value = float(value)
    if math.isinf(value):
        return never
    text = f"{value:.1f} s"
    return text if value < 120 else f"{text} ({human(value)})"


def target(value: Any, *, none: str = "none") -> str:
    """A target: ``5 min``, ``4 h``, ``90 s`` (whole seconds as the catalog writes them)."""
    if _missing(value) or math.isinf(float(value)):
        return none
    value = float(value)
    return human(value) if value.is_integer() else f"{value:.1f} s"


def margin(value: Any) -> str:
    """Target minus measured: positive is headroom, negative a miss."""
    if _missing(value):
        return DASH
    value = float(value)
    return "never recovered" if math.isinf(value) else f"{value:+.1f} s"


def count(value: Any) -> str:
    return DASH if _missing(value) else str(int(value))


def number(value: Any, digits: int = 1) -> str:
    return DASH if _missing(value) else f"{float(value):.{digits}f}"


def percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def when(value: Any) -> str:
    """A UTC timestamp as ``2026-11-27 14:35:01 UTC``."""
    return DASH if _missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: Any) -> str:
    """A UTC timestamp as ``2026-11-27T14:35:01.123456Z`` (microseconds only when present)."""
    if _missing(value):
        return ""
    ts = pd.Timestamp(value).tz_convert("UTC")
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ts.microsecond:06d}Z" if ts.microsecond else f"{text}Z"


def ok(value: Any, *, yes: str = "met", no: str = "MISSED", na: str = "n/a") -> str:
    return na if _missing(value) else (yes if bool(value) else no)


__all__ = [
    "DASH",
    "human",
    "seconds",
    "target",
    "margin",
    "count",
    "number",
    "percent",
    "when",
    "iso",
    "ok",
]
