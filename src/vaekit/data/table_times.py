"""A table's date and time columns: the ISO 8601 cells read as times and the format a column of them has, days
since a column's first date (its ``origin``) to datetime64 and back, and times written in their column's format
(``table_schema.Column``: ``time``, its format, and ``origin``).

A column's format is strftime's, as table.json keeps it: ``%Y-%m`` (months: 2021-06, of years 1800 to 2199, not a
column of seasons such as 2011-12, whose "month" is the next year's last two digits), or ``%Y-%m-%d``, then ``" "``
or ``T`` and ``%H:%M``, ``:%S``, a fraction (``.%3f`` milliseconds, ``.%f`` microseconds, ``.%9f`` nanoseconds:
pandas' ``to_csv`` writes the digits its values need) and an offset written as it stands (``Z``, ``+02:00``). A
column mixing dates and times has the finer format (a date is its midnight); one whose times have several offsets
(a zone's summer time) is read in UTC, written with ``+00:00``; one offset throughout, read and written in that
offset.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Protocol

import numpy as np

from ..errors import VaekitError
from .images import note

DAY = 86400.0  # seconds in a day: a date or time column holds days (since its first date, ``Column.origin``)
ISO = re.compile(  # groups: the separator, the seconds, their fraction, the offset
    r"\d{4}-\d{2}-\d{2}(?:([ T])\d{2}:\d{2}(:\d{2}(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?"
)
OFFSET = re.compile(r"(?<=\d)(Z|[+-]\d{2}:\d{2})$")  # after a time: 10:00Z, 10:00:00+02:00 (not a date's -01)
ZONE = re.compile(r"(Z|[+-]\d{2}:\d{2})$")  # a format's offset, after its last field
MONTH = re.compile(r"(1[89]\d\d|2[01]\d\d)-(0[1-9]|1[0-2])")  # 2021-06: a month of the years 1800..2199
COMPACT = (18000101.0, 21991231.0)  # whole numbers that may be YYYYMMDD dates (20210315) of those years
TIME_CELLS = {  # cells of ISO dates and times that numpy reads (no offset): the CSV reader reads them as times
    "%Y-%m-%d[ T%H:%M[:%S[.%f]]]": re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"),
    "%Y-%m": MONTH,
}
UNITS = {"D": DAY, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}  # numpy's units, in seconds
FRACTIONS = {"ms": ".%3f", "us": ".%f", "ns": ".%9f"}  # up to 3, 6, 9 digits
READ = (
    "2021-07-06, 2021-07-06 13:45, 2021-07-06T13:45:10, 2021-07-06 13:45:10.250, each with Z or +02:00 after a time, "
    "and months, 2021-07"
)
LOOKS_TIMED = re.compile(  # 07/06/2021, 2021/7/6, 6.7.21, 13:45, Jul 6 (not 1.2.3.4): dates or times ISO aside
    r"(?<![\d.])(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](\d{4}|\d{2}))(?![\d.])|(?<!\d)\d{1,2}:\d{2}"
    r"|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d",
    re.IGNORECASE,
)


class Timed(Protocol):
    """A date or time column: its cells' format (``time_format``) and first date (days since 1970-01-01)."""

    time: str | None
    origin: float | None


def time_format(values: list[str]) -> str | None:
    """The format of cells ``values`` (distinct, filled) that are all ISO dates or times, the finest of theirs
    (the more common of " " and T; an offset shared by every time, "+00:00" where they differ); else None (a time
    with an offset beside one without is read as neither); "%Y-%m" where all are months (``months``)."""
    if months(values):
        return "%Y-%m"
    found = [ISO.fullmatch(v) for v in values]
    timed = [m for m in found if m and m.group(1)]
    if not values or not all(found) or not timed:
        return "%Y-%m-%d" if values and all(found) else None
    offsets = {m.group(4) for m in timed}
    if None in offsets and len(offsets) > 1:
        return None
    digits = max(len(m.group(3) or "") for m in timed)
    fraction = FRACTIONS["ns" if digits > 6 else "us" if digits > 3 else "ms"] if digits else ""
    seconds = ":%S" + fraction if any(m.group(2) for m in timed) else ""
    sep = Counter(m.group(1) for m in timed).most_common(1)[0][0]
    zone = "" if None in offsets else offsets.pop() if len(offsets) == 1 else "+00:00"
    return f"%Y-%m-%d{sep}%H:%M{seconds}{zone}"


def months(values: list[str]) -> bool:
    """Whether text cells ``values`` (distinct, filled) are all months (``MONTH``: 2021-06), and not seasons (2009-10,
    2010-11, 2011-12: each "month" the next year's last two digits)."""
    found = [MONTH.fullmatch(v) for v in values]
    if not values or not all(found):
        return False
    return not all(int(m.group(2)) == (int(m.group(1)) + 1) % 100 for m in found if m)


def compact_note(values: np.ndarray, name: str, where: str) -> None:
    """One note where a numeric column's values (N,) (distinct, sorted, float64), two or more, are all whole
    numbers that are valid YYYYMMDD dates of the years 1800..2199 (20210315): they are modelled as numbers (an
    8-digit id or amount is one), on which a month's last day and the next month's first lie 70 or more apart; said
    how to write them for them to be read as dates."""
    if len(values) < 2 or values[0] < COMPACT[0] or values[-1] > COMPACT[1] or np.any(values != np.round(values)):
        return
    v = values.astype(np.int64)
    year, month, day = v // 10000, v // 100 % 100, v % 100
    if np.any((month < 1) | (month > 12) | (day < 1)):
        return
    first = ((year - 1970) * 12 + month - 1).astype("M8[M]")  # each value's month
    if np.all(day <= ((first + 1).astype("M8[D]") - first.astype("M8[D]")).astype(np.int64)):  # its days
        note(
            f"{where}column {name!r} holds whole numbers that are all YYYYMMDD dates ({v[-1]}): modelled as numbers, "
            "on which 20210331 and 20210401 lie 70 apart, not a day; to have them read as dates, write them as ISO "
            f"dates (pandas: pd.to_datetime(df[{name!r}].astype(str), format='%Y%m%d').dt.strftime('%Y-%m-%d'))"
        )


def timed_refusal(name: str, cell: str, counted: str, where: str) -> VaekitError:
    """The refusal of a column of text cells too many to be categories (``counted``: how many, in how many rows)
    that look like dates or times (``looks_timed``; ``cell``: one) in a format not read as such: which formats are
    read, and how to write them so (a time of day alone: as a number)."""
    dated = re.search(r"\d[-/.]\d|[a-z]{3}", cell, re.IGNORECASE)  # 07/06, 6.7., Jul: a date, not 13:45 alone
    how = (
        f"pandas: pd.to_datetime(df[{name!r}], format='%m/%d/%Y').dt.strftime('%Y-%m-%d'), with their own format"
        if dated
        else f"a time of day alone as a number, minutes since midnight: pd.to_timedelta(df[{name!r}] + ':00') / "
        "pd.Timedelta(minutes=1) in pandas"
    )
    return VaekitError(
        f"{where}column {name!r} looks like dates or times ({cell}) in a format vaekit does not read as such: it "
        f"reads ISO 8601 ones ({READ}), one format to a column; write them so ({how}), or leave the column out: as "
        f"text, its {counted} are too many to be categories"
    )


def unit_of(fmt: str) -> str:
    """The numpy unit a format's times are written to (D, m, s, ms, us or ns)."""
    fraction = next((u for u, f in FRACTIONS.items() if f in fmt), None)
    return fraction or ("s" if "%S" in fmt else "m" if "%M" in fmt else "D" if "%d" in fmt else "M")


def offset_of(fmt: str) -> str:
    """The offset a format writes after its times ("" for none)."""
    m = ZONE.search(fmt)
    return m.group(0) if m else ""


def looks_timed(values: list[str]) -> bool:
    """Whether text cells ``values`` all look like dates or times (in a format ``time_format`` does not read)."""
    return bool(values) and all(LOOKS_TIMED.search(v) for v in values)


def days_since(cells: np.ndarray, fmt: str, origin: float | None) -> np.ndarray:
    """ISO date or time cells (N,) (stripped) -> days since ``origin`` (days since 1970-01-01; None: 0) float64,
    a cell's own offset turned into its format's (its clock); ValueError where a cell is no date or time."""
    shift, zone = np.zeros(len(cells)), _minutes(offset_of(fmt))  # minutes: from each cell's offset to the format's
    if zone or (np.char.endswith(cells, "Z") | (np.char.find(cells, "+") >= 0) | (np.char.count(cells, "-") > 2)).any():
        found = [OFFSET.search(v) for v in cells.tolist()]
        cells = np.asarray([v[: m.start()] if m else v for v, m in zip(cells.tolist(), found)])
        shift = np.array([zone - _minutes(m.group(1)) if m else 0.0 for m in found])
    unit = unit_of(fmt) if unit_of(fmt) in ("ms", "us", "ns") else "s"
    ticks = np.asarray(cells, dtype=f"datetime64[{unit}]").astype(np.int64)
    per_day = DAY / UNITS[unit]
    return (ticks - round((origin or 0.0) * per_day)) / per_day + shift / 1440.0


def _minutes(offset: str) -> float:
    """+02:00 -> 120, -05:30 -> -330, Z or "" -> 0."""
    if offset in ("", "Z"):
        return 0.0
    sign = -1.0 if offset[0] == "-" else 1.0
    return sign * (int(offset[1:3]) * 60 + int(offset[4:6]))


def as_times(days: np.ndarray, c: Timed) -> np.ndarray:
    """Days since ``c.origin`` (N,) (NaN: a gap) -> datetime64 in the unit of its format (NaT: a gap), on its
    format's clock (its offset's)."""
    days, unit = np.asarray(days, dtype=np.float64), unit_of(str(c.time))
    if unit == "M":  # months: the first of the month nearest each day
        day = np.rint(np.nan_to_num(days) + (c.origin or 0.0)).astype(np.int64).astype("M8[D]")
        first = day.astype("M8[M]")
        later = day - first.astype("M8[D]") >= (first + 1).astype("M8[D]") - day  # nearer the next month's first
        return np.where(np.isnan(days), np.array("NaT", dtype="M8[M]"), first + later.astype(np.int64))
    ticks = (np.nan_to_num(days) + (c.origin or 0.0)) * (DAY / UNITS[unit])
    times = np.rint(ticks).astype(np.int64).astype(f"datetime64[{unit}]")
    return np.where(np.isnan(days), np.array("NaT", dtype=times.dtype), times)


def days_of(times: np.ndarray, c: Timed) -> np.ndarray:
    """datetime64 (N,) (NaT: a gap) -> days since ``c.origin`` (N,) float64 (NaN: a gap)."""
    us = np.asarray(times).astype("datetime64[us]")
    days = (us.astype(np.int64) - round((c.origin or 0.0) * DAY * 1e6)) / (DAY * 1e6)
    return np.where(np.isnat(us), np.nan, days)


def time_text(times: np.ndarray, fmt: str) -> np.ndarray:
    """datetime64 (N,) -> their text in format ``fmt`` (N,) ("" for NaT)."""
    text = np.datetime_as_string(times, unit=unit_of(fmt), casting="unsafe")  # type: ignore[call-overload]
    text = np.char.add(np.char.replace(text, "T", " ") if "d %H" in fmt else text, offset_of(fmt))
    return np.where(np.isnat(times), "", text)
