"""Items a verb wrote (samples, reconstructions): the file, then the line that says what it holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..io import printable

if TYPE_CHECKING:
    from torch import Tensor

    from ..runs import Run


def written(
    run: Run,
    x: Tensor,
    out: str,
    save: Callable,
    what: str,
    per_class: int | None = None,
    of: int | None = None,
    flag: str = "--n",
) -> None:
    """Write items x (N, *shape) to ``out`` (.npy, or a .png by ``save(x, path)``, stamped with the weights'
    digest) and say so (the first N ``of`` how many, where ``flag`` cut them; of a class grid, ``per_class`` items of
    each class in turn, what ``flag`` ``of`` made of them); a picture showing only some of them, and the class of
    each row of a class grid, in a line of their own."""
    from ..data.photos import note
    from ..viz.plots import grid_head, save_array_or_png, stamped

    with stamped(run.digest):
        save_array_or_png(x, out, save)
    cut = f" ({len(x)} of {of} items: {flag} sets how many)" if of else ""
    if per_class and of:  # a class grid: what flag's number made of it
        classes = len(x) // per_class
        least = ", at least 1" if of < classes else ""
        cut = f" ({per_class} per class of {classes}: {flag} {of} // {classes}{least})" if of != len(x) else ""
    print(f"{len(x)} {what if len(x) != 1 else what[:-1]} written to {printable(out)}{cut}")  # "1 sample"
    png = Path(out).suffix.lower() == ".png" and x.dim() == 4  # a grid of images, not a table's scatter
    shown, nrow = grid_head(x, per_class) if png else (x, per_class)
    if len(shown) < len(x):
        some = f"the first {nrow} of each class's {per_class}" if per_class else f"the first {len(shown)}"
        note(f"{printable(out)} shows {some} of the {len(x)} {what}; a .npy --out holds them all")
    if per_class is not None:
        names = run.classes or [str(k) for k in range(run.config.model.num_classes)]
        order = "rows, top to bottom" if png else f"items in class order, {per_class} of each"
        print(f"{order}: {printable(', '.join(names[: len(shown) // (nrow or 1)]))}")  # classes.json's: escaped
