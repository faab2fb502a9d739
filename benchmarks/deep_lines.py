"""The sentences of benchmarks/deep.py's results (deep's NLL and bits/dim against the other models') and its
--rehead, which writes them anew from a written result's tables."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import common


def nll_line(spec: str, nlls: dict[str, float]) -> str:
    """How far deep's test NLL lies below the conv ladder's and the flat conv VAE's (``nlls``: model -> nats)."""
    ladder, flat = nlls["conv ladder VAE"] - nlls["deep"], nlls["flat conv VAE"] - nlls["deep"]
    return (
        f"{spec}: deep is {common.below(ladder, ' nats')} the conv ladder and {common.below(flat)} the flat conv VAE "
        "(targets: 5 and 8)."
    )


def floor_line(spec: str, n: int, floor: float, nlls: dict[str, float]) -> str:
    """Each model's NLL above the binarisation's own entropy ``floor`` (nats, over ``n`` test images), and the share of
    the flat conv VAE's excess that deep removes beside the share the target of 8 nats asks."""
    excess = {name: nats - floor for name, nats in nlls.items()}
    flat = excess["flat conv VAE"]
    share = lambda nats: f"{100 * nats / flat:.0f}%" if flat > 0 else "n/a"  # noqa: E731
    return (
        f"{spec}: the binarisation's own entropy, {floor:.2f} nats (each grey pixel's Bernoulli entropy summed, mean "
        f"over the {n} test images), bounds every model's expected NLL from below; above it: "
        + ", ".join(f"{name} {nats:.2f}" for name, nats in excess.items())
        + f". Deep removes {share(flat - excess['deep'])} of the flat conv VAE's excess; 8 nats would be {share(8)}."
    )


def bits_line(spec: str, found: dict[tuple[str, str], tuple[float, float]], flat: dict[str, float]) -> str:
    """deep's bits/dim on ``spec`` against the flat conv VAE's, each with its minutes of training (``found``:
    (spec, model) -> (bits/dim, minutes)), saying so when deep trained longer; bits.md's flat conv ``flat``."""
    (deep, dm), (ours, fm) = found[spec, "deep"], found[spec, "flat conv VAE"]
    pct = lambda base: common.below(100 * (1 - deep / base), "%", 1)  # noqa: E731
    page = f"; {pct(flat[spec])} bits.md's flat conv {flat[spec]}" if spec in flat else ""
    timed = dm is not None and fm is not None  # a result written before the table had minutes: none said
    longer = f"; deep trained {dm / fm:.1f}x as long as the flat conv VAE" if timed and dm > 1.1 * fm else ""
    after = (f" after {dm:g} minutes of training", f" after {fm:g} minutes") if timed else ("", "")
    return (
        f"{spec}: deep {deep} bits/dim{after[0]}, {pct(ours)} this run's flat conv VAE ({ours}{after[1]}){longer}"
        f"{page} (target: 10% below bits.md's)."
    )


def rehead(path: str, floor: Callable[[str, str, int], float] | None = None) -> None:
    """Recompute the NLL and bits/dim lines (and the headline, the first note) of a written result from the tables
    it holds (a result of some parts has some of them); no training. With ``floor`` (command, spec, n -> nats), each NLL
    table's floor line too, written after its NLL line where the result has none."""
    result, lines = json.loads(Path(path).read_text()), {}
    for t in result["tables"]:
        at = {c: i for i, c in enumerate(t["columns"])}
        if "bits/dim" in at:
            found = {
                (r[0], r[1]): (r[at["bits/dim"]], r[at["minutes"]] if "minutes" in at else None) for r in t["rows"]
            }
            lines |= {(spec, "bits"): bits_line(spec, found, flat_bits()) for spec, _ in found}
        elif "NLL (nats)" in at and ", dynamically binarised" in t["caption"]:
            spec = t["caption"].split(", dynamically binarised")[0]
            nlls = {r[at["model"]]: r[at["NLL (nats)"]] for r in t["rows"]}
            lines[spec, "nll"] = nll_line(spec, nlls)
            if floor:
                n = int(re.search(r"(\d+) test images", t["caption"])[1])
                lines[spec, "floor"] = floor_line(spec, n, floor(result["command"], spec, n), nlls)
    notes, has = [], {line_of(note) for note in result["notes"]}
    for note in result["notes"]:
        spec, kind = line_of(note)
        notes += [lines.get((spec, kind), note)]
        if kind == "nll" and (spec, "floor") in lines and (spec, "floor") not in has:
            notes += [lines[spec, "floor"]]
    if not lines:
        print(f"{path}: no NLL or bits/dim table: its headline and notes are left as they are")
    common.rewrite(path, headline=notes[0] if lines else result["headline"], notes=notes)


def flat_bits() -> dict[str, float]:
    """The flat conv VAE's discretized-logistic bits/dim per data set in docs/benchmarks/bits.md (its JSON)."""
    path = common.RESULTS / "bits.json"
    if not path.exists():
        return {}
    table = json.loads(path.read_text())["tables"][0]
    rows = [dict(zip(table["columns"], r)) for r in table["rows"]]  # by column name: bits.py owns the layout
    return {r["data"]: r["bits/dim"] for r in rows if r["likelihood"] == "discretized_logistic"}


def line_of(note: str) -> tuple[str, str]:
    """Which of deep's lines a note is: (its data set, 'nll', 'bits' or 'floor'), or ('', '') for another note."""
    spec, said, rest = note.partition(": ")
    kinds = {"nll": rest.startswith("deep is "), "bits": rest.startswith("deep ") and "bits/dim" in rest}
    kinds["floor"] = rest.startswith("the binarisation's own entropy")
    kind = next((k for k, yes in kinds.items() if yes), "")
    return (spec, kind) if said and kind else ("", "")
