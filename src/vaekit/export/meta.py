"""What an exported graph needs beside it: its inputs and outputs, the likelihood, the classes, the latent layout
and a table's schema, as ONNX metadata (``metadata_props``: one JSON value per key), read from what the run
stores (config.json, classes.json, table.json) so a graph is used without vaekit's run folder."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..config.specs import builtin_key
from ..core.contract import latent_size
from ..core.discretized import channels
from ..errors import VaekitError
from ..runs import Run

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
    "image": "images (C, H, W) scaled as the run's data was ({scaling}), grey levels as they are: never binarised, "
    "even for a run trained on binarised images",
    "vector": "items as vaekit read them from the array the run was trained on",
    "table": "a row coded as vaekit codes it (vaekit_table_layout): numbers in the table's units (mode codes under "
    "data.numeric=modes), then one-hot codes; a gap is NaN in, NaN out (vaekit fills gaps with vaekit_table's fill "
    "values first); the label column is left out",
}
SCALING = {  # data.builtin: what each built-in set's values are divided by (vaekit records no scale in a run)
    "digits": "scikit-learn's digits: grey levels 0..16 divided by 16",
    "mnist5k": "grey levels 0..255 divided by 255",
    "mnist": "grey levels 0..255 divided by 255",
    "fashion-mnist": "grey levels 0..255 divided by 255",
    "photos": "8-bit RGB values 0..255 divided by 255",
    "dsprites": "rendered as 0 and 1, not scaled",
}
AS_GIVEN = (
    "a file of the user's as vaekit read it: uint8 arrays and 8-bit image files divided by 255, uint16 arrays and "
    "16-bit image files by 65535, float arrays taken as given"
)


def x_what(kind: str, spec: str | None) -> str:
    """What the graph's input x holds for a run of ``kind`` trained on ``spec``: an image's scaling by its data."""
    key = None
    with contextlib.suppress(VaekitError):  # options on a set that takes none: a path, read as given
        key = builtin_key(spec) if spec else None
    return X[kind].format(scaling=SCALING[key.split(":")[0]] if key else AS_GIVEN)


def metadata(run: Run, part: str) -> dict[str, str]:
    """The graph of ``part``'s metadata: {key: JSON text} (the weights digest is added beside them)."""
    cfg, table = run.config, run.table
    shape, d = list(cfg.model.input_shape), latent_size(run.model)
    kind = "table" if table is not None else "image" if len(shape) == 3 else "vector"
    k = cfg.model.num_classes if run.model.needs_labels else 0
    named = "vaekit_classes names them" if run.classes else "as numbered in the data (vaekit_classes: null)"
    y = {"shape": ["batch"], "dtype": "int64", "what": f"class labels in 0..{k - 1}, {named}; "
         "outside that range every output of the graph is NaN"}  # fmt: skip
    x = {"shape": ["batch", *shape], "dtype": "float32", "what": x_what(kind, cfg.data.spec)}
    z = {"shape": ["batch", d], "dtype": "float32", "what": "latent codes, laid out as vaekit_latent says"}
    inputs = {"x": x} if part == "encoder" else {"z": z}
    outputs = (
        {"loc": "the mean of q(z|x) (batch, D)", "scale": "the standard deviation of q(z|x) (batch, D)"}
        if part == "encoder"
        else {"mean": mean_of(kind, cfg.model.likelihood, shape) + f" (batch, {', '.join(map(str, shape))})"}
    )
    props: dict[str, object] = {
        "vaekit_inputs": inputs | ({"y": y} if k else {}),
        "vaekit_outputs": outputs,
        "vaekit_data": {
            "kind": kind,
            "spec": shipped_spec(cfg.data.spec),
            "x": x["what"],
            "binarize": cfg.data.binarize,
        },
        "vaekit_likelihood": {"name": cfg.model.likelihood, "mean": mean_of(kind, cfg.model.likelihood, shape)},
        "vaekit_classes": run.classes,
        "vaekit_latent": latent(run),
    }
    if table is not None:
        props["vaekit_table"] = table.to_dict()  # table.json as the run stores it: fills, modes, loc and scale
        props["vaekit_table_layout"] = layout(table)
        props["vaekit_table_how"] = how(table.coding)
    return {key: json.dumps(value) for key, value in props.items()}


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
    """The latent code's layout: its size D, the levels (top first) and what a discrete code holds."""
    m = run.config.model
    d, levels = latent_size(run.model), list(run.model.latent_dims)
    out: dict[str, object] = {"D": d, "levels": levels, "family": m.family}
    if m.family == "vae":
        out["prior"] = m.prior
    if m.family == "gumbel":
        out["categories"] = m.categories
        out["what"] = (
            f"{d // m.categories} categorical variables of {m.categories} classes, (variables, categories) flattened: "
            f"each variable's {m.categories} slots are contiguous (slot i * {m.categories} + j: variable i, class j); "
            "loc holds the class probabilities, scale sqrt(p(1 - p)); the decoder expects one-hot codes"
        )
    elif m.family == "vq":
        out |= {"codebook_size": m.codebook_size, "code_dim": m.code_dim, "grid": list(getattr(run.model, "grid", []))}
        out["what"] = "codebook vectors (code_dim, h, w) flattened: loc is the nearest code vectors, scale 0"
    standard = m.prior == "standard" if m.family == "vae" else m.family == "cvae" and not m.learned_prior
    standard = standard and len(levels) == 1
    out["standard_normal_samples"] = standard  # decoding z ~ N(0, I) samples the model: no other prior is exported
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
    """How a row's cells become each kind of slot of ``vaekit_table_layout`` (data.table_schema, data.modes)."""
    number = "the cell's number in the table's units (a standardised run standardises it inside the graph)"
    if coding == "modes":
        number = (
            "the cell's mode code: with w, mu, sigma, alpha_scale the column's modes in vaekit_table (weight, mean, "
            "std, alpha_scale), k = argmax_k of log w_k - log sigma_k - ((v - mu_k) / sigma_k)^2 / 2 and code = "
            "clip((v - mu_k) / (4 sigma_k), -0.99, 0.99) / alpha_scale; back: v = 4 sigma_k clip(alpha_scale code, "
            "-1, 1) + mu_k, k the largest of the column's modes slots"
        )
    return {
        "number": number,
        "modes": "one-hot of the mode k chosen for the number, in the order of the column's modes in vaekit_table",
        "category": "one-hot of the cell's category, in the order of the column's categories in vaekit_table",
        "gap": "[filled, gap]: [1, 0] for a filled cell, [0, 1] for a gap (its slots coded at the column's fill)",
    }
