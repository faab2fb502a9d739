"""What an exported graph needs beside it: its inputs and outputs, the likelihood, the classes, the latent layout
and a table's schema, as ONNX metadata (``metadata_props``: one JSON value per key), read from what the run
stores (config.json, classes.json, table.json) so a graph is used without vaekit's run folder."""

from __future__ import annotations

import contextlib
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..config.specs import builtin_key
from ..core.contract import latent_size
from ..core.discretized import channels
from ..data.idx import idx_files
from ..data.item_arrays import IMAGE_SCALES
from ..data.npz import SPLIT_KEYS, X_KEYS, Y_KEYS, _headers
from ..errors import VaekitError
from ..runs import Run
from .graphs import mean_memory, output_names, use
from .place import weights

MEAN = {  # what the decoder's output `mean` is, per likelihood
    "bernoulli": "probabilities p(x = 1) per value, in [0, 1]",
    "cbernoulli": "the continuous Bernoulli's mean per value, in [0, 1]",
    "gaussian": "the Gaussian's mean (its loc) per value, in x's units",
    "discretized_logistic": "the mean of the discretized logistic mixture over the 256 grey levels, in [0, 1]",
}
COLOUR_MEAN = (  # core.discretized: a later channel's location moves with the earlier channels' values
    "the mean of the discretized logistic mixture over 256 levels per channel, in [0, 1]; each channel's mean is "
    "taken over the joint law of the channels before it (whose values shift its location), as run.reconstruct "
    "gives it"
)
X = {
    "image": "images (C, H, W) scaled as the run's data was ({scaling}), {levels} as they are: never binarised, "
    "even for a run trained on binarised images",
    "vector": "items as vaekit read them from the array the run was trained on ({scaling})",
    "table": "a row coded as vaekit codes it (vaekit_table_layout, vaekit_table_how): numbers in the table's units "
    "(mode codes under data.numeric=modes), then one-hot codes; a gap is NaN in, NaN out (vaekit fills gaps with "
    "vaekit_table's fill values first); the label column is left out",
}
SCALING = {  # data.builtin: each built-in set's dtype, divisor and words (vaekit records no scale in a run)
    "digits": ("float64", 16, "scikit-learn's digits: grey levels 0..16 divided by 16"),
    "mnist5k": ("uint8", 255, "grey levels 0..255 divided by 255"),
    "mnist": ("uint8", 255, "grey levels 0..255 divided by 255"),
    "fashion-mnist": ("uint8", 255, "grey levels 0..255 divided by 255"),
    "photos": ("uint8", 255, "8-bit RGB values 0..255 divided by 255"),
    "dsprites": ("uint8", None, "rendered as 0 and 1, not scaled"),
}
AS_GIVEN = (
    "a file of the user's as vaekit read it: uint8 arrays and 8-bit image files divided by 255, uint16 arrays and "
    "16-bit image files by 65535, float arrays taken as given"
)
PHOTOS = (
    "each image file turned upright by its EXIF orientation (a JPEG decoded at the smallest draft scale that still "
    "covers the size), converted to {mode} (alpha dropped), {resize}, then its 8-bit values divided by 255{deep}"
)
DEEP = " (a grey folder whose every image has 16 bits or more: kept at 16 bits, divided by 65535)"
RESIZE = (
    "cropped to the largest centred box of the size's aspect ratio (crop center; crop none: the whole image, which "
    "must have that ratio) and resized to {h} x {w} with Pillow's Image.resize(..., Image.Resampling.LANCZOS, "
    "box=that box, reducing_gap=3.0)"
)


def x_what(kind: str, spec: str | None, c: int = 1, scaled: str | None = None) -> str:
    """What the graph's input x holds for a run of ``kind`` trained on ``spec``: an image's scaling by its data
    (``scaled``: the words ``scaling`` gives, else the built-in set's or the rule for files), its values by its
    channels ``c``."""
    if scaled is None:
        key = None
        with contextlib.suppress(VaekitError):  # options on a set that takes none: a path, read as given
            key = builtin_key(spec) if spec else None
        scaled = SCALING[key.split(":")[0]][2] if key else AS_GIVEN
    levels = {1: "grey levels", 3: "RGB values channel by channel"}.get(c, f"the {c} channels' values")
    return X[kind].format(scaling=scaled, levels=levels)


def scaling(cfg) -> dict[str, Any]:
    """What the run's data values went through on their way in: the dtype read, the divisor (None: as given) and
    in words; a photo folder's image settings (config.json's data.image_size, crop, mode) besides."""
    spec, shape = cfg.data.spec, list(cfg.model.input_shape)
    key = None
    with contextlib.suppress(VaekitError):
        key = builtin_key(spec) if spec else None
    if key:
        dtype, divisor, what = SCALING[key.split(":")[0]]
        return {"dtype": dtype, "divided_by": divisor, "what": what}
    path = Path(spec).expanduser() if spec else None
    if path is None or not path.exists():
        where = "arrays handed to vaekit.fit" if path is None else f"{path.name} (not here to read its dtype)"
        return {"dtype": None, "divided_by": None, "what": f"{where}: {AS_GIVEN}"}
    if path.is_dir() and not idx_files(path):
        size = list(cfg.data.image_size or [])
        h, w = (size[0], size[-1]) if size else shape[1:]
        resize = RESIZE.format(h=h, w=w) if size else f"not resized (every image {h} x {w} as stored)"
        mode, deep = ("RGB", "") if shape[0] == 3 else ("L (grey)", DEEP)
        images = {"image_size": [h, w] if size else None, "crop": cfg.data.crop, "mode": cfg.data.mode}
        images["resampling"] = "Pillow LANCZOS, reducing_gap=3.0" if size else None
        what = PHOTOS.format(mode=mode, resize=resize, deep=deep)
        return {"dtype": "uint8" if shape[0] == 3 else None, "divided_by": 255 if shape[0] == 3 else None,
                "what": what, "images": images}  # fmt: skip
    arrays = x_arrays(path)
    if not arrays:  # a table, or IDX files
        return {"dtype": None, "divided_by": None, "what": f"{path.name}: {AS_GIVEN}"}
    said = [
        (name, dtype, IMAGE_SCALES.get(np.dtype(dtype), 1.0) if ndim in (3, 4) else 1.0) for name, dtype, ndim in arrays
    ]
    words = "; ".join(
        f"{name or path.name} {dtype}: " + (f"divided by {d:g}" if d != 1 else "taken as given")
        for name, dtype, d in said
    )
    one = said[0]
    return {"dtype": one[1], "divided_by": None if one[2] == 1 else one[2], "what": words}


def x_arrays(path: Path) -> list[tuple[str, str, int]]:
    """(member, dtype, dims) of the arrays a .npy or .npz file's items come from, from their headers alone."""
    if path.suffix.lower() not in (".npy", ".npz"):
        return []
    try:
        found = [(n, dtype, len(shape)) for n, shape, dtype, _ in _headers(path) if shape is not None]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return []
    picked = [a for a in found if a[0] in SPLIT_KEYS] or [a for a in found if a[0] in X_KEYS][:1]
    return picked or [a for a in found if a[0] not in Y_KEYS]


def metadata(run: Run, part: str) -> dict[str, str]:
    """The graph of ``part``'s metadata: {key: JSON text} (the weights digest is added beside them)."""
    cfg, table = run.config, run.table
    shape, d = list(cfg.model.input_shape), latent_size(run.model)
    kind = "table" if table is not None else "image" if len(shape) == 3 else "vector"
    k = cfg.model.num_classes if run.model.needs_labels else 0
    named = "vaekit_classes names them" if run.classes else "as numbered in the data (vaekit_classes: null)"
    y = {"shape": ["batch"], "dtype": "int64", "what": f"class labels in 0..{k - 1}, {named}; "
         "outside that range every output of the graph is NaN"}  # fmt: skip
    scaled = scaling(cfg) if kind != "table" else None
    what = x_what(kind, cfg.data.spec, channels(tuple(shape)), scaled["what"] if scaled else None)
    x = {"shape": ["batch", *shape], "dtype": "float32", "what": what}
    z = {"shape": ["batch", d], "dtype": "float32", "what": "latent codes, laid out as vaekit_latent says"}
    likelihood = cfg.model.likelihood
    said = {"name": likelihood, "mean": mean_of(kind, likelihood, shape)} | use(likelihood, kind == "table")
    if likelihood == "discretized_logistic" and (memory := mean_memory(tuple(shape), cfg.model.likelihood_components)):
        said["memory"] = memory
    props: dict[str, object] = {
        "vaekit_inputs": ({"x": x} if part == "encoder" else {"z": z}) | ({"y": y} if k else {}),
        "vaekit_outputs": outputs(part, kind, likelihood, shape),
        "vaekit_data": {"kind": kind, "spec": shipped_spec(cfg.data.spec), "x": what, "binarize": cfg.data.binarize}
        | ({"scaling": scaled} if scaled else {}),
        "vaekit_likelihood": said,
        "vaekit_classes": run.classes,
        "vaekit_labels": labels(k, run.classes),
        "vaekit_latent": latent(run),
        "vaekit_weights": weights(run),
    }
    if table is not None:
        props["vaekit_table"] = table.to_dict()  # table.json as the run stores it: fills, modes, loc and scale
        props["vaekit_table_layout"] = layout(table)
        props["vaekit_table_how"] = how(table.coding)
    return {key: json.dumps(value) for key, value in props.items()}


def outputs(part: str, kind: str, likelihood: str, shape: list[int]) -> dict[str, str]:
    """Each output of ``part``'s graph with what it holds and its shape."""
    if part == "encoder":
        return {"loc": "the mean of q(z|x) (batch, D)", "scale": "the standard deviation of q(z|x) (batch, D)"}
    dims = f" (batch, {', '.join(map(str, shape))})"
    said = {"mean": mean_of(kind, likelihood, shape) + dims}
    if "scale" in output_names(likelihood):
        said["scale"] = (
            "the standard deviation of p(x|z)'s Gaussian per number slot (in the table's units; of the mode code "
            "under data.numeric=modes), 0 in the one-hot slots" if kind == "table"
            else "the standard deviation of the Gaussian p(x|z) per value, in x's units"
        ) + dims + "; vaekit_likelihood says how to draw x and score log p(x|z) with it"  # fmt: skip
    return said


def labels(k: int, classes: list[str] | None) -> dict[str, object]:
    """Whether the graphs take labels y (``k`` classes, 0: none), and what ``vaekit_classes`` then names."""
    if k:
        return {"input": True, "what": f"the graphs take labels y in 0..{k - 1}; vaekit_classes names them"}
    what = "this model does not condition on labels: the graphs take no y"
    if classes:
        what += "; vaekit_classes names the classes of the data's label column (left out of x), not an input"
    return {"input": False, "what": what}


def shipped_spec(spec: str | None) -> str | None:
    """The data spec as the metadata ships it: a built-in name as it is, a file or folder by its name alone (the
    run stores its absolute path, which says where the data lived on the training machine)."""
    if not spec:
        return spec
    with contextlib.suppress(VaekitError):  # options on a set that takes none: no built-in, a path's name then
        if builtin_key(spec) is not None:
            return spec
    return Path(spec).name or spec


def mean_of(kind: str, likelihood: str, shape: list[int]) -> str:
    """What the decoder's ``mean`` holds for a run of ``kind`` and ``likelihood`` on items of ``shape``."""
    if likelihood == "discretized_logistic" and channels(tuple(shape)) > 1:
        return COLOUR_MEAN
    if kind == "table":
        return (
            "a row in x's layout: numbers (the Gaussian's mean in the table's units; mode codes under "
            "data.numeric=modes), probabilities in each one-hot code's slots (categories, modes, gap indicators)"
        )
    return MEAN.get(likelihood, f"the mean of the run's own p(x|z) ({likelihood})")


def latent(run: Run) -> dict:
    """The latent code's layout: its size D, the levels (top first), what a discrete code holds, the prior and
    whether codes the graph alone can draw sample the model."""
    m = run.config.model
    d, levels = latent_size(run.model), list(run.model.latent_dims)
    out: dict[str, object] = {"D": d, "levels": levels, "family": m.family}
    if m.family == "vae":
        out["prior"] = m.prior
    if m.family == "gumbel":
        n, k = d // m.categories, m.categories
        out |= {"categories": k, "prior": "uniform categorical"}
        out["what"] = (
            f"{n} categorical variables of {k} classes, (variables, categories) flattened: each variable's {k} slots "
            f"are contiguous (slot i * {k} + j: variable i, class j); loc holds the class probabilities, scale "
            "sqrt(p(1 - p)); the decoder takes any point of each variable's simplex: vaekit's reconstructions decode "
            "loc, the probabilities, as they are, its samples one-hot codes"
        )
        out["samples"] = (
            f"p(z) is uniform over the {k} classes of each of the {n} variables: draw each variable's class j "
            f"uniformly from 0..{k - 1}, put a 1 in slot i * {k} + j and 0 in the others, and decode (as run.sample "
            "does): the graph alone samples the model"
        )
    elif m.family == "vq":
        out |= {"codebook_size": m.codebook_size, "code_dim": m.code_dim, "grid": list(getattr(run.model, "grid", []))}
        out["what"] = "codebook vectors (code_dim, h, w) flattened: loc is the nearest code vectors, scale 0"
        fitted = bool(getattr(run.model, "fitted", False))
        out["prior"] = "pixelcnn" if fitted else "uniform codes"
        out["samples"] = (
            ("p(z) is a PixelCNN over the grid of code indices, fitted after training" if fitted else "p(z) is "
             f"uniform over the {m.codebook_size} codes at each cell of the grid") + ": neither the codebook nor "
            "the PixelCNN is exported, so the graph alone cannot sample the model; draw samples with vaekit"
        )  # fmt: skip
    standard = m.prior == "standard" if m.family == "vae" else m.family == "cvae" and not m.learned_prior
    standard = standard and len(levels) == 1
    out["standard_normal_samples"] = standard  # decoding z ~ N(0, I) samples the model: no other prior is exported
    if standard:
        out["samples"] = (
            "p(z) is N(0, I): decoding z ~ N(0, I) gives the means of p(x|z) at prior draws (vaekit's run.sample); "
            "drawing x from p(x|z) as vaekit_likelihood says (where exact) gives the model's samples (sample_table's)"
        )
    out.setdefault("samples", "p(z) is not exported: draw codes with vaekit (run.sample, or vaekit encode)")
    return out


def layout(table) -> list[dict]:
    """A table's item slots in order: each numeric column, then each one-hot code (modes, categories, gaps)."""
    slots: list[dict] = [{"column": c.name, "kind": "number"} for c in table.numeric]
    codes = table.categories
    names = (
        [("modes", c.name) for c in table.numeric if table.coding == "modes"]
        + [("category", c.name) for c in table.categorical]
        + [("gap", c.name) for c in table.gapped]
    )
    for (kind, name), size in zip(names, codes, strict=True):
        slots.append({"column": name, "kind": kind, "slots": size})
    return slots


def how(coding: str) -> dict[str, str]:
    """How a row's cells become each kind of slot of ``vaekit_table_layout`` (data.table_schema, data.modes,
    data.table_cells: dates, units and booleans as the file's text holds them)."""
    number = "the cell's number in the table's units (a standardised run standardises it inside the graph)"
    if coding == "modes":
        number = (
            "the cell's mode code: with w, mu, sigma, alpha_scale the column's modes in vaekit_table (weight, mean, "
            "std, alpha_scale), k = argmax_k of log w_k - log sigma_k - ((v - mu_k) / sigma_k)^2 / 2 and code = "
            "clip((v - mu_k) / (4 sigma_k), -0.99, 0.99) / alpha_scale; back: v = 4 sigma_k clip(alpha_scale code, "
            "-1, 1) + mu_k, k the largest of the column's modes slots"
        )
    number += (
        ". The cell's number v: a date or time column (vaekit_table's time: its format) holds days since the "
        "column's origin, v = (the cell's time - 1970-01-01T00:00) / 1 day - origin, on the clock of the format's "
        "offset; a column with a unit ('$', '%', or '' for thousands commas alone) has the unit and the thousands "
        "commas stripped, '$2,289' -> 2289 and '12%' -> 12; a boolean column with kind numeric reads true/false "
        "(any case) as 1/0"
    )
    return {
        "number": number,
        "modes": "one-hot of the mode k chosen for the number, in the order of the column's modes in vaekit_table",
        "category": "one-hot of the cell's category, in the order of the column's categories in vaekit_table; a "
        "boolean column (boolean: true) has the categories ['False', 'True'], which a file's true/false cells in "
        "any case, and 1/0, take: 'true' -> 'True', 'FALSE' -> 'False', '1' -> 'True'",
        "gap": "[filled, gap]: [1, 0] for a filled cell, [0, 1] for a gap (its slots coded at the column's fill)",
    }
