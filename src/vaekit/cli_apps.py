"""The application verbs of the command line: encode (embeddings), anomaly (scores) and anomaly-eval (metrics)."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import VaekitError

ENCODE_SUFFIXES = (".npy", ".npz", ".csv")


def add_parsers(sub) -> None:
    """Add encode, anomaly and anomaly-eval to the ``vaekit`` sub-parsers."""
    from .scores import SCORES

    e = sub.add_parser("encode", help="posterior means and scales of every item -> .npy, .npz or .csv")
    e.add_argument("run", help="run folder")
    e.add_argument("--data", help="data spec (default: the run's own data)")
    e.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                   help="all: every item in file order (train file, then test file); else the run's split")
    e.add_argument("--out", required=True, help=".npy (N, 2D: loc then scale), .npz (loc, scale) or .csv")
    e.add_argument("--batch-size", type=int, default=1000)
    for name, verb in (("anomaly", "anomaly scores per item -> .csv"),
                       ("anomaly-eval", "AUROC, AUPRC and FPR at 95% TPR per score")):
        a = sub.add_parser(name, help=verb)
        a.add_argument("run", help="run folder")
        a.add_argument("--split", default="test", choices=["train", "val", "test"])
        a.add_argument("--score", default=",".join(SCORES), help=f"comma-separated, from {', '.join(SCORES)}")
        a.add_argument("--samples", type=int, default=8, help="S common noise draws of the ELBO")
        a.add_argument("--iw-samples", type=int, default=64, help="K of the IWAE NLL")
        a.add_argument("--steps", type=int, default=30, help="Adam steps of the likelihood regret")
        a.add_argument("--limit", type=int, help="only the first N items of each set")
        a.add_argument("--seed", type=int, default=0)
        a.add_argument("--batch-size", type=int, default=256)
    sub.choices["anomaly"].add_argument("--data", help="data spec (default: the run's own data)")
    sub.choices["anomaly"].add_argument("--out", required=True, help="scores .csv")
    ev = sub.choices["anomaly-eval"]
    ev.add_argument("--in", dest="inliers", help="in-distribution data spec (default: the run's own data)")
    ev.add_argument("--ood", help="out-of-distribution data spec")
    ev.add_argument("--data", help="one labelled data set: --normal names its in-distribution classes")
    ev.add_argument("--normal", help="comma-separated labels counted as in-distribution (with --data)")


def _batches(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    if size <= 0:
        raise VaekitError(f"--batch-size must be > 0, got {size}")
    for i in range(0, len(x), size):
        yield x[i: i + size]


def all_items(spec: str, cfg) -> torch.Tensor:
    """Every item of ``spec`` in file order (train then test file), scaled as in training, (N, *shape) float32."""
    from .data import check_finite, read_raw

    table = Path(spec).suffix.lower() in (".csv", ".tsv")
    raw = read_raw(spec, cfg.data.label_column if table else None, cfg.data.data_dir)[0]
    parts = [raw.x] if raw.x_test is None else [raw.x, raw.x_test]
    x = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]) / np.float32(raw.scale)
    check_finite(x, raw.where)
    return torch.from_numpy(x)


def encode_items(args: argparse.Namespace) -> tuple:
    """(run, x): the run and the items to encode, checked against its input shape."""
    from .data import load_dataset
    from .run import Run

    run = Run.load(args.run)
    spec, d = args.data or run.config.data.spec, run.config.data
    if args.split == "all":
        x = all_items(spec, run.config)
    else:
        data = load_dataset(spec, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                            seed=run.config.train.seed, label_column=d.label_column, data_dir=d.data_dir)
        x = getattr(data, args.split).x
    if run.model.needs_labels:
        raise VaekitError("encode: this model is conditional; encode needs an unconditional run")
    run._check(x[:1])
    return run, x


def cmd_encode(args: argparse.Namespace) -> None:
    from .io import atomic_write

    out = Path(args.out)
    if out.suffix.lower() not in ENCODE_SUFFIXES:
        raise VaekitError(f"--out {out}: expected a .npy, .npz or .csv file name")
    run, x = encode_items(args)
    d = sum(run.model.latent_dims)

    def rows() -> Iterator[np.ndarray]:  # (B, 2D) per batch: loc then scale
        for xb in _batches(x, args.batch_size):
            qz = run.encode(xb)
            yield torch.cat([qz.mean.flatten(1), qz.stddev.flatten(1)], 1).cpu().numpy()

    atomic_write(out, lambda tmp: WRITERS[out.suffix.lower()](tmp, rows(), len(x), d))
    print(f"{len(x)} posterior means and scales ({d} dims) written to {out}")


def _write_npy(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int) -> None:
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, 2 * d))
    i = 0
    for r in rows:
        arr[i: i + len(r)] = r
        i += len(r)
    arr.flush()
    del arr


def _write_npz(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int) -> None:
    a = np.concatenate(list(rows)) if n else np.zeros((0, 2 * d), np.float32)
    with open(tmp, "wb") as f:
        np.savez(f, loc=a[:, :d], scale=a[:, d:])


def _write_csv(tmp: Path, rows: Iterator[np.ndarray], n: int, d: int) -> None:
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([f"loc_{i}" for i in range(d)] + [f"scale_{i}" for i in range(d)])
        for r in rows:
            w.writerows([[f"{v:.7g}" for v in row] for row in r])


WRITERS = {".npy": _write_npy, ".npz": _write_npz, ".csv": _write_csv}


def _scores(args: argparse.Namespace, run, x: torch.Tensor) -> dict[str, np.ndarray]:
    from .scores import anomaly_scores, check_scores

    names = check_scores([s.strip() for s in args.score.split(",") if s.strip()])
    return anomaly_scores(run.model, x[: args.limit], names, args.samples, args.iw_samples, args.steps,
                          args.seed, args.batch_size)


def _split(run, spec: str | None, split: str, limit: int | None):
    """The chosen split of ``spec`` prepared as in training (binarised where the run was)."""
    from .run import prepare_data

    if limit is not None and limit <= 0:
        raise VaekitError(f"--limit must be > 0, got {limit}")
    data, _ = prepare_data(run.config, spec)
    s = getattr(data, split)
    if len(s) == 0:
        raise VaekitError(f"{data.name}: the {split} split is empty")
    return s


def cmd_anomaly(args: argparse.Namespace) -> None:
    from .io import atomic_write_text
    from .run import Run

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise VaekitError(f"--out {out}: expected a .csv file name")
    run = Run.load(args.run)
    s = _split(run, args.data, args.split, args.limit)
    scores = _scores(args, run, s.x)
    n = len(next(iter(scores.values())))
    header = ["index"] + (["label"] if s.y is not None else []) + list(scores)
    lines = [",".join(header)]
    for i in range(n):
        label = [str(int(s.y[i]))] if s.y is not None else []
        lines.append(",".join([str(i), *label, *(f"{scores[k][i]:.7g}" for k in scores)]))
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"{n} items scored ({', '.join(scores)}; higher = more anomalous) -> {out}")


def eval_sets(args: argparse.Namespace, run) -> tuple[torch.Tensor, torch.Tensor]:
    """(normal x, anomalous x) from --in/--ood or from --data with --normal labels."""
    if args.data is not None or args.normal is not None:
        if args.data is None or args.normal is None or args.ood or args.inliers:
            raise VaekitError("anomaly-eval: use --data with --normal, or --in/--ood, not both")
        s = _split(run, args.data, args.split, None)
        if s.y is None:
            raise VaekitError(f"{args.data}: has no labels for --normal")
        try:
            normal = torch.tensor([int(v) for v in args.normal.split(",") if v.strip()])
        except ValueError:
            raise VaekitError(f"--normal {args.normal!r}: expected integer labels separated by commas") from None
        mask = torch.isin(s.y, normal)
        return s.x[mask][: args.limit], s.x[~mask][: args.limit]
    if args.ood is None:
        raise VaekitError("anomaly-eval: name the out-of-distribution set with --ood (or --data with --normal)")
    return _split(run, args.inliers, args.split, args.limit).x, _split(run, args.ood, args.split, args.limit).x


def cmd_anomaly_eval(args: argparse.Namespace) -> None:
    from .run import Run
    from .scores import detection_metrics

    run = Run.load(args.run)
    x_in, x_out = eval_sets(args, run)
    if len(x_in) == 0 or len(x_out) == 0:
        raise VaekitError(f"anomaly-eval: {len(x_in)} in-distribution and {len(x_out)} anomalous items; need both")
    s_in, s_out = _scores(args, run, x_in), _scores(args, run, x_out)
    print(f"{len(x_in)} in-distribution vs {len(x_out)} out-of-distribution items (higher score = anomalous)")
    print("| score | AUROC | AUPRC | FPR@95%TPR |\n|---|---|---|---|")
    for name in s_in:
        m = detection_metrics(s_in[name], s_out[name])
        print(f"| {name} | {m['auroc']:.4f} | {m['auprc']:.4f} | {m['fpr95']:.4f} |")


COMMANDS = {"encode": cmd_encode, "anomaly": cmd_anomaly, "anomaly-eval": cmd_anomaly_eval}
