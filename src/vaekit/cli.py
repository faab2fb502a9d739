"""The command line: parses, calls the library, turns bad input into one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import cli_apps, cli_disentangle, cli_eval, cli_models, cli_ship, distributed
from .errors import VaekitError
from .signals import Interrupted

# flag -> config key; every other setting is reachable with --set key=value
FLAGS = {
    "data": "data.spec", "binarize": "data.binarize", "data_dir": "data.data_dir", "limit": "data.limit",
    "likelihood": "model.likelihood", "latent_dim": "model.latent_dim", "hidden": "model.hidden",
    "channels": "model.channels", "beta": "train.beta", "epochs": "train.epochs",
    "batch_size": "train.batch_size", "lr": "train.lr", "seed": "train.seed", "device": "train.device",
    "warmup_epochs": "train.warmup_epochs", "free_bits": "train.free_bits", "patience": "train.patience",
    "latent_dims": "model.latent_dims", "precision": "train.precision", "out": "out",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits with 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise VaekitError(f"{self.prog}: {message}")


def build_parser() -> Parser:
    p = Parser(prog="vaekit", description="Variational autoencoders: train, sample, reconstruct.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a model and write its run folder")
    t.add_argument("--config", help="TOML file with [data], [model] and [train] tables")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any setting, e.g. train.lr=3e-4")
    t.add_argument("--model", help="network (mlp, conv) or model family (vae, cvae, ladder: see vaekit models)")
    t.add_argument("--conditional", action="store_true", help="condition on the data's labels (family cvae)")
    for flag in FLAGS:
        t.add_argument("--" + flag.replace("_", "-"), dest=flag)
    t.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--nproc", type=int, help="train with N processes (DDP) on this machine: runs torchrun itself")
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", required=True, help=".png grid or .npy array")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="conditional runs: the class to draw (default: a row per class)")
    r = sub.add_parser("reconstruct", help="reconstruct data items through a trained run")
    r.add_argument("run")
    r.add_argument("--data", help="data spec (default: the run's own data)")
    r.add_argument("--split", default="test", choices=["train", "val", "test"])
    r.add_argument("--n", type=int, default=32)
    r.add_argument("--out", required=True, help=".png (inputs above reconstructions) or .npy array")
    cli_eval.add_parsers(sub)  # evaluate, interpolate, traverse, latent-map, curves, report
    cli_ship.add_parsers(sub)  # export, explore
    cli_models.add_parsers(sub)  # models
    cli_apps.add_parsers(sub)  # encode, anomaly, anomaly-eval
    cli_disentangle.add_parsers(sub)  # disentangle
    return p


def train_config(args: argparse.Namespace):
    """defaults < --config TOML (or the resumed run's config.json) < flags < --set."""
    from .config import RunConfig, load_json_config, load_toml_config, set_value
    from .models import MODELS

    if args.resume:
        cfg = load_json_config(Path(args.resume) / "config.json")
        cfg.out = args.resume
    else:
        cfg = load_toml_config(args.config) if args.config else RunConfig()
    if args.model:
        set_value(cfg, "model.family" if args.model in MODELS else "model.net", args.model)
    if args.conditional:
        set_value(cfg, "model.family", "cvae")
    for flag, key in FLAGS.items():
        if getattr(args, flag) is not None:
            set_value(cfg, key, getattr(args, flag))
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise VaekitError(f"--set {item!r}: expected KEY=VALUE")
        set_value(cfg, key.strip(), value.strip())
    if args.quiet:
        cfg.train.progress = False
    return cfg


def cmd_train(args: argparse.Namespace) -> int | None:
    from .train import fit

    if args.nproc is not None and not distributed.launched():
        return distributed.launch(args.argv, args.nproc)
    run = fit(train_config(args), resume=bool(args.resume), overwrite=args.overwrite)
    if distributed.is_main():
        print(f"run written to {run}")
    return None


def _positive(n: int, flag: str) -> int:
    if n <= 0:
        raise VaekitError(f"{flag} must be > 0, got {n}")
    return n


def write_array_or_image(x, out: str, save_png) -> None:
    """Write (N, *shape) to ``out``: .npy via numpy, .png through ``save_png(x, path)``."""
    import io

    import numpy as np

    from .io import atomic_write_bytes

    suffix = Path(out).suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, x.numpy())
        atomic_write_bytes(out, buf.getvalue())
    elif suffix == ".png":
        save_png(x, out)
    else:
        raise VaekitError(f"--out {out}: expected a .png or .npy file name")


def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from .plots import save_samples
    from .run import Run

    n = _positive(args.n, "--n")
    if not 0 <= args.temperature < float("inf"):  # also refuses nan
        raise VaekitError(f"--temperature must be a finite number >= 0, got {args.temperature}")
    run = Run.load(args.run)
    torch.manual_seed(args.seed)
    if run.model.needs_labels and args.label is None:  # a grid with one row per class
        per_class = max(1, n // run.config.model.num_classes)
        x = run.sample_classes(per_class, args.temperature)
        write_array_or_image(x, args.out, lambda x, path: save_samples(x, path, nrow=per_class))
    else:
        x = run.sample(n, args.temperature, label=args.label)
        write_array_or_image(x, args.out, save_samples)
    print(f"{len(x)} samples written to {args.out}")


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from .plots import save_reconstructions
    from .run import Run, prepare_data

    n = _positive(args.n, "--n")
    run = Run.load(args.run)
    data, _ = prepare_data(run.config, args.data)
    split = getattr(data, args.split)
    x, y = split.x[:n], None if split.y is None else split.y[:n]
    if len(x) == 0:
        raise VaekitError(f"{data.name}: the {args.split} split is empty")
    x_rec = run.reconstruct(x, y)
    write_array_or_image(x_rec, args.out, lambda xr, path: save_reconstructions(x, xr, path))
    print(f"{len(x)} reconstructions written to {args.out}")


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "reconstruct": cmd_reconstruct}
COMMANDS.update(cli_eval.COMMANDS)
COMMANDS.update(cli_ship.COMMANDS)
COMMANDS.update(cli_models.COMMANDS)
COMMANDS.update(cli_apps.COMMANDS)
COMMANDS.update(cli_disentangle.COMMANDS)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaekit`` console script; returns the exit code (a torchrun worker exits with it)."""
    code = run_command(argv)
    if distributed.launched():
        exit_now(code)
    return code


def run_command(argv: list[str] | None) -> int:
    """Parse ``argv`` and run its command; errors become one line on stderr and the exit code."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc hands on to torchrun
        code = COMMANDS[args.command](args)
    except VaekitError as e:
        print(f"vaekit: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # SIGINT/SIGTERM during training: the loop wrote a checkpoint first
        if distributed.is_main():  # under torchrun every process stops; one says so
            print(f"vaekit: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("vaekit: interrupted; the last checkpoint is kept (continue with vaekit train --resume RUN)",
              file=sys.stderr)
        return 130
    return code or 0


def exit_now(code: int) -> None:
    """End a torchrun worker whose work is done, skipping the interpreter's teardown.

    Tearing down gloo's C++ objects at interpreter exit aborts a rank now and then (std::terminate on a
    joinable thread, "terminate called without an active exception", after the process group was destroyed;
    3 of 40 two-process test runs on a loaded 2-core machine, 0 of 25 with this exit), which fails a finished
    run. Files are closed by then; the streams are flushed here.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
