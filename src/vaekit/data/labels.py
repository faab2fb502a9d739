"""Class labels: the data's own, numbered 0..K-1 for training, and those given to a run afterwards.

A data set's labels are integers (bools as 0 and 1) or names (text, also in an object array, a pandas Series of
text, category or string dtype); text is a name even where it reads as a number ("01" and "1" are two classes; a
file's reader, CSV or .npz, reads text labels that are all numbers as numbers), and text mixed with numbers is
refused. Training numbers them 0..K-1 (``encode_labels``), keeping names and numbers other than 0..K-1 as the
class names; other data's labels, read from files, are numbered by those names (``number_labels``): a file's numbers
where the classes are names are refused, not read as label numbers (save Fashion-MNIST's, its IDX files' numbers).

Labels given to a run after training follow one rule (``label_numbers``): a run's methods' and ``evaluate``'s
items': integers (ints, arrays, tensors) are label numbers 0..K-1, as ``load_dataset().y``, ``iwae_bound`` and ONNX
take them; text is a class name, read by its name in the classes (spaces stripped). A run that records no class
names names its classes "0".."K-1". ``fit``'s val_data is numbered as its data (``number_labels``): text by the
data's class names, integers by their numbers where the data's classes are numbers (labels 1..10 as 0..9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import Tensor
from torch.utils.data import DataLoader

from vaekit.data.containers import split_item
from vaekit.errors import VaekitError


def plain_labels(y: object, where: str, key: str | None = None) -> np.ndarray:
    """Labels (N,) or (N, 1) (an array, a tensor, a list, a pandas Series) as a 1-D numpy array; object values
    (text in a Series) as text when each is a str, as integers when each is one (bools as 0 and 1). Text mixed
    with numbers, a float among objects, or another value (None, NaN) is refused in one line naming its item
    (``key``: the setting named)."""
    if isinstance(y, (list, tuple)):
        listed = np.asarray(y)
        if listed.dtype.kind == "U" and not all(isinstance(v, str) for v in y):  # numpy turns ['4', 2] into names
            _kinds(np.asarray(y, dtype=object).ravel(), where, key)
        y = listed
    y = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise VaekitError(f"{where}: labels must be 1-D, got shape {tuple(y.shape)}", key=key)
    if y.dtype.kind != "O":  # numbers, or text (U, S): no pass over the items
        return y
    text = _kinds(y, where, key)
    if text:
        return y.astype(str)
    try:
        return y.astype(np.int64)
    except OverflowError:  # 2**70: no label number, one line rather than numpy's OverflowError (a 500 in the API)
        big = next(i for i, v in enumerate(y) if not -(2**63) <= int(v) < 2**63)
        raise VaekitError(
            f"{where}: item {big}'s label {int(y[big])} is no label number (beyond int64)", key=key
        ) from None


def _kinds(values: Sequence[object] | np.ndarray, where: str, key: str | None) -> bool:
    """Whether object labels ``values`` (N,) are text (else integers), in one pass: text mixed with numbers
    (``refuse_mixed``), a float, or another value (None, NaN) is refused in one line naming its item."""
    first: dict[str, int] = {}
    for i, v in enumerate(values):
        kind = (
            "text"
            if isinstance(v, str)
            else "whole"
            if isinstance(v, (int, np.integer, np.bool_))
            else "float"
            if _is_number(v)
            else "bad"
        )
        first.setdefault(kind, i)
    if "text" in first and ("whole" in first or "float" in first):
        refuse_mixed(values, where, key)
    if "bad" in first:
        bad = first["bad"]
        why = f"item {bad}'s label is {values[bad]!r}, neither a class name (text) nor a number"
        raise VaekitError(f"{where}: {why}", key=key)
    if "float" in first:  # np.array([1.0, 2.0], dtype=object): which class 1.0 is is not for vaekit to guess
        i = first["float"]
        raise VaekitError(
            f"{where}: item {i}'s label is {values[i]!r}, a float: labels are integers (label numbers) or text "
            "(class names)",
            key=key,
        )
    return "text" in first


def refuse_mixed(values: Sequence[object] | np.ndarray, where: str, key: str | None = None) -> None:
    """One line where labels ``values`` (N,) mix text and numbers (['4', 2]: class "4" and label 2, or "2"?);
    None and NaN are neither, for the caller to refuse."""
    text = next((i for i, v in enumerate(values) if isinstance(v, str)), None)
    number = next((i for i, v in enumerate(values) if _is_number(v)), None)
    if text is not None and number is not None:
        raise VaekitError(
            f"{where}: text (item {text}: {_plain(values[text])!r}) mixed with numbers (item {number}: "
            f"{_plain(values[number])!r}): "
            "give every label as a class name (text) or every one as a label number",
            key=key,
        )


def _plain(v: object) -> object:
    """A numpy scalar as its Python value, for a message ('4', not np.str_('4'))."""
    return v.item() if isinstance(v, np.generic) else v


def _is_number(v: object) -> bool:
    """Whether ``v`` is a finite Python or numpy number (bools count as 0 and 1)."""
    if isinstance(v, (int, np.integer, np.bool_)):
        return True
    return isinstance(v, (float, np.floating)) and bool(np.isfinite(v))


def label_number(name: str, classes: list[str] | None) -> int | None:
    """The label of the class named ``name`` (spaces stripped) in ``classes`` (label 0 first), else None; where no
    names are recorded, classes are named by their numbers ("0", "1", ...). A number is no name of another class."""
    name = name.strip()
    if classes:
        return classes.index(name) if name in classes else None
    return int(name) if name.isascii() and name.isdigit() and str(int(name)) == name else None


def encode_labels(y: np.ndarray, where: str, num_classes: int | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Labels (N,) -> (N,) int64; names are returned when values had to be renumbered 0..K-1: names, and numbers
    other than 0..K-1 (1, 2, 3 or 10, 20, 30 name three classes, not 4 or 31). ``num_classes``: the model's, which
    fixes the class numbers: numbers are kept as they are (one outside 0..num_classes-1 is refused), and names
    renumbered 0..K-1 must be at most that many."""
    y = plain_labels(y, where)
    if y.dtype.kind in "US":  # names, even "01" and "1e1" (a CSV file's numbers are read as numbers by its reader)
        values, index = np.unique(np.char.strip(y.astype(str)), return_inverse=True)
        if num_classes and len(values) > num_classes:
            raise VaekitError(f"{where}: the labels name {len(values)} classes; the model has {num_classes}")
        return index.reshape(-1).astype(np.int64), _named([str(v) for v in values], num_classes or 0)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise VaekitError(f"{where} labels: contains {int((~np.isfinite(y)).sum())} NaN or infinite values")
        if not np.array_equal(y, np.round(y)):
            bad = y[y != np.round(y)][0]
            raise VaekitError(f"{where}: labels must be whole numbers or names, found {bad}")
    elif y.dtype.kind not in "biu":
        raise VaekitError(f"{where}: labels of dtype {y.dtype} are not class numbers or names")
    y = y.astype(np.int64)
    values, index = np.unique(y, return_inverse=True)
    if num_classes:  # the model fixes the class numbers: a number outside them is refused, not renumbered
        bad = values[(values < 0) | (values >= num_classes)]
        if len(bad):  # names are numbered 0..K-1 where the labels hold at most the model's classes
            how = f"give the labels as names (y.astype(str)) to have them numbered 0..{num_classes - 1} in sorted order"
            if len(values) > num_classes:
                how = f"the labels hold {len(values)} distinct values, more than the model's {num_classes} classes"
            raise VaekitError(f"{where}: label {bad[-1]} is outside the model's classes 0..{num_classes - 1}: {how}")
        return y, None
    if y.size and not np.array_equal(values, np.arange(len(values))):  # negative, from 1, with gaps: renumbered
        return index.reshape(-1).astype(np.int64), [str(v) for v in values]  # (one-hot codes need 0..K-1)
    return y, None


def _named(names: list[str], k: int) -> list[str]:
    """A model's ``k`` class names, label 0 first: ``names`` (at most k, sorted) for the first, the rest named by
    their numbers ("3".."9" after three names), as a run without names names its classes; a number that is
    already a name is "class N"."""
    taken = set(names)
    return names + [str(i) if str(i) not in taken else f"class {i}" for i in range(len(names), k)]


def number_labels(y: np.ndarray, where: str, classes: list[str] | None) -> np.ndarray:
    """A data set's labels (N,) -> (N,) int64 numbered as training numbered them: text by its name in ``classes``
    (label 0 first), numbers by their text where classes are named by numbers (labels 1..10 renumbered 0..9), else
    as label numbers; without names, numbers as they are. A label that is none of the classes is one line. A
    file's labels come as text (``evaluation.outputs.read_names``): its 0..9 name none of classes "zero".."nine"."""
    y = plain_labels(y, where)
    codes, names = encode_labels(y, where)  # checks the shape and the values
    if not classes:
        bad = [n for n in names or [] if not n.isdigit()]  # names, or negative numbers training never saw
        if bad:
            raise VaekitError(
                f"{where}: label {bad[0]!r} is no class number, and no class names are recorded to read it by"
            )
        return codes if names is None else np.asarray([int(n) for n in names], dtype=np.int64)[codes]
    if y.dtype.kind not in "US" and not any(c.lstrip("-").isdigit() for c in classes):  # no name is a number
        given = y.astype(np.int64)  # label numbers: a run's labels given in Python (a file's come as text)
        outside = given[(given < 0) | (given >= len(classes))]
        if len(outside):
            raise VaekitError(
                f"{where}: label {outside[0]} is none of the label numbers 0..{len(classes) - 1} of the "
                f"training data's classes ({shown(classes)})"
            )
        return given
    text = np.char.strip(y.astype(str)) if y.dtype.kind in "US" else y.astype(np.int64).astype(str)
    values, index = np.unique(text, return_inverse=True)
    numbers = [label_number(str(v), classes) for v in values]
    if classes == _builtin_classes():  # Fashion-MNIST's names in label order: its IDX files' labels are numbers
        numbers = [n if n is not None else _number_of(str(v), len(classes)) for v, n in zip(values, numbers)]
    bad = [str(v) for v, k in zip(values, numbers) if k is None]
    if bad:
        numbered = bad[0].lstrip("-").isdigit() and not any(c.lstrip("-").isdigit() for c in classes)
        hint = ": the labels are numbers, the classes names: give the labels as those names" if numbered else ""
        raise VaekitError(f"{where}: label {bad[0]!r} is none of the training data's classes ({shown(classes)}){hint}")
    return np.asarray(numbers, dtype=np.int64)[index.reshape(-1)]


def shown(names: list[str]) -> str:
    """Class names for a message: the first ten, comma-separated."""
    return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")


def label_numbers(y: object, classes: list[str] | None, k: int | None) -> np.ndarray:
    """Labels given to a run (one or (N,)) -> (N,) int64 label numbers 0..K-1, ``k`` = K the run's classes and
    ``classes`` their names (label 0 first; None: "0".."K-1"): integers (bools as 0 and 1) as they are, text (spaces
    stripped) by its class name. What is neither, or names no class, is one line (key ``label``)."""
    if not isinstance(y, (list, tuple)):
        y = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y)
        y = y.reshape(1) if y.ndim == 0 else y  # one label: (1,)
    arr = plain_labels(y, "labels", "label")
    k = len(classes) if classes else k
    if arr.dtype.kind in "US":
        return _by_name(arr, classes, k)
    if arr.dtype.kind == "f":
        odd = arr[~np.isfinite(arr) | (arr != np.round(arr))]  # 1.5 is no class (nor NaN)
        if len(odd):
            raise _refused(f"label {odd[0].item()!r}: labels are whole numbers (label numbers) or class names")
    elif arr.dtype.kind not in "biu":
        raise _refused(f"labels of dtype {arr.dtype} are neither label numbers nor class names")
    lo, hi = (int(arr.min().item()), int(arr.max().item())) if len(arr) else (0, 0)  # before int64 (2**63 wraps)
    if lo < 0 or (k and hi >= k):
        bad = lo if lo < 0 else hi
        if not k:
            raise _refused(f"label {bad} is no class number (label numbers count from 0)")
        named = f" for its classes {shown(classes)} in turn; give a class name as text" if classes else ""
        raise _refused(f"label {bad}: this run's label numbers are 0..{k - 1}{named}")
    return arr.astype(np.int64)


def _refused(why: str) -> VaekitError:
    """The one line refusing labels given to a run (key ``label``)."""
    return VaekitError(why, key="label")


def _by_name(text: np.ndarray, classes: list[str] | None, k: int | None) -> np.ndarray:
    """Class names (N,) -> their label numbers (N,) in ``classes`` (None: "0".."K-1"); a name that is none of
    them is one line listing the classes (text that is a number: saying why it is not one of them)."""
    values, index = np.unique(np.char.strip(text.astype(str)), return_inverse=True)
    numbers = [label_number(str(v), classes or run_classes(None, k)) for v in values]
    bad = next((str(v) for v, n in zip(values, numbers) if n is None), None)
    if bad is None:
        return np.asarray(numbers, dtype=np.int64)[index.reshape(-1)]
    number = _number_of(bad, None)
    if classes:
        raise _refused(f"label {bad!r}: no class has this name; this run's classes are {shown(classes)}")
    if k and number is not None and not 0 <= number < k:  # "10" or "-1" of a run of 0..9
        raise _refused(f"label {bad!r} is out of range: this run's classes are 0..{k - 1}")
    if k and number is not None:  # "03", "+3": a class number, written otherwise than its name
        raise _refused(f"label {bad!r}: this run's classes are named 0..{k - 1}; write it as {number}")
    known = f": its classes are 0..{k - 1}" if k else ""
    raise _refused(f"label {bad!r}: expected a class number (this run records no class names{known})")


def _number_of(text: str, k: int | None) -> int | None:
    """The whole number ``text`` is (ASCII digits, with an optional sign), else None; with ``k``, only one of
    0..k-1 (a label number)."""
    body = text.strip()
    digits = body[1:] if body[:1] in "+-" else body
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(body)
    return number if k is None or 0 <= number < k else None


def _builtin_classes() -> list[str]:
    """The class names of the built-in set that names its classes (Fashion-MNIST's, label 0 first)."""
    from vaekit.data.builtin import FASHION_CLASSES  # here, not at the top: builtin imports this module's importer

    return FASHION_CLASSES


def given_as_names(data: object, x_key: str | None = None, y_key: str | None = None) -> bool:
    """Whether the labels of items given to a run are text, class names (else label numbers): an (x, y) pair's y,
    or the label of the first item of a Dataset (or a DataLoader's) that yields (x, y) or dicts with a label (its
    entries ``x_key`` and ``y_key``, as ``fit`` takes them)."""
    data = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], Mapping):
        y = data[1]  # an (x, y) pair
    else:
        try:
            y = split_item(data[0], 0, "data", x_key, y_key)[1]  # type: ignore[index]
        except (TypeError, IndexError, KeyError, ValueError):  # no item to read: the reading says why
            return False
    if y is None or isinstance(y, Tensor):
        return False
    arr = np.asarray(y)
    return arr.dtype.kind in "US" or (arr.dtype.kind == "O" and any(isinstance(v, str) for v in arr.ravel()))


def run_classes(classes: list[str] | None, k: int | None) -> list[str]:
    """A run's class names, label 0 first: ``classes``, else its label numbers as text, "0".."K-1" (``k`` = K)."""
    return list(classes) if classes else [str(i) for i in range(k or 0)]
