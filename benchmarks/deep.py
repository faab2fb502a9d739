"""The deep hierarchy (family deep) against the flat conv VAE and the conv ladder VAE, each trained for the same
wall-clock budget, printed as markdown tables.

1. Test NLL (IWAE bound, K = 1000, 1,000 test images) on dynamically binarised Fashion-MNIST and on mnist5k.
2. Bits/dim with the discretized logistic mixture on 8-bit Fashion-MNIST and photos:32 (flat conv vs deep).
3. Out-of-distribution: the binarised Fashion-MNIST models score MNIST test digits; AUROC of LLR^{>k} for each
   k (the lowest k groups from their conditional priors; Havtorn et al. 2021), beside the IWAE NLL.
4. Samples of the three Fashion-MNIST models side by side (a figure) and each model's peak memory.
5. Their sample quality: FID, KID, precision and recall on the domain classifier's features (vaekit.quality).

    .venv/bin/python benchmarks/deep.py                  # 20 minutes per model: about 3 h on 2 CPU cores
    .venv/bin/python benchmarks/deep.py --quick          # a smoke run: 10 models, about a minute each
    .venv/bin/python benchmarks/deep.py --quick --parts nll --sets fashion-mnist   # 3 of those models
    .venv/bin/python benchmarks/deep.py --parts nll --sets fashion-mnist --minutes 1.5 --limit 6000 --k 100
    .venv/bin/python benchmarks/deep.py --parts quality --out runs/bench-deep   # parts 3-5 reuse an earlier run
    .venv/bin/python benchmarks/deep.py --parts bits --bits-deep-minutes 80 --carry-on   # continue, deep longer

Budgets count training time only (metrics.csv seconds; the data preparation and validation are left out).
Each model trains epoch by epoch (resumed) until another epoch would pass the budget; its best epoch by
validation loss is evaluated (for deep: its EMA weights).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import common
import runner
import torch
from deep_lines import bits_line, flat_bits, floor_line, nll_line, rehead
from deep_parts import ood_part, quality_part, samples_figure
from families import nll, test_split

from vaekit.api import train
from vaekit.config import RunConfig, load_toml, set_value
from vaekit.config.checks import short_runs
from vaekit.data.prepare import load_spec
from vaekit.evaluation.metrics import bits_per_dim
from vaekit.runs import Run

ROOT = Path(__file__).resolve().parents[1]
FLAT = {
    "model.net": "conv",
    "model.latent_dim": 32,
    "model.channels": [32, 64],
    "train.batch_size": 128,
    "train.lr": 1e-3,
    "train.warmup_epochs": 2,
}
MODELS = {"flat conv VAE": (None, FLAT), "conv ladder VAE": ("ladder-conv.toml", {}), "deep": ("deep-fashion.toml", {})}
PARTS = ("nll", "bits", "ood", "samples", "quality")
NLL_DATA = {"data.binarize": "dynamic"}  # the NLL tables' data, on each set of --sets
BITS = {"data.binarize": "none", "model.likelihood": "discretized_logistic"}
# deep on 8-bit data: lr and clipping of the GPU presets. A loss of thousands of nats per image has gradient norms
# of thousands (the preset's skip_ratio follows them; a fixed skip_grad of 3000 skipped every 8-bit update).
BITS_DEEP = {"train.lr": 1e-3, "train.clip_grad": 1000}
# data sets with a CPU preset of their own for deep on 8-bit data (finer latents than the binarised preset's)
BITS_PRESETS = {"fashion-mnist": "deep-fashion-8bit.toml"}


def config_for(name: str, preset: str | None, settings: dict, args: argparse.Namespace) -> RunConfig:
    """The run ``name``'s settings: its preset (or the defaults), seed 0, ``args.limit`` and ``settings`` over them;
    its folder under ``args.out``."""
    cfg = RunConfig.from_dict(load_toml(ROOT / "configs" / preset)) if preset else RunConfig()
    for key, value in {"train.seed": 0, "train.progress": False, "data.limit": args.limit, **settings}.items():
        set_value(cfg, key, value)
    cfg.out = str(Path(args.out) / name.replace(" ", "-"))
    return cfg


def train_for(
    name: str, preset: str | None, settings: dict, args: argparse.Namespace, minutes: float | None = None
) -> tuple[Run, dict]:
    """Train epoch by epoch (resumed) while another epoch fits in ``minutes`` (default ``args.minutes``) of
    training time; with ``args.carry_on``, from the epochs an earlier run on the same settings left in its folder."""
    cfg = config_for(name, preset, settings, args)
    path = Path(cfg.out)
    earlier = common.carried_rows(path, cfg, ["data.limit", *settings]) if args.carry_on else []  # or refused
    seconds = [float(r["seconds"]) for r in earlier]  # of each epoch
    budget = (minutes or args.minutes) * 60
    peak = torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
    vaekit_log = logging.getLogger("vaekit")
    vaekit_log.addFilter(one_epoch_more)
    try:
        while not seconds or sum(seconds) + seconds[-1] <= budget:
            cfg.train.epochs = len(seconds) + 1
            rows = train(cfg, resume=bool(seconds), overwrite=not seconds, pictures=False).history
            seconds.append(rows[-1]["seconds"])
    finally:
        vaekit_log.removeFilter(one_epoch_more)
    epochs, spent = len(seconds), sum(seconds)
    for note in short_runs(cfg):  # the whole budget's epochs (cfg.train.epochs == epochs): said once, of the run
        print(f"  {name}: {note}", flush=True)
    peak = common.peak_mib("cuda" if torch.cuda.is_available() else "cpu")  # on a CPU, the process so far
    run = Run.load(path)
    info = {
        "epochs": epochs,
        "minutes": round(spent / 60, 2),
        "peak_mb": round(peak),
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "carried": len(earlier),  # epochs an earlier run trained (--carry-on)
    }
    print(f"  {name}: {epochs} epochs in {spent:.0f} s", flush=True)
    return run, info


def one_epoch_more(record: logging.LogRecord) -> bool:
    """A filter of vaekit's log that drops its warning of a schedule longer than the run (train.warmup_epochs 2 in
    train.epochs 1): train_for trains one epoch more per call, resumed, so a warm-up runs on across the calls as
    in one run; train_for says it once, where the budget's epochs in all are fewer."""
    return "is longer than the run (train.epochs" not in record.getMessage()


def nll_part(spec: str, args: argparse.Namespace, tables: list, notes: list) -> dict[str, Run]:
    """Table: the three models on binarised ``spec``, the same budget; NLL, epochs, parameters, peak memory."""
    runs, rows, carried = {}, [], {}
    for name, (preset, settings) in MODELS.items():
        run, info = train_for(f"{spec}-{name}", preset, {**settings, **NLL_DATA, "data.spec": spec}, args)
        x, _ = test_split(run, args.n_test)
        runs[name], carried[name] = run, info
        value = round(nll(run.model, x, args.k), 2)
        rows.append([name, info["parameters"], info["epochs"], info["minutes"], value, info["peak_mb"]])
    tables.append(
        common.table(
            f"{spec}, dynamically binarised: test NLL (IWAE, K = {args.k}, {len(x)} test "
            f"images), {args.minutes:g} minutes of training each",
            ["model", "parameters", "epochs", "minutes", "NLL (nats)", "peak memory (MiB)"],
            rows,
        )
    )
    nlls = {row[0]: row[4] for row in rows}
    notes += [nll_line(spec, nlls), floor_line(spec, len(x), entropy_floor(run.config, len(x)), nlls)]
    carry_note(carried, notes)
    return runs


def entropy_floor(cfg: RunConfig, n: int) -> float:
    """The binarisation's own entropy (nats), the mean over the first ``n`` test images of sum_i H(Bernoulli(x_i))
    for the grey image x (N, C, H, W) in [0, 1] before the draw: in expectation no model's NLL of the binarised
    images goes below it, since each pixel is a coin flip of a known bias given the grey image."""
    grey = load_spec(cfg, cfg.data.spec, stream=False).test.x[:n]  # as the run reads it, before binarising
    p = torch.as_tensor(grey, dtype=torch.float64)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)).flatten(1).sum(1).mean().item()


def written_floor(command: str, spec: str, n: int) -> float:
    """``entropy_floor`` of a written result's NLL table on ``spec``, with the --limit (or --quick) of ``command``."""
    args = parse_args(shlex.split(command)[2:])  # "python benchmarks/deep.py ..."
    return entropy_floor(config_for("floor", None, {**NLL_DATA, "data.spec": spec}, args), n)


def bits_part(args: argparse.Namespace, tables: list, notes: list) -> None:
    """Table: bits/dim of the flat conv VAE and deep with the discretized logistic mixture on 8-bit data."""
    rows, found, carried = [], {}, {}
    for spec in args.bits_sets:
        for name in ("flat conv VAE", "deep"):
            preset, settings = MODELS[name]
            deep, minutes = {}, None
            if name == "deep":  # a data set's own preset, else the binarised one with BITS_DEEP
                preset, deep = (BITS_PRESETS[spec], {}) if spec in BITS_PRESETS else (preset, BITS_DEEP)
                minutes = args.bits_deep_minutes
            run, info = train_for(
                f"bits-{spec}-{name}", preset, {**settings, **BITS, **deep, "data.spec": spec}, args, minutes
            )
            x, _ = test_split(run, args.n_test)
            bits = bits_per_dim(nll(run.model, x, args.bits_k), x.shape[1:])
            rows.append([spec, name, info["epochs"], info["minutes"], len(x), round(bits, 4)])
            found[spec, name] = (round(bits, 4), info["minutes"])
            carried[f"{spec} {name}"] = info
    tables.append(
        common.table(
            f"8-bit data, discretized logistic: bits/dim (IWAE, K = {args.bits_k}), {args.minutes:g} minutes of "
            f"training each" + (f", deep {args.bits_deep_minutes:g}" if args.bits_deep_minutes else ""),
            ["data", "model", "epochs", "minutes", "test items", "bits/dim"],
            rows,
        )
    )
    notes += [bits_line(spec, found, flat_bits()) for spec in args.bits_sets]
    carry_note(carried, notes)


def carry_note(infos: dict[str, dict], notes: list) -> None:
    """A note naming the runs whose first epochs an earlier run trained (``--carry-on``), from train_for's infos."""
    parts = [f"{name} {i['carried']} of its {i['epochs']}" for name, i in infos.items() if i["carried"]]
    if parts:
        notes.append(
            "Carried on (--carry-on) from the run folders an earlier run left under --out, epochs trained then: "
            + ", ".join(parts)
            + " (a model with no room for another epoch is evaluated as it was; its peak memory is then that of"
            " its evaluation alone)."
        )


def trained_runs(args: argparse.Namespace) -> dict[str, Run]:
    """The Fashion-MNIST runs an earlier ``--parts nll`` left in ``args.out`` (parts ood, samples, quality alone);
    refused in one line where one is missing or was trained on other settings than this command's."""
    runs = {}
    for name, (preset, settings) in MODELS.items():
        cfg = config_for(f"fashion-mnist-{name}", preset, {**settings, **NLL_DATA, "data.spec": "fashion-mnist"}, args)
        if not common.carried_rows(cfg.out, cfg, ["data.limit", *settings], reuse="--parts without nll"):
            sys.exit(f"--parts without nll: {cfg.out} holds no trained run; run --parts nll first with this --out")
        runs[name] = Run.load(cfg.out)
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with ``--quick``'s settings and the derived ones (OOD samples, 8-bit sets as a list)."""
    p = runner.parser(__doc__)
    p.add_argument("--minutes", type=float, default=20.0, help="training time per model")
    p.add_argument("--sets", default="fashion-mnist,mnist5k", help="binarised data for the NLL tables")
    p.add_argument("--bits-sets", default="fashion-mnist,photos:32", help="8-bit data for bits/dim ('' to skip)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    p.add_argument("--k", type=int, default=1000, help="importance samples of the NLL")
    p.add_argument("--bits-deep-minutes", type=float, help="the deep model's training time on 8-bit data")
    p.add_argument("--carry-on", action="store_true", help="go on with the runs under --out (same settings)")
    p.add_argument("--bits-k", type=int, default=100, help="importance samples of bits/dim (docs/benchmarks/bits.md's)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--limit", type=int, help="only the first N items of each data set")
    p.add_argument(
        "--quick",
        action="store_true",
        help="0.5 minutes of training per model (at least an epoch), 3000 items, K = 10, 100 test images: about a "
        "minute per model with its scoring, 10 models",
    )
    p.add_argument("--out", default="runs/bench-deep")
    p.add_argument("--figure", help="the samples figure (default: beside the JSON; the pages': docs/img/benchmarks/)")
    p.add_argument("--json")
    p.add_argument(
        "--rehead", metavar="JSON", help="recompute a written result's NLL, floor and bits/dim lines; no training"
    )
    args = p.parse_args(argv)
    args.parts, args.sets = common.choices(p, "--parts", args.parts, PARTS), common.data_specs(p, "--sets", args.sets)
    args.bits_sets = common.data_specs(p, "--bits-sets", args.bits_sets)
    common.budget(p, args, "minutes", "limit", "k", "bits_k", "n_test")
    if args.quick:
        args.minutes, args.limit, args.k, args.bits_k, args.n_test = 0.5, 3000, 10, 10, 100
    args.figure = Path(args.figure or common.beside("deep", args.json, "samples.png"))
    args.k_ood, args.s_ood = min(args.k, 100), 8
    return args


def main() -> None:
    args = parse_args()
    if args.rehead:
        return rehead(args.rehead, written_floor)
    parts, tables, notes, start = args.parts, [], [], time.perf_counter()
    runs = {spec: nll_part(spec, args, tables, notes) for spec in args.sets} if "nll" in parts else {}
    if "bits" in parts:
        bits_part(args, tables, notes)
    later = {"ood", "samples", "quality"} & set(parts)  # parts on the Fashion-MNIST models
    fashion = runs.get("fashion-mnist") or (trained_runs(args) if later else None)
    if fashion and "ood" in parts:
        ood_part(fashion, args, tables)
    if fashion and "quality" in parts:
        quality_part(fashion, tables, notes)
    if fashion and "samples" in parts:
        samples_figure(fashion, args.figure)
    if fashion and later - {"ood"}:  # the pages show the figure this note names, where it is theirs
        notes.append(
            f"Samples of these models (flat conv, conv ladder, deep; a row each): {common.figure_name(args.figure)}"
        )
    left = [p for p in PARTS if p not in parts or (p == "bits" and not args.bits_sets)]
    if left or "mnist5k" not in args.sets:
        sets = f"; NLL sets run: {','.join(args.sets)}" if "nll" in parts else ""
        notes.append(f"Not run in this run: parts {', '.join(left) or 'none'}{sets}.")
    notes.append(
        f"Budgets count training time (metrics.csv seconds); the whole benchmark took "
        f"{(time.perf_counter() - start) / 60:.1f} minutes. Peak memory: the GPU's peak allocation per model, "
        "or on a CPU the process's peak resident set so far (it only grows)."
    )
    headline = notes[0] if notes else ""
    common.write("deep", "The deep hierarchy against the flat and ladder conv VAEs", headline, tables, notes, args.json)


if __name__ == "__main__":
    runner.entry(main, carry_on=True)
