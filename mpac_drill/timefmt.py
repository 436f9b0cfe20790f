"""The one clock format of mpac-drill: UTC instants as ISO 8601 with a ``Z``.

Every stamp in result.json, the CSVs and the reports goes through :func:`iso`; intervals
are measured on the monotonic clock, never from these.

Example::

    iso(utc_now())  # "2026-11-30T03:12:45.123456Z"
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utc_now() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


@overload
def iso(dt: datetime, *, timespec: str = ...) -> str: ...
@overload
def iso(dt: None, *, timespec: str = ...) -> None: ...
def iso(dt: datetime | None, *, timespec: str = "microseconds") -> str | None:
    """``dt`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``None`` stays ``None``); a naive
    ``dt`` is taken as UTC."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


__all__ = ["iso", "utc_now"]
