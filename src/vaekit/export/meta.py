"""What an exported graph needs beside it: its inputs and outputs, the likelihood, the classes, the latent layout
and a table's schema, as ONNX metadata (``metadata_props``: one JSON value per key), read from what the run
stores (config.json, classes.json, table.json) so a graph is used without vaekit's run folder."""

from __future__ import annotations

import json

from ..core.contract import latent_size
from ..runs import Run

MEAN = {  # what the decoder's output `mean` is, per likelihood
    "bernoulli": "probabilities p(x = 1) per value, in [0, 1]",
    "cbernoulli": "the continuous Bernoulli's mean per value, in [0, 1]",
    "gaussian": "the Gaussian's mean (its loc) per value, in x's units",
    "discretized_logistic": "the mean of the discretized logistic mixture over the 256 grey levels, in [0, 1]",
}
X = {
    "image": "images (C, H, W) scaled to [0, 1] (uint8 / 255), grey levels as they are: never binarised, even for a "
    "run trained on binarised images",
    "vector": "items as vaekit read them from the array the run was trained on",
    "table": "a row coded as vaekit codes it (vaekit_table_layout): numbers in the table's units (mode codes under "
    "data.numeric=modes), then one-hot codes; a gap is NaN in, NaN out (vaekit fills gaps with vaekit_table's fill "
    "values first); the label column is left out",
}


def metadata(run: Run, part: str) -> dict[str, str]:
    """The graph of ``part``'s metadata: {key: JSON text} (the weights digest is added beside them)."""
    cfg, table = run.config, run.table
    shape, d = list(cfg.model.input_shape), latent_size(run.model)
    kind = "table" if table is not None else "image" if len(shape) == 3 else "vector"
    k = cfg.model.num_classes if run.model.needs_labels else 0
    y = {"shape": ["batch"], "dtype": "int64", "what": f"class labels in 0..{k - 1} (vaekit_classes names them); "
         "outside that range every output of the graph is NaN"}  # fmt: skip
    x = {"shape": ["batch", *shape], "dtype": "float32", "what": X[kind]}
    z = {"shape": ["batch", d], "dtype": "float32", "what": "latent codes, laid out as vaekit_latent says"}
    inputs = {"x": x} if part == "encoder" else {"z": z}
    outputs = (
        {"loc": "the mean of q(z|x) (batch, D)", "scale": "the standard deviation of q(z|x) (batch, D)"}
        if part == "encoder"
        else {"mean": mean_of(kind, cfg.model.likelihood) + f" (batch, {', '.join(map(str, shape))})"}
    )
    props: dict[str, object] = {
        "vaekit_inputs": inputs | ({"y": y} if k else {}),
        "vaekit_outputs": outputs,
        "vaekit_data": {"kind": kind, "spec": cfg.data.spec, "x": X[kind], "binarize": cfg.data.binarize},
        "vaekit_likelihood": {"name": cfg.model.likelihood, "mean": mean_of(kind, cfg.model.likelihood)},
        "vaekit_classes": run.classes,
        "vaekit_latent": latent(run),
    }
    if table is not None:
        props["vaekit_table"] = table.to_dict()  # table.json as the run stores it: fills, modes, loc and scale
        props["vaekit_table_layout"] = layout(table)
    return {key: json.dumps(value) for key, value in props.items()}


def mean_of(kind: str, likelihood: str) -> str:
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
            f"{d // m.categories} categorical variables of {m.categories} classes, flattened: loc holds the class "
            "probabilities, scale sqrt(p(1 - p)); the decoder expects one-hot codes"
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
