"""MLflow's errors as the one line the MLflow callback says of them."""

from __future__ import annotations

import re


def clip(line: str, width: int = 300) -> str:
    """``line`` cut to about ``width`` characters at a word's end, with '...' where cut; a message of several
    sentences keeps its first and its last whole where they fit (what is wrong, then what to do: MLflow's
    refusal of a file store ends with the setting that allows one)."""
    if len(line) <= width:
        return line
    sentences = re.split(r"(?<=[.!?])\s+", line.strip())
    if len(sentences) > 1 and len(sentences[-1]) <= width * 2 // 3:
        return f"{clip(sentences[0], width - len(sentences[-1]) - 5)} ... {sentences[-1]}"
    cut = line[:width].rsplit(" ", 1)[0] if " " in line[:width] else line[:width]
    return cut.rstrip(" ,;:") + "..."


def cause(e: BaseException) -> str:
    """An MLflow error in a line: its first, with a request that got no answer said by why (connection refused,
    read timed out, a name not resolved) rather than urllib3's wrappers around it."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    found = re.search(r"\(Caused by \w+\((.*)\)\)\s*$", first)
    if found:  # "... Max retries exceeded with url: ... (Caused by NewConnectionError("HTTPConnection(...): why"))"
        first = "no answer: " + re.sub(r"^\w+\(host=.*?, port=\d+\): ", "", found.group(1).strip("'\""))
    return clip(first)
