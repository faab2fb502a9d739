"""``vaekit disentangle RUN``: the disentanglement metrics of a run trained on dsprites, and a traversal figure
with one row per latent dimension, labelled with the factor that dimension captures best."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .errors import VaekitError

JSON_NAME, FIGURE_NAME = "disentangle.json", "disentangle-traversals.png"


def add_parsers(sub) -> None:
    """Add the ``disentangle`` sub-command to the ``vaekit`` sub-parsers."""
    d = sub.add_parser("disentangle", help="MIG, FactorVAE, beta-VAE, DCI, SAP of a dsprites run -> RUN/disentangle.json")
    d.add_argument("run", help="run folder (trained on a dsprites spec)")
    d.add_argument("--n", type=int, default=10000, help="sampled items for MIG, SAP and DCI (as many again / 2 to test)")
    d.add_argument("--votes", type=int, default=1000, help="training votes of the FactorVAE and beta-VAE scores "
                                                            "(half as many evaluate; dl uses 10000)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--range", type=float, default=2.5, help="traversal values from -R to R")
    d.add_argument("--out", help=f"traversal figure (default: RUN/{FIGURE_NAME})")
    d.add_argument("--json", action="store_true", help="print the metrics as JSON")


def dsprites_size(run) -> int:
    """The image size of the dsprites spec a run was trained on; other runs are refused in one line."""
    from .data.dsprites import parse_spec

    spec = run.config.data.spec.strip().lower()
    if spec.split(":")[0] != "dsprites":
        raise VaekitError(f"{run.path}: trained on {run.config.data.spec!r}; disentangle needs a run trained on dsprites")
    if run.model.needs_labels or len(run.model.latent_dims) != 1:
        raise VaekitError(f"{run.path}: disentangle scores flat, unconditional models (family vae)")
    size = parse_spec(spec)[0]
    if list(run.config.model.input_shape) != [1, size, size]:
        raise VaekitError(f"{run.path}: model input {run.config.model.input_shape} does not match {spec!r}")
    return size


def evaluate_run(run, n: int = 10000, votes: int = 1000, seed: int = 0) -> dict:
    """All metrics of a dsprites run, and per latent dim the factor it captures best (normalised MI) and the
    std of its posterior means over sampled items."""
    from .data.dsprites import DSprites
    from .disentangle import encode_factors, factor_of_each_code, scores

    data = DSprites(dsprites_size(run))
    torch.manual_seed(seed)
    encode = lambda x: run.encode(x).mean  # (B, 1, H, W) -> (B, D)
    metrics = scores(encode, data, n=n, n_test=max(2, n // 2), votes=(votes, max(1, votes // 2)), seed=seed)
    factors = data.sample_factors(min(n, 5000), np.random.default_rng(seed + 1))
    codes = encode_factors(encode, data, factors)
    best = factor_of_each_code(codes, factors, data.factor_names)
    dims = [{"dim": d, "factor": name, "normalised_mi": round(mi, 4), "std": round(float(codes[:, d].std()), 4)}
            for d, (name, mi) in enumerate(best)]
    return {"metrics": {k: round(float(v), 4) for k, v in metrics.items()}, "dims": dims,
            "settings": {"n": n, "votes": votes, "seed": seed, "spec": run.config.data.spec}}


def save_traversal_figure(run, dims: list[dict], path: Path, span: float = 2.5, steps: int = 9) -> Path:
    """One row per latent dim: z_d from -span to span (others 0), decoded; labelled with its best factor."""
    from .figures import traverse
    from .plots import _figure, _save_figure, image_grid

    values = torch.linspace(-span, span, steps)
    d = len(dims)
    xs = traverse(run, torch.zeros(d), list(range(d)), values)  # (D, steps, 1, H, W)
    fig, _ = _figure(1, width=steps * 0.9, height=d * 0.9 + 0.4)
    fig.clf()
    axes = fig.subplots(d, 1, squeeze=False)[:, 0]
    for ax, row, info in zip(axes, xs, dims):
        ax.imshow(image_grid(row, nrow=steps, pad=1), cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"z{info['dim']}: {info['factor']}\nMI {info['normalised_mi']:.2f} sd {info['std']:.2f}",
                      rotation=0, ha="right", va="center", fontsize=8)
    axes[0].set_title(f"latent traversals, z from {-span:g} to {span:g}", fontsize=9)
    return _save_figure(fig, path)


def cmd_disentangle(args: argparse.Namespace) -> None:
    from .io import atomic_write_json
    from .run import Run

    for flag, value in (("--n", args.n), ("--votes", args.votes)):
        if value < 10:
            raise VaekitError(f"{flag} must be at least 10, got {value}")
    if not 0 < args.range < float("inf"):
        raise VaekitError(f"--range must be a positive finite number, got {args.range}")
    out = Path(args.out) if args.out else Path(args.run) / FIGURE_NAME
    if out.suffix.lower() != ".png":
        raise VaekitError(f"--out {out}: expected a .png file name")
    run = Run.load(args.run)
    result = evaluate_run(run, args.n, args.votes, args.seed)
    save_traversal_figure(run, result["dims"], out, args.range)
    path = atomic_write_json(Path(args.run) / JSON_NAME, result)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("  ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()))
    print("  ".join(f"z{d['dim']}:{d['factor']}({d['normalised_mi']:.2f})" for d in result["dims"]))
    print(f"-> {path}, {out}")


COMMANDS = {"disentangle": cmd_disentangle}
