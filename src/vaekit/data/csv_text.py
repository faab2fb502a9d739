"""A CSV file's text as rows of cells: its encoding, compression, separator, decimal commas and header row."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
import zlib
from pathlib import Path

from vaekit.data.limits import usable_memory
from vaekit.data.photos import note
from vaekit.data.table_cells import MISSING
from vaekit.errors import VaekitError

TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")  # read as tables (gzipped ones unpacked as they are read)
DELIMITERS = (",", ";", "\t", "|")  # between a CSV file's cells: whichever splits its first lines alike
ENCODINGS = ("cp1252", "latin-1")  # tried in turn when a CSV file is not UTF-8
WIDE_BOMS = {  # byte-order marks of UTF-32 (first: its little-endian mark begins as UTF-16's) and UTF-16
    codecs.BOM_UTF32_LE: "utf-32",
    codecs.BOM_UTF32_BE: "utf-32",
    codecs.BOM_UTF16_LE: "utf-16",
    codecs.BOM_UTF16_BE: "utf-16",
}
# a decimal-comma number, its thousands grouped by points or not ("0,5", "1.234,5"), and a grouped whole number
DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+(?:[eE][+-]?\d+)?")
GROUPED = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")  # "1.513": 1513 in a file of decimal commas
THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+")  # "1,200": a thousands comma, or a decimal one
WHOLE = re.compile(r"[+-]?\d+")
SEP_LINE = re.compile(r"sep=(.)\r?\n?")  # Excel's first line naming the separator: sep=;
GZIP_CHUNK = 1 << 24  # bytes a gzipped table is unpacked by
BREAK = re.compile(r"\r\n|\r|\n")  # a line break inside a cell (a quoted field over lines)


def is_table_file(path: Path) -> bool:
    """Whether ``path`` names a table: .csv or .tsv, gzipped or not."""
    return path.name.lower().endswith(TABLE_SUFFIXES)


def is_number(cell: str) -> bool:
    """Whether a cell is a number as written: Python's float, without its digit separators (10_1 is a code)."""
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _text(path: Path) -> str:
    """A CSV file's text (unpacked where gzipped): UTF-16 or UTF-32 where a byte-order mark says so, UTF-8 (a
    byte-order mark dropped), else, as spreadsheets on Windows save it, Windows-1252, else Latin-1 (which reads
    any bytes), said in one note."""
    raw = _gunzip(path) if path.name.lower().endswith(".gz") else path.read_bytes()
    wide = next((name for bom, name in WIDE_BOMS.items() if raw.startswith(bom)), None)
    if wide is not None:  # Excel's "Unicode text": its byte-order mark says which (and is dropped)
        try:
            return raw.decode(wide)
        except UnicodeDecodeError as e:
            raise VaekitError(
                f"{path}: starts with a {wide.upper()} byte-order mark but is not {wide.upper()} ({e.reason} at byte "
                f"{e.start}); save it as UTF-8"
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        for encoding in ENCODINGS:
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                continue
            note(f"{path}: not UTF-8 (byte 0x{raw[e.start]:02x} on line {line}); read as {encoding}")
            return text
        raise  # pragma: no cover - Latin-1 decodes every byte


def _gunzip(path: Path) -> bytearray:
    """A gzipped table's bytes, unpacked as they are read: refused in one line once they pass a quarter of the
    memory free for them (``usable_memory``; a small file may unpack to gigabytes), or where the file is no gzip."""
    cap, out = usable_memory() // 4, bytearray()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(GZIP_CHUNK):
                if len(out) + len(chunk) > cap:
                    raise VaekitError(
                        f"{path}: unpacks to more than {cap / 1e9:,.2f} GB, a quarter of the memory free here; "
                        "convert the table to .npy, which is streamed"
                    )
                out += chunk
    except (OSError, EOFError, zlib.error) as e:
        raise VaekitError(f"{path}: cannot unpack the gzipped table ({e})") from None
    return out


def _delimiter(path: Path, head: list[str]) -> str:
    """The cells' separator: a tab for .tsv; ; when it splits the first non-blank lines ``head`` the same way and
    some cells are decimal-comma numbers; else the one of , ; tab | that splits them into the most columns, the
    same number on each line (ties: the earlier in , ; tab |)."""
    if path.name.lower().removesuffix(".gz").endswith(".tsv"):
        return "\t"
    semi = list(csv.reader(head, delimiter=";"))
    if len({len(r) for r in semi}) == 1 and len(semi[0]) > 1 and _commas(head, ";"):
        return ";"  # cells with decimal commas between semicolons: "9,30;3,29" is two numbers, not three cells
    best, most = ",", 1
    for d in DELIMITERS:
        widths = {len(row) for row in csv.reader(head, delimiter=d)}
        if len(widths) == 1 and (n := widths.pop()) > most:
            best, most = d, n
    return best


def _cell(cell: str, delimiter: str, commas: bool) -> str:
    """A cell, stripped; with ; between cells, a decimal comma ("0,5", "1.234,5") read as a point; in a file of
    decimal commas (``commas``), points group thousands ("1.513" is 1513)."""
    cell = cell.strip()
    if (delimiter == ";" and DECIMAL_COMMA.fullmatch(cell)) or (commas and GROUPED.fullmatch(cell)):
        return _point(cell)
    return cell


def _point(cell: str) -> str:
    return cell.replace(".", "").replace(",", ".", 1)


def _commas(head: list[str], delimiter: str) -> bool:
    """Whether the first lines ``head``, split by ``delimiter``, hold decimal-comma numbers (only with ;)."""
    rows = csv.reader(head, delimiter=delimiter)
    return delimiter == ";" and any(DECIMAL_COMMA.fullmatch(c.strip()) for r in rows for c in r)


def _decimal_columns(path: Path, rows: list[list[str]]) -> None:
    """Between tabs or bars, a column (below its first row, a header perhaps) of numbers whose decimal commas
    cannot be thousands commas (0,5; 12,34) is read as numbers, in place, said in one note."""
    width, found = max(len(r) for r in rows), []
    for j in range(width):
        cells = [r[j] for r in rows[1:] if j < len(r) and r[j].lower() not in MISSING]
        comma = [DECIMAL_COMMA.fullmatch(c) is not None for c in cells]
        if not any(c and not THOUSANDS.fullmatch(v) for c, v in zip(comma, cells)):
            continue
        if all(c or GROUPED.fullmatch(v) or WHOLE.fullmatch(v) for c, v in zip(comma, cells)):
            found.append(next(v for c, v in zip(comma, cells) if c))
            for r in rows:
                if j < len(r) and (DECIMAL_COMMA.fullmatch(r[j]) or GROUPED.fullmatch(r[j])):
                    r[j] = _point(r[j])
    if found:
        note(f"{path}: {len(found)} column(s) of numbers with decimal commas ({found[0]}) read as numbers")


def read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """The rows of a CSV file (cells split by ``_delimiter``, or by an Excel ``sep=`` first line) and their
    1-based line numbers; empty rows before the first and after the last filled one left out, those between kept
    (a row of gaps, its place counted)."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        text = _text(path)
        sep = SEP_LINE.match(text)
        f = io.StringIO(text[sep.end() :] if sep else text, newline="")
        head = [line for line in itertools.islice(f, 200) if line.strip()][:20]
        f.seek(0)
        delimiter = sep.group(1) if sep else _delimiter(path, head)
        commas = _commas(head, delimiter)
        reader, before = csv.reader(f, delimiter=delimiter), 0
        for row in reader:
            if reader.line_num - before > 1:  # a row over several lines: a quoted field holding a line break
                width = len(rows[0]) if rows else len(row)
                _spanning(path, row, before + 1 + bool(sep), reader.line_num + bool(sep), delimiter, width)
            before = reader.line_num
            rows.append([_cell(c, delimiter, commas) for c in row])
            lines.append(reader.line_num + bool(sep))
        _closed(path, text, delimiter, lines[-1] if lines else 0)
    except (OSError, csv.Error) as e:
        raise VaekitError(f"{path}: cannot read CSV file ({e})") from e
    except MemoryError:
        rows.clear()  # the cells read so far, freed before the line is said
        raise VaekitError(f"{path}: too big to read whole in the memory free here; convert it to .npy") from None
    filled = [i for i, r in enumerate(rows) if any(r)]
    if not filled:
        raise VaekitError(f"{path}: the CSV file is empty")
    rows, lines = rows[filled[0] : filled[-1] + 1], lines[filled[0] : filled[-1] + 1]
    if delimiter in "\t|":
        _decimal_columns(path, rows)
    return rows, lines


def _spanning(path: Path, row: list[str], start: int, end: int, delimiter: str, width: int) -> None:
    """Refuse, in one line, a row read from lines ``start``..``end`` whose quoted field holds a line that reads as
    a row of the table (``width`` cells): a stray quote (``"ab``) swallowing the rows after it into one cell. A
    quoted field holding text over lines (valid CSV) is kept."""
    rowlike = [any(line.count(delimiter) >= width - 1 > 0 for line in BREAK.split(c)[1:]) for c in row]
    breaks = [len(BREAK.findall(c)) for c in row]
    k = next((i for i, b in enumerate(rowlike) if b), None)
    if k is not None:
        opened = start + sum(breaks[:k])
        raise VaekitError(
            f"{path}: a quoted field opened on line {opened} runs to line {min(opened + breaks[k], end)}, taking "
            'the rows between as one cell; remove the stray quote (") or close it'
        )


def _closed(path: Path, text: str, delimiter: str, line: int) -> None:
    """Refuse, in one line, a last line (``line``) of ``text`` where a quoted field opens and the file ends."""
    end = len(text)
    while end and text[end - 1] in "\r\n":
        end -= 1
    try:
        list(csv.reader([text[max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1 : end]], strict=True))
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise VaekitError(
                f"{path}: a quoted field opened on line {line} runs to the end of the file, unclosed; remove the "
                'stray quote (") or close it'
            ) from None


def has_header(rows: list[list[str]], names: list[str] | None = None) -> bool:
    """A first row is a header if it is ``names`` (a run's columns, numbers or not), if a cell is text (not a
    gap) where the next row is numeric (or nothing follows), or if all its cells are text that no later row
    repeats in the same column (a table of categories only)."""
    first = rows[0]
    if names is not None and first == names:
        return True
    if len(rows) == 1:
        return not all(is_number(c) for c in first)
    second = rows[1]
    if any(not is_number(a) and a.lower() not in MISSING and is_number(b) for a, b in zip(first, second)):
        return True
    return not any(is_number(a) for a in first) and all(
        a not in {row[j] for row in rows[1:] if j < len(row)} for j, a in enumerate(first)
    )
