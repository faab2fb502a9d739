"""The verbs that make and use a model: train, sample, reconstruct."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VaekitError
from ..io import printable
from .reading import SET, reading
from .train_flags import COUNTS, TABLE, flag_help, train_config, trained_again
from .verbs import arg, count, data_arg, given, not_data, positive, seed, split_arg, temperatures, unknown_arg, verb
from .writing import written

if TYPE_CHECKING:
    from torch import Tensor

    from ..config import TrainConfig
    from ..runs import Run


@verb(
    "train",
    "train a model and write its run folder",
    arg(
        "--config",
        metavar="FILE|PRESET",
        help="TOML file with [data], [model] and [train] tables, a run's config.json (to train it again; --out "
        "is then required), or a preset shipped with vaekit by name: demo, deep-mnist, beta-4, ... (an unknown "
        "name lists them)",
    ),
    arg("--set", action="append", default=[], metavar="KEY=VALUE", help="any setting, e.g. train.lr=3e-4"),
    arg(
        "--model",
        action="append",
        help="model family (vae, cvae, ladder, deep, gumbel, vq: see vaekit models) or network (mlp, conv); give "
        "one of each to set both: --model ladder --model conv",
    ),
    arg("--conditional", action="store_true", help="condition on the data's labels (family cvae)"),
    *(
        arg("--" + f.replace("_", "-"), dest=f, metavar=m, help=flag_help(f), type=counted if f in COUNTS else str)
        for f, (k, m, _) in TABLE.items()
        for counted in [partial(count, key=k)]  # the setting named in its line: train.epochs must be ...
    ),
    arg("--no-tensorboard", action="store_true", help="no TensorBoard event files (train.tensorboard false)"),
    arg("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint"),
    arg("--overwrite", action="store_true", help="replace the run already in --out"),
    arg(
        "--mlflow",
        metavar="URI",
        help="also log to MLflow at URI (e.g. sqlite:///mlflow.db): params, metrics, "
        "pictures (pip install 'vaekit[mlflow]')",
    ),
    arg(
        "--mlflow-experiment",
        metavar="NAME",
        help="the --mlflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else vaekit)",
    ),
    arg("--nproc", type=count, help="train with N processes (DDP) on this machine: runs torchrun itself"),
    quiet="no line per epoch (train.progress = false), ",
    examples=(
        "vaekit train --data digits --epochs 5 --out runs/d",
        "vaekit train --data mnist5k --model conv --latent-dim 16 --out runs/conv",
        "vaekit train --resume runs/d --epochs 10     # 5 epochs more",
    ),
)
def cmd_train(args: argparse.Namespace) -> int | None:
    cfg = train_config(args)  # before torch loads: a mistyped --set key is refused at once
    if args.mlflow_experiment is not None and not args.mlflow:
        raise VaekitError("--mlflow-experiment names the experiment of --mlflow URI: add --mlflow")
    from ..api import train
    from ..training import distributed

    if args.nproc is not None and not distributed.launched():
        if args.nproc < 1:
            raise VaekitError(f"--nproc must be >= 1, got {args.nproc}")
        from ..training.launcher import launch, precheck

        precheck(cfg, args.nproc, bool(args.resume), args.overwrite)  # once, not a line per worker
        if args.mlflow:  # its store opened (a new one created) once, before the workers: rank 0 then logs to it
            from ..viz.mlflow import MLflow

            MLflow(args.mlflow, args.mlflow_experiment)
        return launch(args.argv, args.nproc)
    callbacks = []
    if args.mlflow and distributed.is_main():  # the callbacks run on rank 0 only
        from ..viz.mlflow import MLflow

        callbacks.append(MLflow(args.mlflow, args.mlflow_experiment))
    before = resumed_at(args.resume)
    from ..training.describe import CUSTOM  # a run's networks from Python: built by model.json beside its config

    networks = Path(args.config).parent if trained_again(args) and cfg.model.net == CUSTOM else None
    run = train(cfg, resume=bool(args.resume), overwrite=args.overwrite, callbacks=callbacks, networks=networks)
    if distributed.is_main() and before is not None and len(run.history) == before.get("epoch"):  # none to do
        print(nothing_to_train(run.path, before, cfg.train))  # the epochs asked, not those config.json kept
    elif distributed.is_main():
        print(f"run written to {printable(run.path)}")  # a folder name may hold a newline: escaped
    return None


def resumed_at(resumed: str | None) -> dict | None:
    """The loop state (``epoch``, ``bad_epochs``...) of the checkpoint a resume starts from (None: none), not
    metrics.csv, whose row can be ahead of a checkpoint killed while written."""
    from ..training.state import recorded_state

    return recorded_state(Path(resumed)) if resumed else None


def nothing_to_train(path: Path | None, state: dict, t: TrainConfig) -> str:
    """The line of a resume that trained nothing: what stopped it (patience: early, or after every epoch its
    config.json, unchanged by such a resume, asked for; epochs) and the flag that trains on."""
    from ..config import load_json_config, sources
    from ..training.early_stop import without_better
    from ..training.state import at_patience

    done, bad = state.get("epoch", 0), state.get("bad_epochs", 0)
    epochs = f"{done} epoch{'' if done == 1 else 's'}"
    if at_patience(t, state.get("batch", 0), bad) and done < t.epochs:
        early = path is not None and done < load_json_config(path / sources.RUN_CONFIG).train.epochs  # its epochs then
        said = f"stopped early after {epochs} ({bad} without a better validation loss, train.patience {t.patience})"
        if not early:
            said = f"has had {without_better(bad, t.min_delta)} already, at least train.patience {t.patience}"
        more = f"pass --patience {bad + 1} or more, or --patience 0, to train on to train.epochs {t.epochs}"
        return f"nothing to train: {printable(path)} {said}; {more}"
    return (
        f"nothing to train: {printable(path)} has its {epochs} (train.epochs {t.epochs}); pass --epochs N with "
        f"N > {done} to extend it"
    )


@verb(
    "sample",
    "draw samples from a trained run",
    arg("run"),
    arg(
        "--n",
        type=count,
        default=64,
        help="samples (a conditional run without --label: a picture or .npy gets a row per class of max(1, N // "
        "classes), a table's .csv N rows of classes drawn as often as in the training split, by --seed)",
    ),
    arg(
        "--out",
        required=True,
        help=".png grid, .npy array, or .csv rows of a run on rows (N, D): a table's columns, an array's columns "
        "0..D-1 (then a conditional run's label). A .png, .npy or array's .csv holds the means of p(x|z), not "
        "draws: a Bernoulli's probabilities, values in [0, 1] for 8-bit data (discretized logistic), a Gaussian's "
        "means unclamped in a .npy (clamped to [0, 1] in a picture); a table's .csv rows are draws of p(x|z), in "
        "its columns' units and categories",
    ),
    arg(
        "--temperature",
        type=temperatures,
        default=1.0,
        help="scales the prior's spread: a number, or for a deep run one per resolution, top first, as many as "
        "model.deep_groups lists (the default's four: 1,0.8,0.8,0.8)",
    ),
    arg("--seed", type=count, default=0, help="seed of the draws (default 0)"),
    arg("--label", help="conditional runs: the class to draw, by its name (default: every class, as --n says)"),
    arg(
        "--sampler",
        help="draw codes from a post-hoc sampler fitted on the training codes: gmm, two-stage or flow, with default "
        "settings or those saved in RUN by vaekit.fit_sampler (refitted when the weights change; unconditional runs)",
    ),
    arg("--refit", action="store_true", help="fit the --sampler again even if RUN holds one"),
    examples=("vaekit sample runs/d --out samples.png", "vaekit sample runs/cvae --label 3 --n 16 --out threes.png"),
)
def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from ..runs import Run
    from ..samplers import draw_bound, fit_sampler, ones_as_one, sampler_for
    from ..samplers.table_draws import write_table
    from ..viz.plots import save_samples, table_columns

    n, _ = positive(args.n, "--n"), seed(args.seed)
    if (suffix := Path(args.out).suffix.lower()) not in (".png", ".npy", ".csv"):  # before a sampler's fit
        raise VaekitError(f"--out {args.out}: expected a .png, .npy or (a table run's rows) .csv file name")
    if args.refit and args.sampler is None:
        raise VaekitError("--refit fits a --sampler again, and none was given: add --sampler gmm, two-stage or flow")
    run = Run.load(args.run, args.device)
    not_data(args.out, None, run.config.data.spec)  # a table's .csv over its training file
    draw = partial(save_samples, columns=table_columns(run))  # a table's items: by column name, standardised
    torch.manual_seed(args.seed)
    if suffix == ".csv":
        no_table(run, args.out, ".npy or .png")  # rows (N, D) alone: an image run's items are refused
    if suffix == ".csv" and run.table is not None:  # a table's rows: its columns, categories, units and formats
        if args.sampler is not None:
            raise VaekitError("--sampler and a .csv --out cannot both take effect: table rows come from the prior")
        write_table(run, n, args.temperature, args.label, args.out, args.seed)  # drawn and written chunk by chunk
        print(f"{n} row{'s' * (n != 1)} written to {printable(args.out)}")
        return
    draw_bound(n, run.config.model.input_shape)  # n x item size: drawn in memory at once
    if args.sampler is not None:
        sampler_for(run, args.sampler)  # a conditional run is named as such, before its --label is refused
        args.temperature = ones_as_one(run.check_temperature(args.temperature))  # 1,1,1 of a deep run: 1
        run.sampler_alone(args.temperature, args.label)  # before minutes of fitting
        fit_sampler(run, args.sampler, refit=args.refit)
        torch.manual_seed(args.seed)
    if run.model.needs_labels and args.label is None and args.sampler is None:  # a grid with one row per class
        x = run.sample_classes(per_class := max(1, n // run.config.model.num_classes), args.temperature)
        save, of = partial(draw, nrow=per_class), n
    else:
        x, per_class, save, of = run.sample(n, args.temperature, args.label, args.sampler), None, draw, None
    if suffix == ".csv":  # an array run's rows (N, D)
        sampled_rows(run, x, args.out, per_class, args.label)
    else:
        written(run, x, args.out, save, "samples", per_class, of=of)


def sampled_rows(run: Run, x: Tensor, out: str, per_class: int | None, label: str | None) -> None:
    """Samples x (N, D) of a run on an array as a .csv (``write_sample_rows``), a conditional run's classes
    ``per_class`` of each in turn or the given ``label``; said in one line."""
    import numpy as np

    from ..evaluation.reconstructions import write_sample_rows

    k, y = run.config.model.num_classes, None
    if run.model.needs_labels:
        y = np.repeat(np.arange(k), per_class) if per_class else run.labels(label, len(x))
    write_sample_rows(run, x, out, y)
    each = f" ({per_class} of each class in turn)" if per_class else ""
    print(f"{len(x)} row{'s' * (len(x) != 1)} written to {printable(out)}{each}")


def no_table(run: Run, out: str, instead: str) -> None:
    """Refuse a .csv ``out`` of a run whose items are not rows (N, D): one line naming the file types to use
    ``instead``."""
    shape = tuple(run.config.model.input_shape)
    if len(shape) != 1:
        raise VaekitError(f"--out {out}: a .csv holds rows (N, D), this run's items are {shape}: use {instead}")


@verb(
    "reconstruct",
    "reconstruct data items through a trained run",
    arg("run"),
    data_arg("drawn"),
    split_arg(),
    arg("--limit", "--n", dest="limit", type=count, default=32, help="the first N items of the split (--n: the same)"),
    arg(
        "--out",
        required=True,
        help=".png (inputs above reconstructions), .npy array, .npz (reconstructions, index: each item's row in its "
        "file, files: a photo folder's, label: a conditional run's) or .csv rows of a table run (an index column, "
        "then its columns, categories at their most probable; a .npy table's columns 0..D-1)",
    ),
    unknown_arg(),
    SET,
    examples=("vaekit reconstruct runs/d --out recon.png", "vaekit reconstruct runs/d --data new.npy --out recon.npz"),
)
def cmd_reconstruct(args: argparse.Namespace) -> None:
    from ..data.table_cells import unknown_categories
    from ..evaluation.outputs import default_split, item_files, item_rows, prepared_split
    from ..evaluation.reconstructions import write_reconstructions
    from ..runs import Run
    from ..viz.plots import save_reconstructions, table_columns

    flag = given(args, "--limit", "--n")  # the alias the user typed, in the lines that name it
    n, suffix = positive(args.limit, flag), Path(args.out).suffix.lower()
    if suffix not in (".png", ".npy", ".npz", ".csv"):
        raise VaekitError(f"--out {args.out}: expected a .png, .npy, .npz or (a table's rows) .csv file name")
    run = reading(args, Run.load(args.run, args.device), args.data)
    not_data(args.out, args.data, run.config.data.spec)
    if suffix == ".csv":
        no_table(run, args.out, ".npz")
    split = args.split or default_split(run.config, args.data)
    with unknown_categories(args.unknown):  # labels as the run numbers them; the first N reconstructed
        s, _ = prepared_split(run, args.data, split)
    x, y = s.x[:n], None if s.y is None or not run.model.needs_labels else s.y[:n]  # a conditional run's alone
    x_rec = run.reconstruct(x, y)
    of = len(s) if len(x) < len(s) else None  # said: only the first N of the split's items
    if suffix in (".csv", ".npz"):  # which items they are beside them: rows, a photo folder's files
        files = item_files(run.config, args.data, None if split == "all" else item_rows(s))
        write_reconstructions(run, s, x_rec, y, args.out, files)
        unit = "rows" if len(run.config.model.input_shape) == 1 else "items"
        some = f"{len(x)} of {of} {unit} ({flag} sets how many)" if of else f"{len(x)} {unit}"
        print(f"{some} of the {split} split reconstructed -> {printable(args.out)}")
        return
    columns = table_columns(run)  # a table's items: by column name, standardised
    draw = partial(save_reconstructions, x, columns=columns)  # draw(x_rec, path): inputs above reconstructions
    written(run, x_rec, args.out, draw, "reconstructions", of=of, flag=flag)
    if suffix == ".npy" and Path(args.data or run.config.data.spec).is_dir():  # a photo folder's: which file is which
        print(f"{printable(args.out)} holds the reconstructions alone: a .npz --out holds each item's row and file too")
