"""The model families on dynamically binarised Fashion-MNIST, printed as markdown tables.

1. Flat VAEs against 2-level ladder VAEs, with MLP and with conv networks, under one budget (epochs, batch
   size, Adam, lr, warm-up): test NLL from the IWAE bound (K = 1000), active units per level (Burda et al.
   2016), and how far each ladder's NLL lies below the flat MLP VAE's (the target: >= 2 nats).
2. The conditional conv VAE, with a Gaussian and with a mixture prior p(z|y) per class: 100 samples per class,
   judged by two classifiers trained on real images (an MLP and a small conv net), beside their accuracy on
   real test images.
3. The beta presets (configs/beta-*.toml): KL and reconstruction on the test split as beta grows, and the
   annealed-capacity preset.

    .venv/bin/python benchmarks/families.py           # about 21 min on 2 shared CPU cores
    .venv/bin/python benchmarks/families.py --quick   # a smoke run: 77 s on 1 shared thread
    .venv/bin/python benchmarks/families.py --parts ladder --nets conv --epochs 30 --warmup 5  # table 1, conv only

The tables go to JSON (``--json``, default benchmarks/results/families.json) with the command, the machine, torch,
the commit and the date.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import common
import runner
import torch
from families_judges import JUDGES, classifier, per_class_hits
from torch import Tensor, nn

from vaekit.api import train
from vaekit.config import RunConfig, load_toml, set_value
from vaekit.core import elbo, iwae_bound
from vaekit.data import load_dataset
from vaekit.data.prepare import prepare_data
from vaekit.evaluation.metrics import active_units
from vaekit.runs import Run

ROOT = Path(__file__).resolve().parents[1]
COMMON = {
    "data.spec": "fashion-mnist",
    "data.binarize": "dynamic",
    "train.batch_size": 128,
    "train.lr": 1e-3,
    "train.seed": 0,
    "train.progress": False,
}
NET_LABELS = {"mlp": "MLP", "conv": "conv"}
FLAT, LADDER = "flat {} VAE (z: 32)", "{} ladder VAE (z_1: 32, z_2: 16)"  # table 1's model names, per net label


def train_run(name: str, settings: dict, args: argparse.Namespace, preset: str | None = None) -> Run:
    """Train one model (preset TOML < COMMON < ``settings``) into ``args.out/name``; returns it (best weights)."""
    cfg = RunConfig.from_dict(load_toml(ROOT / "configs" / preset)) if preset else RunConfig()
    for key, value in {**COMMON, "data.limit": args.limit, "train.epochs": args.epochs, **settings}.items():
        set_value(cfg, key, value)
    cfg.out = str(Path(args.out) / name)
    start = time.perf_counter()
    run = Run.load(train(cfg, overwrite=True).path)
    print(f"  trained {name} in {time.perf_counter() - start:.0f} s", flush=True)
    return run


def test_split(run: Run, n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` test images (binarised once, seeded, as in training) and their labels."""
    test = prepare_data(run.config)[0].test
    return test.x[:n], test.y[:n]


@torch.no_grad()
def rate_distortion(run: Run, x: Tensor, y: Tensor | None = None) -> tuple[float, float, list[float]]:
    """Mean reconstruction log-likelihood, KL and KL per level (top to bottom) over x, nats per image."""
    torch.manual_seed(0)
    out = run.model(x, y if run.model.needs_labels else None)
    t = elbo(out, x)
    return t["rec"].mean().item(), t["kl"].mean().item(), [k.mean().item() for k in t["kl_layers"]]


@torch.no_grad()
def posterior_means(model: nn.Module, x: Tensor, samples: int = 20) -> list[Tensor]:
    """E_q[z_l|x] per level, (N, D_l) each, top to bottom; Monte Carlo over the levels above (top-down q)."""
    torch.manual_seed(0)
    outs = [model(x) for _ in range(samples)]
    return [torch.stack([o.qz[level].mean for o in outs]).mean(0) for level in range(len(outs[0].qz))]


@torch.no_grad()
def nll(model: nn.Module, x: Tensor, k: int, batch: int = 50) -> float:
    """Test NLL (nats per image): -mean of the K-sample IWAE bound."""
    torch.manual_seed(0)
    return -torch.cat([iwae_bound(model, x[i : i + batch], k) for i in range(0, len(x), batch)]).mean().item()


Part = tuple[list[dict], list[str], str]  # a part's tables, notes and headline phrase


def flat_vs_ladder(args: argparse.Namespace) -> Part:
    """Table 1: flat and 2-level ladder VAEs on each net of ``args.nets``, one budget; NLL, ELBO terms, active units."""
    budget = {"model.hidden": [400, 400], "train.warmup_epochs": args.warmup}
    nlls, rows = {}, []
    for net in args.nets:
        label = NET_LABELS[net]
        for family, name, settings in (
            ("flat", FLAT.format(label), {"model.latent_dim": 32}),
            ("ladder", LADDER.format(label), {"model.family": "ladder", "model.latent_dims": [32, 16]}),
        ):
            widths = budget if net == "mlp" or family == "ladder" else {"train.warmup_epochs": args.warmup}
            run = train_run(f"{family}-{net}", {**widths, "model.net": net, **settings}, args)  # flat conv: no MLP
            row, nlls[family, net] = ladder_row(name, run, args)
            rows.append(row)
    table = common.table(
        f"Flat vs ladder: test NLL (IWAE, K = {args.k}, {args.n_test} test images), {args.epochs} epochs each",
        ["model", "parameters", "NLL (nats)", "-ELBO", "rec", "KL (top..bottom)", "active units (top..bottom)"],
        rows,
    )
    lines = [ladder_line(net, nlls, args.nets) for net in args.nets]
    print("\n" + "\n".join(lines), flush=True)
    notes = [
        f"Dynamically binarised Fashion-MNIST; Adam lr 1e-3, batch 128, KL warm-up {args.warmup:g} epochs; hidden "
        "400, 400 for the MLP VAEs and the ladders; active units: Var_x(E_q[z|x]) > 0.01 (Burda et al. 2016).",
        *lines,
    ]
    return [table], notes, ladder_phrase(rows)


def ladder_phrase(rows: list[list]) -> str:
    """Table 1's headline: per net, the ladder's test NLL against the flat VAE's and both parameter counts."""
    by, out = {r[0]: r for r in rows}, []
    for label in NET_LABELS.values():
        if FLAT.format(label) in by and LADDER.format(label) in by:
            flat, ladder = by[FLAT.format(label)], by[LADDER.format(label)]
            gain, size = flat[2] - ladder[2], lambda n: f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"
            out.append(
                f"{label} ladder {abs(gain):.2f} nats {'better' if gain >= 0 else 'worse'} than the flat {label} VAE "
                f"with {ladder[1] / flat[1]:.1f}x its parameters ({size(ladder[1])} vs {size(flat[1])})"
            )
    return "test NLL: " + ", ".join(out)


def rehead(path: str) -> None:
    """Recompute table 1's phrase of a written result's headline and its per-net ladder notes from its stored
    table; no run."""
    result = json.loads(Path(path).read_text())
    rows = next(t["rows"] for t in result["tables"] if t["caption"].startswith("Flat vs ladder"))
    phrases = [ladder_phrase(rows) if "ladder" in h else h for h in result["headline"].split("; ")]
    by = {r[0]: r[2] for r in rows}
    nlls = {
        (kind, net): by[name.format(label)]
        for net, label in NET_LABELS.items()
        for kind, name in (("flat", FLAT), ("ladder", LADDER))
        if name.format(label) in by
    }
    nets = [net for net in NET_LABELS if ("ladder", net) in nlls and ("flat", net) in nlls]
    lines = {f"{NET_LABELS[net]}: the ladder's NLL": ladder_line(net, nlls, nets) for net in nets}
    notes = [next((v for k, v in lines.items() if n.startswith(k)), n) for n in result.get("notes", [])]
    common.rewrite(path, headline="; ".join(phrases), notes=notes)


def ladder_line(net: str, nlls: dict, nets: list[str]) -> str:
    """How far the ``net`` ladder's NLL lies below the flat VAEs', with the target against the flat MLP VAE."""
    label = NET_LABELS[net]
    own = nlls["flat", net] - nlls["ladder", net]
    line = f"{label}: the ladder's NLL is {common.below(own, ' nats')} the flat {label} VAE's"
    if "mlp" in nets:
        vs_mlp = nlls["flat", "mlp"] - nlls["ladder", net]
        line += f" and {common.below(vs_mlp)} the flat MLP VAE's" if net != "mlp" else ""
        line += f" (target >= 2 below the flat MLP VAE's: {'met' if vs_mlp >= 2 else 'not met'})"
    return line


def ladder_row(name: str, run: Run, args: argparse.Namespace) -> tuple[list, float]:
    """Table 1's row for ``run`` and its test NLL."""
    x, _ = test_split(run, args.n_test)
    start = time.perf_counter()
    value = nll(run.model, x, args.k)
    rec, kl, levels = rate_distortion(run, x)
    active = [int(a.sum()) for a in active_units(posterior_means(run.model, x))]
    print(f"  (NLL took {time.perf_counter() - start:.0f} s)", flush=True)
    return [
        name,
        sum(p.numel() for p in run.model.parameters()),
        round(value, 2),
        round(kl - rec, 2),
        round(-rec, 2),
        " + ".join(f"{v:.2f}" for v in levels),
        " + ".join(f"{a}/{d}" for a, d in zip(active, run.model.latent_dims)),
    ], value


CVAE_PRIORS = {"N(loc_y, scale_y)": 1, "mixture of 10 per class": 10}  # model.prior_components
CVAE = {"model.family": "cvae", "model.net": "conv", "model.latent_dim": 16, "model.channels": [32, 64]}  # table 2


def conditional_samples(args: argparse.Namespace) -> Part:
    """Table 2: for the conditional conv VAE with each prior p(z|y) of CVAE_PRIORS, the share of 100 samples per
    class that each judge assigns to the requested class, beside the judge's own accuracy on real test images."""
    samples = {}
    for prior, components in CVAE_PRIORS.items():
        settings = {**CVAE, "model.prior_components": components, "train.epochs": args.cvae_epochs}
        run = train_run(f"cvae-conv-{components}", settings, args)
        torch.manual_seed(0)
        samples[prior] = run.sample_classes(100)  # (1000, 1, 28, 28): means of p(x|z, y), class by class
    y = torch.arange(10).repeat_interleave(100)
    judged = f"the first {args.clf_limit:,} " if args.clf_limit else ""  # all of them where none is set
    data = load_dataset("fashion-mnist", seed=0)
    rows, conv = [], {}
    for name in JUDGES:
        net, real = classifier(name, data, args.clf_epochs, args.clf_limit)
        hits = {prior: per_class_hits(net, x, y) for prior, x in samples.items()}
        conv = [h.mean().item() for h in hits.values()]  # the last judge's: the conv net
        for what, h in (*((f"samples, p(z\\|y) {prior}", h) for prior, h in hits.items()), ("real test", real)):
            rows.append([name, what, *(f"{v:.0%}" for v in h.tolist()), f"{h.mean():.1%}"])
    table = common.table(
        f"Conditional conv VAE: samples assigned their requested class ({args.cvae_epochs} epochs; "
        f"100 per class; judges trained for {args.clf_epochs} epochs on {judged}real images)",
        ["judge", "images", *data.classes, "all"],
        rows,
    )
    notes = [
        "Conditional conv VAE (z 16, channels 32, 64), p(z|y) one Gaussian or a mixture of 10 per class; its "
        "samples (means of p(x|z, y)) judged by classifiers trained on real grey Fashion-MNIST images."
    ]
    headline = (
        f"{conv[0]:.0%} (Gaussian prior) and {conv[1]:.0%} (mixture prior) of conditional samples judged their class"
    )
    return [table], notes, headline


def beta_table(args: argparse.Namespace) -> Part:
    """Table 3: the beta presets (and the annealed-capacity one) on test: KL falls and rec worsens as beta grows."""
    rows = []
    for preset in ("beta-0.5.toml", "beta-1.toml", "beta-4.toml", "beta-16.toml", "beta-capacity.toml"):
        settings = {"train.epochs": args.beta_epochs}
        if preset == "beta-capacity.toml":
            settings["train.capacity_epochs"] = args.beta_epochs
        run = train_run(preset.removesuffix(".toml"), settings, args, preset)
        x, _ = test_split(run, args.n_test)
        rec, kl, _ = rate_distortion(run, x)
        t = run.config.train
        beta = f"C -> {t.capacity_max:g}, gamma {t.gamma:g}" if t.capacity_max else t.beta
        rows.append([preset, beta, round(kl, 2), round(-rec, 2), round(kl - rec, 2)])
    table = common.table(
        f"beta presets (flat MLP VAE, z: 10, {args.beta_epochs} epochs; test split, nats per image)",
        ["preset", "beta", "KL", "-rec (distortion)", "-ELBO"],
        rows,
    )
    notes = [
        "beta presets: configs/beta-*.toml; beta-capacity: loss -rec + gamma |KL - C|, C rising from 0 to "
        "capacity_max over the run (Burgess et al. 2018)."
    ]
    return [table], notes, f"KL {rows[0][2]:.1f} -> {rows[3][2]:.1f} nats from beta 0.5 to 16"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run: little data, 1 epoch, K = 10")
    p.add_argument("--out", default="runs/bench-families")
    p.add_argument("--parts", default="ladder,cvae,beta", help="which tables, comma-separated")
    threads = "torch threads; 1 avoids OpenMP barrier stalls on oversubscribed (shared) cores"
    p.add_argument("--threads", type=int, default=1, help=threads)
    p.add_argument("--epochs", type=int, help="flat vs ladder: epochs for both models (default 10; --quick: 1)")
    p.add_argument("--warmup", type=float, help="flat vs ladder: KL warm-up epochs for both (default 2)")
    p.add_argument("--nets", default="mlp,conv", help="flat vs ladder: the networks, comma-separated")
    p.add_argument("--json", help="the result (default: benchmarks/results/families.json)")
    p.add_argument("--rehead", metavar="JSON", help="recompute a written result's table-1 headline; no run")
    args = p.parse_args()
    if args.rehead:
        return rehead(args.rehead)
    parts = common.choices(p, "--parts", args.parts, ("ladder", "cvae", "beta"))
    args.nets = common.choices(p, "--nets", args.nets, tuple(NET_LABELS))
    common.budget(p, args, "epochs", epochs=10)
    budget = {k: v for k, v in (("epochs", args.epochs), ("warmup", args.warmup)) if v is not None}
    full = dict(epochs=10, warmup=2.0, k=1000, n_test=1000, cvae_epochs=10, clf_epochs=5, beta_epochs=5, limit=None)
    quick = dict(epochs=1, warmup=0.5, k=10, n_test=200, cvae_epochs=1, clf_epochs=1, beta_epochs=1, limit=3000)
    full["clf_limit"], quick["clf_limit"] = None, 3000  # the judges' training images (quick: as the VAEs')
    vars(args).update({**(quick if args.quick else full), **budget})
    torch.set_num_threads(args.threads)
    tables, notes, phrases, start = [], [], [], time.perf_counter()
    for name, part in (("ladder", flat_vs_ladder), ("cvae", conditional_samples), ("beta", beta_table)):
        if name in parts:
            t, n, h = part(args)
            tables, notes, phrases = tables + t, notes + n, phrases + [h]
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    common.write("families", "Model families on Fashion-MNIST", "; ".join(phrases), tables, notes, out=args.json)


if __name__ == "__main__":
    runner.entry(main)
