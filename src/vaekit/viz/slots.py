"""The slots of a table's items in pictures: their names from a table's schema, and the colour, line and legend
entry each slot (or, past SLOTS_NAMED, each column) gets. ``plots`` re-exports them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..data.tables import TableSchema
    from .plots import Columns

SLOTS_NAMED = 20  # a table's slots, or past them its columns, that a picture colours and names one by one


def table_slots(table: TableSchema) -> list[tuple[str, str]]:
    """(column, name) of each slot of a table's item: numeric columns, their modes, categories, gap indicators."""
    from ..data.modes import mode_counts

    slots = [(c.name, c.name) for c in table.numeric]
    if table.coding == "modes":
        modes = zip(table.numeric, mode_counts(table.numeric))
        slots += [(c.name, f"{c.name}: mode {k + 1}") for c, n in modes for k in range(n)]
    slots += [(c.name, f"{c.name}={v}") for c in table.categorical for v in c.categories]
    slots += [(c.name, f"{c.name}: {v}") for c in table.gapped for v in ("filled", "gap")]
    return slots


def slot_names(table: TableSchema) -> tuple[str, ...]:
    """The name of each slot of a table's item (``table_slots``)."""
    return tuple(name for _, name in table_slots(table))


def slot_groups(columns: Columns, d: int) -> list[tuple[str, list[int]]] | None:
    """The slots of items (D = d) a picture draws in one colour under one name in its legend: each its own up to
    SLOTS_NAMED slots; past that, those of each column (a category's slots, a column's modes and gap indicator)
    where there are at most SLOTS_NAMED columns; else None (too many to tell apart: one colour, no legend)."""
    if d <= SLOTS_NAMED:
        return [(columns.name(j), [j]) for j in range(d)]
    groups: dict[str, list[int]] = {}
    for j in range(d):
        groups.setdefault(columns.column(j), []).append(j)
    return list(groups.items()) if len(groups) <= SLOTS_NAMED else None


def group_colour(i: int, n: int) -> str | tuple:
    """The colour of group i of n: matplotlib's ten (C0..C9) up to ten, else tab20's twenty."""
    return f"C{i}" if n <= 10 else _tab20(i)


def column_lines(ax, t: np.ndarray, values: np.ndarray, columns: Columns) -> None:
    """values (T, D) against t (T,): a line per slot, coloured and named by its ``slot_groups`` group (a group's
    first line carries its name into the legend), or all in one faint colour where there are too many."""
    groups = slot_groups(columns, values.shape[1])
    if groups is None:
        for j in range(values.shape[1]):
            ax.plot(t, values[:, j], lw=1, color="C0", label=columns.name(j), alpha=0.4)
        return
    for i, (name, slots) in enumerate(groups):
        for k, j in enumerate(slots):  # a label starting with _ is left out of the legend
            ax.plot(t, values[:, j], lw=1, color=group_colour(i, len(groups)), label=name if k == 0 else f"_{name}")


def column_legend(ax, columns: Columns, d: int) -> None:
    """A legend beside ``ax`` naming the ``slot_groups`` of items (D = d), where they have names to tell apart."""
    if slot_groups(columns, d) is not None:
        ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)


def _tab20(j: int) -> tuple:
    import matplotlib

    return matplotlib.colormaps["tab20"](j % 20)
