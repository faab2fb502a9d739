"""A table's date and time columns: the ISO formats read as times, and days since a column's first date (its
``origin``) to datetime64 and back (``table_schema.Column``: ``time``, its format, and ``origin``)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

DAY = 86400.0  # seconds in a day: a date or time column holds days (since its first date, ``Column.origin``)
TIMES = {  # the ISO date and time formats read as times (strftime), and the numpy unit they are given back in
    "%Y-%m-%d": "D",
    "%Y-%m-%d %H:%M": "m",
    "%Y-%m-%dT%H:%M": "m",
    "%Y-%m-%d %H:%M:%S": "s",
    "%Y-%m-%dT%H:%M:%S": "s",
}


class Timed(Protocol):
    """A date or time column: its cells' format (TIMES) and first date (days since 1970-01-01)."""

    time: str | None
    origin: float | None


def as_times(days: np.ndarray, c: Timed) -> np.ndarray:
    """Days since ``c.origin`` (N,) (NaN: a gap) -> datetime64 in the unit of its format (NaT: a gap)."""
    days, unit = np.asarray(days, dtype=np.float64) + (c.origin or 0.0), TIMES[str(c.time)]
    steps = np.rint(np.nan_to_num(days) * DAY / {"D": DAY, "m": 60.0, "s": 1.0}[unit]).astype(np.int64)
    times = steps.astype(f"datetime64[{unit}]")
    return np.where(np.isnan(days), np.array("NaT", dtype=times.dtype), times)


def days_of(times: np.ndarray, c: Timed) -> np.ndarray:
    """datetime64 (N,) (NaT: a gap) -> days since ``c.origin`` (N,) float64 (NaN: a gap)."""
    seconds = np.asarray(times).astype("datetime64[s]")
    return np.where(np.isnat(seconds), np.nan, seconds.astype(np.int64) / DAY - (c.origin or 0.0))
